"""One CA per ACM Private CA ARN: `meshplane ca import|create|list`, files, and which CA signs."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshplane.kit.clock import system_clock
from meshplane.pki import authorities, authority
from meshplane.pki.authority import Issued
from meshplane.pki.issuing import Issuer

PCA_A = "arn:aws:acm-pca:us-west-2:111122223333:certificate-authority/a"
PCA_B = "arn:aws:acm-pca:us-west-2:111122223333:certificate-authority/b"
CERT_B = "arn:aws:acm:us-west-2:111122223333:certificate/shop"


def _ca(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "meshplane.cli.main", "ca", *args, "--data-dir", str(data)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _external_ca(tmp_path: Path) -> tuple[Path, Path, x509.Certificate]:
    """A CA made elsewhere (as a PCA's exported certificate and key would be)."""
    certificate, key = authority.new_root(system_clock, "someone else's PCA")
    cert_file, key_file = tmp_path / "pca.pem", tmp_path / "pca-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, certificate


def _handshake(served: Issued, bundle: bytes, tmp_path: Path) -> str:
    """A real TLS handshake (in memory): a server presenting ``served``, a client trusting
    ``bundle`` and checking the name shop.demos; ``ok`` or the client's verify reason."""
    (tmp_path / "leaf.pem").write_bytes(served.chain_pem)
    (tmp_path / "leaf-key.pem").write_bytes(served.key_pem)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
    client_context = ssl.create_default_context(cadata=bundle.decode())
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    server = server_context.wrap_bio(pipes[0], pipes[1], server_side=True)
    client = client_context.wrap_bio(pipes[2], pipes[3], server_hostname="shop.demos")
    done = {"client": False, "server": False}
    for _ in range(10):
        for side, conn in (("client", client), ("server", server)):
            if done[side]:
                continue
            try:
                conn.do_handshake()
                done[side] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as error:
                return str(error.reason)
        pipes[0].write(pipes[3].read())  # client -> server
        pipes[2].write(pipes[1].read())  # server -> client
        if all(done.values()):
            return "ok"
    raise AssertionError("the handshake did not finish")


def test_import_create_and_list_write_the_documented_layout(tmp_path: Path) -> None:
    """import keeps the given CA (key 0600), create makes a new root, list shows both."""
    data = tmp_path / "data"
    cert_file, key_file, imported = _external_ca(tmp_path)
    done = _ca(
        "import",
        PCA_B,
        "--cert",
        str(cert_file),
        "--key",
        str(key_file),
        "--certificate",
        CERT_B,
        data=data,
    )
    target_b = authorities.directory_of(data / "ca", PCA_B)
    assert (done.returncode, done.stdout) == (
        0,
        f"{PCA_B}: CA in {target_b} (restart meshplane serve to use it)\n",
    )
    assert (target_b / "ca.pem").read_bytes() == cert_file.read_bytes()
    assert (target_b / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert (target_b / "arn").read_text() == f"{PCA_B}\n"
    assert (target_b / "certificates").read_text() == f"{CERT_B}\n"
    assert _ca("create", PCA_A, data=data).returncode == 0
    target_a = authorities.directory_of(data / "ca", PCA_A)
    created = x509.load_pem_x509_certificate((target_a / "ca.pem").read_bytes())
    assert created.fingerprint(created.signature_hash_algorithm) != imported.fingerprint(
        imported.signature_hash_algorithm
    )
    listing = sorted(_ca("list", data=data).stdout.splitlines())
    assert listing == sorted(
        [f"{PCA_A}  {target_a}  issues: -", f"{PCA_B}  {target_b}  issues: {CERT_B}"]
    )
    assert os.stat(data / "ca").st_mode & 0o777 == 0o700


def test_import_refuses_a_key_of_another_certificate_and_a_non_pca_arn(tmp_path: Path) -> None:
    """A key that does not match, or an ARN that is not a PCA's, is refused in one line."""
    data = tmp_path / "data"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    cert_file, _, _ = _external_ca(tmp_path / "one")
    _, other_key, _ = _external_ca(tmp_path / "two")
    done = _ca("import", PCA_A, "--cert", str(cert_file), "--key", str(other_key), data=data)
    assert (done.returncode, done.stderr) == (
        1,
        "error: the key does not belong to the certificate\n",
    )
    assert not authorities.directory_of(data / "ca", PCA_A).exists()
    wrong = _ca("create", CERT_B, data=data)
    assert (wrong.returncode, wrong.stderr) == (
        1,
        f"error: '{CERT_B}' is not an ACM Private CA ARN (arn:aws:acm-pca:…)\n",
    )


def test_each_arn_signs_and_trusts_apart_from_the_builtin_ca(tmp_path: Path) -> None:
    """Certificates listed for B chain to B only; A's bundle is A's; others stay built-in."""
    ca_dir = tmp_path / "ca"
    builtin = authority.load_or_create(ca_dir, system_clock)
    authorities.install(ca_dir, PCA_A, system_clock)
    authorities.install(ca_dir, PCA_B, system_clock, certificates=[CERT_B])
    issuer = Issuer(
        builtin, system_clock, 3600, authorities=authorities.load(ca_dir, builtin, system_clock)
    )
    roots = {arn: x509.load_pem_x509_certificates(issuer.bundle((arn,))) for arn in (PCA_A, PCA_B)}
    shop = issuer.current(CERT_B, ("shop.demos",))
    x509.load_pem_x509_certificates(shop.chain_pem)[0].verify_directly_issued_by(roots[PCA_B][0])
    assert _handshake(shop, issuer.bundle((PCA_B,)), tmp_path) == "ok"
    assert _handshake(shop, issuer.bundle((PCA_A, PCA_B)), tmp_path) == "ok"
    assert _handshake(shop, issuer.bundle((PCA_A,)), tmp_path) == "CERTIFICATE_VERIFY_FAILED"
    assert _handshake(shop, builtin.bundle_pem, tmp_path) == "CERTIFICATE_VERIFY_FAILED"
    other = x509.load_pem_x509_certificates(issuer.current("spiffe://meshplane.local/x").chain_pem)
    other[0].verify_directly_issued_by(builtin.certificate)
    assert issuer.bundle(()) == builtin.bundle_pem
    unknown = "arn:aws:acm-pca:us-west-2:111122223333:certificate-authority/unknown"
    assert issuer.bundle((unknown,)) == builtin.bundle_pem
    assert x509.load_pem_x509_certificates(issuer.bundle((PCA_A, PCA_B))) == [
        roots[PCA_A][0],
        roots[PCA_B][0],
    ]
