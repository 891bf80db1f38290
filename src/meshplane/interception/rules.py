"""The nat rules a contract asks for, per address family: pure data, no tools run.

The shape is App Mesh's (``appmesh-controller.md`` §2.4), in its own chains so
they can be replaced and removed without touching anyone else's rules::

    -A PREROUTING -p tcp -m addrtype ! --src-type LOCAL -j APPMESH_INGRESS
    -A OUTPUT -p tcp -m addrtype ! --dst-type LOCAL -j APPMESH_EGRESS
    -A APPMESH_EGRESS -m owner --uid-owner 1337 -j RETURN
    -A APPMESH_EGRESS -p tcp -m multiport --dports 22 -j RETURN
    -A APPMESH_EGRESS -d 169.254.169.254/32 -j RETURN
    -A APPMESH_EGRESS -p tcp -j REDIRECT --to-ports 15001
    -A APPMESH_INGRESS -p tcp -m multiport --dports 80 -j REDIRECT --to-ports 15000

Only non-LOCAL destinations are redirected outbound, so the sidecar's hop to
the app on 127.0.0.1 and a gateway's self-redirect stay direct; only
non-LOCAL sources inbound, so the app's own calls to itself do too. UDP (and
so DNS) is never touched. The ingress chain exists only when there are app
ports, as in App Mesh's script.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence

from meshplane.interception.contract import Contract

TABLE = "nat"
INGRESS_CHAIN = "APPMESH_INGRESS"
EGRESS_CHAIN = "APPMESH_EGRESS"
CHAINS = (EGRESS_CHAIN, INGRESS_CHAIN)
"""Every chain proxy-init owns, in the order iptables-save lists them."""
MULTIPORT_LIMIT = 15
"""The multiport match takes at most 15 ports per rule."""

Rule = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Family:
    """An address family and the tools that manage its nat table."""

    name: str
    tool: str
    restore: str
    version: int


IPV4 = Family("IPv4", "iptables", "iptables-restore", 4)
IPV6 = Family("IPv6", "ip6tables", "ip6tables-restore", 6)


@dataclasses.dataclass(frozen=True)
class Ruleset:
    """One family's rules: each owned chain's contents and the hooks that jump to them."""

    family: Family
    chains: dict[str, tuple[Rule, ...]]
    """Owned chain → its rules in order (without the ``-A <chain>`` prefix)."""
    hooks: tuple[tuple[str, Rule], ...]
    """(built-in chain, rule) pairs that must exist once each."""

    def restore_script(self) -> str:
        """``iptables-restore --noflush`` input that (re)creates the owned chains atomically.

        With ``--noflush`` only the declared chains are flushed, so the chains
        of other tools in the table are left alone.
        """
        lines = [f"*{TABLE}"]
        lines += [f":{chain} - [0:0]" for chain in self.chains]
        for chain, rules in self.chains.items():
            lines += [" ".join(("-A", chain, *rule)) for rule in rules]
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"


def build(contract: Contract, family: Family) -> Ruleset:
    """The rules ``contract`` asks for in ``family`` (ignored IPs of the other family left out)."""
    egress: list[Rule] = []
    if contract.ignore_uid is not None:
        egress.append(("-m", "owner", "--uid-owner", str(contract.ignore_uid), "-j", "RETURN"))
    if contract.ignore_gid is not None:
        egress.append(("-m", "owner", "--gid-owner", str(contract.ignore_gid), "-j", "RETURN"))
    egress += [
        ("-p", "tcp", "-m", "multiport", "--dports", ports, "-j", "RETURN")
        for ports in _port_lists(contract.egress_ignored_ports)
    ]
    egress += [
        ("-d", network, "-j", "RETURN")
        for network in contract.egress_ignored_ips
        if ipaddress.ip_network(network).version == family.version
    ]
    egress.append(("-p", "tcp", "-j", "REDIRECT", "--to-ports", str(contract.egress_port)))
    chains = {EGRESS_CHAIN: tuple(egress)}
    hooks: list[tuple[str, Rule]] = []
    if contract.app_ports:
        redirect = ("-j", "REDIRECT", "--to-ports", str(contract.ingress_port))
        chains[INGRESS_CHAIN] = tuple(
            ("-p", "tcp", "-m", "multiport", "--dports", ports, *redirect)
            for ports in _port_lists(contract.app_ports)
        )
        hooks.append(("PREROUTING", _hook("--src-type", INGRESS_CHAIN)))
    hooks.append(("OUTPUT", _hook("--dst-type", EGRESS_CHAIN)))
    return Ruleset(family, chains, tuple(hooks))


def all_hooks() -> tuple[tuple[str, Rule], ...]:
    """Every hook proxy-init may have installed, for removal whatever the contract was."""
    return (
        ("PREROUTING", _hook("--src-type", INGRESS_CHAIN)),
        ("OUTPUT", _hook("--dst-type", EGRESS_CHAIN)),
    )


def _hook(address_type: str, chain: str) -> Rule:
    """TCP whose source or destination is not a local address jumps to ``chain``."""
    return ("-p", "tcp", "-m", "addrtype", "!", address_type, "LOCAL", "-j", chain)


def _port_lists(ports: Sequence[int]) -> list[str]:
    """Ports as multiport lists of at most :data:`MULTIPORT_LIMIT` each."""
    return [
        ",".join(str(port) for port in ports[start : start + MULTIPORT_LIMIT])
        for start in range(0, len(ports), MULTIPORT_LIMIT)
    ]
