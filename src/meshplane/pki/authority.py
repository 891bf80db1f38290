"""The CA itself: where its key lives, and how it signs a leaf certificate.

Keys are ECDSA P-256: fast to generate and to handshake with, accepted by
Envoy (BoringSSL) as server and client keys. Leaf certificates carry both
server and client EKUs, since every sidecar is both; their SANs are a URI for
a name with a scheme (``spiffe://…``) and a DNS name for a hostname.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshplane.kit.clock import Clock
from meshplane.model import certnames

CA_LIFETIME_S = 10 * 365 * 86400
"""Ten years: the built-in root outlives any data directory it is created in."""
BACKDATE_S = 60
"""Leaf certificates start a minute in the past, for clocks a little behind ours."""

SubjectName = x509.UniformResourceIdentifier | x509.DNSName | x509.IPAddress


@dataclasses.dataclass(frozen=True)
class Issued:
    """One leaf certificate: PEM chain (leaf first), PEM key, serial and validity."""

    chain_pem: bytes
    key_pem: bytes
    serial: int
    issued_at: float
    not_before: float
    """Backdated by :data:`BACKDATE_S` from ``issued_at``."""
    not_after: float
    sans: tuple[str, ...]


def _now(clock: Clock) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(clock(), tz=datetime.UTC)


def subject_names(name: str, dns_names: tuple[str, ...] = ()) -> list[SubjectName]:
    """The SANs a secret name gives (:func:`meshplane.model.certnames.issued_sans`) as X.509."""
    found: list[SubjectName] = []
    for kind, value in certnames.issued_sans(name, dns_names):
        if kind == "URI":
            found.append(x509.UniformResourceIdentifier(value))
        elif kind == "DNS":
            found.append(x509.DNSName(value))
        else:
            found.append(x509.IPAddress(ipaddress.ip_address(value)))
    return found


class Authority:
    """Signs leaf certificates with a CA key; ``bundle_pem`` is what peers must trust."""

    def __init__(
        self,
        certificate: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        chain: list[x509.Certificate],
        clock: Clock,
    ) -> None:
        """Sign with ``key`` as ``certificate``; ``chain`` is it and its issuers up to a root."""
        self.certificate = certificate
        self._key = key
        self._chain = chain
        self._clock = clock
        self.bundle_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        """The CA certificates to trust (the root, after any intermediate)."""

    def sign_intermediate(self, certificate: x509.Certificate) -> bytes:
        """Another CA's subject and key certified as this CA's intermediate (PEM).

        For operators who keep their root offline: ``--ca-cert`` takes the result
        followed by this CA's bundle, ``--ca-key`` the other CA's key.
        """
        now = _now(self._clock)
        signed = (
            x509.CertificateBuilder()
            .subject_name(certificate.subject)
            .issuer_name(self.certificate.subject)
            .public_key(certificate.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=BACKDATE_S))
            .not_valid_after(self.certificate.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(ca_usage(), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        return signed.public_bytes(serialization.Encoding.PEM)

    def issue(self, name: str, ttl_s: int, dns_names: tuple[str, ...] = ()) -> Issued:
        """A fresh key and a leaf certificate for ``name``, valid ``ttl_s`` seconds."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now(self._clock)
        not_before = now - datetime.timedelta(seconds=BACKDATE_S)
        not_after = now + datetime.timedelta(seconds=ttl_s)
        names = subject_names(name, dns_names)
        serial = x509.random_serial_number()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        leaf = builder.sign(self._key, hashes.SHA256())
        chain = [leaf, *self._chain[:-1]] if len(self._chain) > 1 else [leaf]
        return Issued(
            chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            serial=serial,
            issued_at=now.timestamp(),
            not_before=not_before.timestamp(),
            not_after=not_after.timestamp(),
            sans=tuple(str(n.value) for n in names),
        )


def ca_usage() -> x509.KeyUsage:
    """What a CA key signs: certificates and revocation lists (every CA meshplane makes)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _new_root(clock: Clock) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed root for this control plane."""
    return new_root(clock, f"meshplane CA {secrets.token_hex(4)}")


def new_root(clock: Clock, common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA root named ``common_name`` (the built-in CA, or one per PCA ARN)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now(clock)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshplane"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=BACKDATE_S))
        .not_valid_after(now + datetime.timedelta(seconds=CA_LIFETIME_S))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only (created 0600, never world-readable)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: the CA key must be an EC key (P-256)")
    return key


def load_or_create(
    directory: Path,
    clock: Clock,
    *,
    certificate_path: Path | None = None,
    key_path: Path | None = None,
) -> Authority:
    """The CA of ``directory`` (``ca.pem``, ``ca-key.pem``), created on first use.

    With ``certificate_path`` and ``key_path`` (bring your own intermediate),
    those sign instead: the certificate file holds the intermediate first and
    then its issuers up to the root, which is the bundle peers trust.
    """
    if (certificate_path is None) != (key_path is None):
        raise ValueError("--ca-cert and --ca-key go together")
    if certificate_path is not None and key_path is not None:
        chain = x509.load_pem_x509_certificates(certificate_path.read_bytes())
        return Authority(chain[0], _read_key(key_path), chain, clock)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    cert_file, key_file = directory / "ca.pem", directory / "ca-key.pem"
    if not cert_file.exists() or not key_file.exists():
        certificate, key = _new_root(clock)
        write_private(
            key_file,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return Authority(certificate, _read_key(key_file), [certificate], clock)


def leaf_sans(path: str) -> tuple[str, ...] | None:
    """The SANs of a certificate file's first certificate; ``None`` if unreadable or not PEM.

    How the control plane knows what a ``file`` certificate presents, when the file is on
    its machine (local mode), to say that a caller's SANs cannot match it.
    """
    try:
        chain = describe(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    if not chain:
        return None
    sans = chain[0]["sans"]
    return tuple(str(s) for s in sans) if isinstance(sans, list) else None


def describe(chain_pem: bytes) -> list[dict[str, object]]:
    """Each certificate of a PEM chain as operators read it: subject, SANs, serial, expiry.

    Never anything secret: a key in the same bytes is not parsed.
    """
    found: list[dict[str, object]] = []
    for certificate in x509.load_pem_x509_certificates(chain_pem):
        try:
            names = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
            sans = [str(n.value) for n in names]
        except x509.ExtensionNotFound:
            sans = []
        found.append(
            {
                "subject": certificate.subject.rfc4514_string(),
                "sans": sans,
                "serial": format(certificate.serial_number, "x"),
                "notAfter": certificate.not_valid_after_utc.isoformat(),
            }
        )
    return found
