"""The webhook server's TLS: a private CA and a serving certificate it signs.

The API server calls admission webhooks over HTTPS only and checks the serving
certificate against the configuration's ``caBundle``. Out of cluster,
``meshplane k8s`` makes both itself (this module) and registers the CA; in a
cluster the chart's generated Secret does the same job. Keys are ECDSA P-256;
certificates are valid for a year from ``now`` (injected, so tests are exact).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshplane.pki import authority

VALIDITY = datetime.timedelta(days=365)


@dataclasses.dataclass(frozen=True)
class ServingPair:
    """PEM bytes: the CA certificate, and the server's certificate and key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``tls.crt``/``tls.key`` (key readable by the owner only) and ``ca.crt``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / "tls.crt", directory / "tls.key"
        (directory / "ca.crt").write_bytes(self.ca_pem)
        cert.write_bytes(self.cert_pem + self.ca_pem)
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem)
        return cert, key

    def server_context(self, directory: Path) -> ssl.SSLContext:
        """A TLS server context serving this pair (files written under ``directory``)."""
        cert, key = self.write(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return context


def load_context(directory: Path) -> ssl.SSLContext:
    """A TLS server context from ``tls.crt``/``tls.key`` in ``directory`` (a mounted Secret)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    return context


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def issue(hosts: Sequence[str], now: datetime.datetime) -> ServingPair:
    """A fresh CA and a serving certificate for ``hosts`` (DNS names or IP literals)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("meshplane webhook CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(authority.ca_usage(), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ServingPair(_pem(ca), _pem(cert), key_pem)
