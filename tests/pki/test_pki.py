"""The built-in CA: created once with a private key file, issuing leaves that chain to it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from meshplane.kit.clock import FakeClock
from meshplane.pki import Issuer, authority


def _san(issued: authority.Issued) -> x509.SubjectAlternativeName:
    leaf = x509.load_pem_x509_certificates(issued.chain_pem)[0]
    return leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_first_start_creates_the_ca_with_an_owner_only_key(tmp_path: Path) -> None:
    """ca.pem and ca-key.pem appear; the key is 0600; a second start loads the same CA."""
    first = authority.load_or_create(tmp_path / "ca", FakeClock())
    key_mode = stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode)
    assert key_mode == 0o600
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700
    again = authority.load_or_create(tmp_path / "ca", FakeClock())
    assert again.bundle_pem == first.bundle_pem == (tmp_path / "ca" / "ca.pem").read_bytes()
    root = x509.load_pem_x509_certificate(first.bundle_pem)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_a_spiffe_name_becomes_the_uri_san_of_a_leaf_chaining_to_the_root(tmp_path: Path) -> None:
    """The secret name is the URI SAN; the leaf is signed by ca.pem and lives exactly ttl."""
    clock = FakeClock(1_800_000_000.0)
    ca = authority.load_or_create(tmp_path / "ca", clock)
    issued = ca.issue("spiffe://meshplane.local/mesh/demos/virtualNode/vn-a", 3600)
    leaf = x509.load_pem_x509_certificates(issued.chain_pem)[0]
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.bundle_pem))
    assert _san(issued).get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://meshplane.local/mesh/demos/virtualNode/vn-a"
    ]
    assert leaf.not_valid_after_utc.timestamp() == 1_800_003_600.0
    assert leaf.not_valid_before_utc.timestamp() == 1_800_000_000.0 - authority.BACKDATE_S
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert issued.sans == ("spiffe://meshplane.local/mesh/demos/virtualNode/vn-a",)


def test_hostnames_give_dns_sans_and_arns_only_the_extra_names(tmp_path: Path) -> None:
    """A hostname is a DNS SAN; an ACM ARN gives no SAN of its own, only the node's DNS name."""
    ca = authority.load_or_create(tmp_path / "ca", FakeClock())
    assert ca.issue("echo.demos.svc", 60).sans == ("echo.demos.svc",)
    arn = "arn:aws:acm:us-west-2:111122223333:certificate/x"
    assert ca.issue(arn, 60, ("secure.demos.svc",)).sans == ("secure.demos.svc",)


def test_the_issuer_reuses_a_certificate_until_two_thirds_of_its_life(tmp_path: Path) -> None:
    """Same serial before the renewal point, a new one at it; the next renewal moves on."""
    clock = FakeClock(1_800_000_000.0)
    issuer = Issuer(authority.load_or_create(tmp_path / "ca", clock), clock, ttl_s=30)
    first = issuer.current("spiffe://meshplane.local/a")
    assert issuer.next_renewal() == 1_800_000_020.0
    clock.advance(19.9)
    assert issuer.current("spiffe://meshplane.local/a").serial == first.serial
    assert issuer.due({("spiffe://meshplane.local/a", ())}) is False
    assert issuer.due_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert issuer.due({("spiffe://meshplane.local/a", ())}) is True
    second = issuer.current("spiffe://meshplane.local/a")
    assert second.serial != first.serial
    assert issuer.next_renewal() == 1_800_000_040.0
    assert issuer.count == 2


def test_bring_your_own_intermediate_signs_and_its_chain_is_the_bundle(tmp_path: Path) -> None:
    """--ca-cert/--ca-key: leaves are signed by the intermediate and carry it in their chain."""
    root = authority.load_or_create(tmp_path / "root", FakeClock())
    intermediate_dir = tmp_path / "intermediate"
    authority.load_or_create(intermediate_dir, FakeClock())
    # Re-sign the second CA's key as an intermediate of the first (what an operator brings).
    inner = x509.load_pem_x509_certificate((intermediate_dir / "ca.pem").read_bytes())
    signed = root.sign_intermediate(inner)
    (tmp_path / "chain.pem").write_bytes(signed + root.bundle_pem)
    ca = authority.load_or_create(
        tmp_path / "unused",
        FakeClock(),
        certificate_path=tmp_path / "chain.pem",
        key_path=intermediate_dir / "ca-key.pem",
    )
    issued = ca.issue("spiffe://meshplane.local/b", 60)
    leaf, middle = x509.load_pem_x509_certificates(issued.chain_pem)
    leaf.verify_directly_issued_by(middle)
    middle.verify_directly_issued_by(x509.load_pem_x509_certificate(root.bundle_pem))
    assert ca.bundle_pem == signed + root.bundle_pem
    assert not (tmp_path / "unused").exists()
