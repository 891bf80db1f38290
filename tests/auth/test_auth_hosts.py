"""The Host names a server answers to, and which addresses count as loopback."""

from __future__ import annotations

from meshplane.api import auth
from meshplane.auth import hosts


def test_loopback_addresses_and_names() -> None:
    """127.0.0.0/8, ::1 and localhost are loopback; a LAN address or 0.0.0.0 is not."""
    assert [
        hosts.is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost")
    ] == [True] * 5
    assert [hosts.is_loopback(h) for h in ("0.0.0.0", "192.168.1.5", "example.com", "")] == [
        False
    ] * 4


def test_a_loopback_server_answers_to_loopback_names_and_the_allowed_ones() -> None:
    """Bound to 127.0.0.1: the loopback names plus --allow-host names, case-insensitively."""
    names = hosts.bound_names("127.0.0.1", ("Mesh.Internal",))
    assert names == {"127.0.0.1", "localhost", "::1", "localhost.localdomain", "mesh.internal"}
    assert hosts.bound_names("10.1.2.3") == {"10.1.2.3"}


def test_the_port_is_cut_from_the_host_header() -> None:
    """`Host` values with ports and IPv6 brackets reduce to the name compared."""
    assert [
        auth._host_name(v) for v in ("localhost:9080", "[::1]:9080", "[::1]", "EVIL.example", "::1")
    ] == ["localhost", "::1", "::1", "evil.example", "::1"]
