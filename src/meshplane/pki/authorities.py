"""One meshplane-managed CA per ACM Private CA ARN: separate trust roots off AWS.

App Mesh validated an ``acm`` trust against the Private CAs its
``certificateAuthorityArns`` name, so a client trusting PCA A refused a certificate
issued by PCA B. meshplane cannot reach ACM. By default every ARN is served by the
built-in CA (one root for all, as before, and ``tls-acm-builtin-ca`` says so). An
operator who needs the roots apart gives an ARN a CA of its own, either imported (the
PCA's real certificate and key, or any CA) or created here, under::

    <data-dir>/ca/pca/<id>/arn           the PCA ARN, one line
    <data-dir>/ca/pca/<id>/ca.pem        its CA certificate (then its issuers, if any)
    <data-dir>/ca/pca/<id>/ca-key.pem    its EC key, mode 0600
    <data-dir>/ca/pca/<id>/certificates  ACM certificate ARNs it issues, one per line

``<id>`` is derived from the ARN (:func:`directory_of`). An ``acm`` trust naming that
ARN then trusts that CA only, and a listener's ``acm.certificateArn`` listed in
``certificates`` is issued by it; every other name keeps the built-in CA. The control
plane reads the layout at start (``meshplane ca import|create`` writes it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from meshplane.kit.clock import Clock
from meshplane.pki import authority
from meshplane.pki.authority import Authority

PCA_DIRECTORY = "pca"


def directory_of(ca_directory: Path, arn: str) -> Path:
    """Where the CA of ``arn`` lives: a short digest of the ARN (ARNs hold ``:`` and ``/``)."""
    digest = hashlib.sha256(arn.encode()).hexdigest()[:16]
    return ca_directory / PCA_DIRECTORY / digest


@dataclasses.dataclass(frozen=True)
class Managed:
    """One ARN's CA and the ACM certificate ARNs it issues."""

    arn: str
    authority: Authority
    certificates: tuple[str, ...]


class Authorities:
    """The built-in CA plus the per-ARN CAs found under ``<data-dir>/ca/pca``."""

    def __init__(self, builtin: Authority, managed: Iterable[Managed] = ()) -> None:
        """Serve ``managed`` ARNs from their own CAs, everything else from ``builtin``."""
        self.builtin = builtin
        self._by_arn = {entry.arn: entry for entry in managed}
        self._issued_by = {
            certificate: entry.authority
            for entry in self._by_arn.values()
            for certificate in entry.certificates
        }

    @property
    def arns(self) -> list[str]:
        """The ARNs with a CA of their own, sorted."""
        return sorted(self._by_arn)

    def signer(self, name: str) -> Authority:
        """The CA that issues the certificate secret ``name``."""
        return self._issued_by.get(name, self.builtin)

    def bundle(self, arns: Iterable[str]) -> bytes:
        """The CA certificates a trust naming ``arns`` accepts (none: the built-in CA's)."""
        chosen = list(dict.fromkeys(arns))
        if not chosen:
            return self.builtin.bundle_pem
        parts = []
        for arn in chosen:
            entry = self._by_arn.get(arn)
            parts.append(entry.authority.bundle_pem if entry else self.builtin.bundle_pem)
        return b"".join(dict.fromkeys(parts))


def load(ca_directory: Path, builtin: Authority, clock: Clock) -> Authorities:
    """Every per-ARN CA under ``ca_directory/pca`` (none is fine)."""
    root = ca_directory / PCA_DIRECTORY
    managed = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            arn_file = entry / "arn"
            if not arn_file.is_file():
                continue
            arn = arn_file.read_text(encoding="utf-8").strip()
            found = authority.load_or_create(
                entry,
                clock,
                certificate_path=entry / "ca.pem",
                key_path=entry / "ca-key.pem",
            )
            listed = entry / "certificates"
            certificates = (
                tuple(line.strip() for line in listed.read_text().splitlines() if line.strip())
                if listed.is_file()
                else ()
            )
            managed.append(Managed(arn, found, certificates))
    return Authorities(builtin, managed)


def install(
    ca_directory: Path,
    arn: str,
    clock: Clock,
    *,
    certificate_pem: bytes | None = None,
    key_pem: bytes | None = None,
    certificates: Iterable[str] = (),
) -> Path:
    """Give ``arn`` a CA: the imported certificate and key, or a new root; returns its directory.

    Refuses a certificate and key that do not belong together, or a key that is not EC.
    """
    target = directory_of(ca_directory, arn)
    if certificate_pem is not None and key_pem is not None:
        chain = x509.load_pem_x509_certificates(certificate_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        public = (
            chain[0]
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key must be an EC key (P-256)")
        if (
            key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            != public
        ):
            raise ValueError("the key does not belong to the certificate")
    elif certificate_pem is None and key_pem is None:
        certificate, new_key = authority.new_root(clock, f"meshplane PCA {arn[-40:]}")
        certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
        key_pem = new_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    else:
        raise ValueError("a certificate and its key go together")
    target.mkdir(parents=True, exist_ok=True)
    for directory in (ca_directory, ca_directory / PCA_DIRECTORY, target):
        os.chmod(directory, 0o700)
    authority.write_private(target / "ca-key.pem", key_pem)
    (target / "ca.pem").write_bytes(certificate_pem)
    (target / "arn").write_text(arn + "\n", encoding="utf-8")
    (target / "certificates").write_text(
        "".join(f"{name}\n" for name in dict.fromkeys(certificates)), encoding="utf-8"
    )
    return target
