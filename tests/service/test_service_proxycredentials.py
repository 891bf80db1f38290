"""Proxy credentials: bound to one node and replica, signed, expiring, keyed by the data dir."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock
from meshplane.service import proxycredentials
from meshplane.service.proxycredentials import Claims, InvalidCredential, ProxyCredentials

NODE = "mesh/demos/virtualNode/vn-blue"


def _credentials(tmp_path: Path, clock: FakeClock) -> ProxyCredentials:
    return ProxyCredentials(proxycredentials.load_key(tmp_path / "data"), clock, 60)


def test_a_token_names_its_node_and_replica_until_it_expires(tmp_path: Path) -> None:
    """verify() returns the issued claims; one second past the TTL the token is refused."""
    clock = FakeClock()
    credentials = _credentials(tmp_path, clock)
    issued = credentials.issue(NODE, "blue-0")
    assert issued.claims == Claims(NODE, "blue-0", 1_700_000_060.0)
    assert credentials.verify(issued.token) == issued.claims
    clock.advance(60)
    with pytest.raises(InvalidCredential) as expired:
        credentials.verify(issued.token)
    assert str(expired.value) == "the credential has expired; ask for a new one"


def test_a_changed_claim_or_another_key_breaks_the_signature(tmp_path: Path) -> None:
    """Re-encoding the claims for another replica, or another data dir's key, is refused."""
    clock = FakeClock()
    credentials = _credentials(tmp_path, clock)
    token = credentials.issue(NODE, "blue-0").token
    prefix, _, signature = token.split(".")
    forged_claims = credentials.issue(NODE, "blue-1").token.split(".")[1]
    for forged in (f"{prefix}.{forged_claims}.{signature}", token[:-2] + "AA", "mpt1..", "x"):
        with pytest.raises(InvalidCredential):
            credentials.verify(forged)
    other = ProxyCredentials(proxycredentials.load_key(tmp_path / "other"), clock, 60)
    with pytest.raises(InvalidCredential, match="signature does not match"):
        other.verify(token)


def test_the_key_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    """The key file is 0600 in a 0700 dir and is read back, so old tokens stay valid."""
    clock = FakeClock()
    token = _credentials(tmp_path, clock).issue(NODE, "blue-0").token
    key_file = tmp_path / "data" / proxycredentials.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert _credentials(tmp_path, clock).verify(token).replica == "blue-0"
