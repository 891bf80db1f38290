"""The ``APPMESH_*`` environment of App Mesh's ``proxyinit`` container, parsed and checked.

The injector (``appmesh-controller.md`` §2.2) sets these on the init container;
meshplane's injector sets the same, so a pod spec written for App Mesh's
route-manager image works with ``meshplane proxy-init`` unchanged:

==============================  =========================================  ==========
variable                        meaning                                    default
==============================  =========================================  ==========
``APPMESH_START_ENABLED``       ``1`` installs the rules                   off
``APPMESH_IGNORE_UID``          owner whose traffic is never redirected    1337
``APPMESH_IGNORE_GID``          the same for a group                       none
``APPMESH_ENVOY_INGRESS_PORT``  where inbound app-port traffic goes        15000
``APPMESH_ENVOY_EGRESS_PORT``   where other outbound TCP goes              15001
``APPMESH_APP_PORTS``           inbound ports to redirect (comma list)     none
``APPMESH_EGRESS_IGNORED_IP``   destinations (IPs or CIDRs) left alone     none
``APPMESH_EGRESS_IGNORED_PORTS``  destination ports left alone; 22 always  22
``APPMESH_ENABLE_IPV6``         ``1`` also installs the ip6tables copy     off
==============================  =========================================  ==========
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping

DEFAULT_IGNORE_UID = 1337
DEFAULT_INGRESS_PORT = 15000
DEFAULT_EGRESS_PORT = 15001
ALWAYS_IGNORED_PORT = 22
"""App Mesh's script appends 22 to the ignored ports whatever they are, so SSH keeps working."""


class ContractError(ValueError):
    """An ``APPMESH_*`` variable has a value the contract does not allow; says which."""


@dataclasses.dataclass(frozen=True)
class Contract:
    """What to intercept, as the injector asked for it."""

    start_enabled: bool = False
    ignore_uid: int | None = DEFAULT_IGNORE_UID
    ignore_gid: int | None = None
    ingress_port: int = DEFAULT_INGRESS_PORT
    egress_port: int = DEFAULT_EGRESS_PORT
    app_ports: tuple[int, ...] = ()
    egress_ignored_ips: tuple[str, ...] = ()
    """Normalised networks (``169.254.169.254/32``), IPv4 and IPv6 mixed, in the given order."""
    egress_ignored_ports: tuple[int, ...] = (ALWAYS_IGNORED_PORT,)
    enable_ipv6: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Contract:
        """Read the contract from ``environ``; raises :class:`ContractError` naming the variable."""
        ignored_ports = _ports(environ, "APPMESH_EGRESS_IGNORED_PORTS")
        if ALWAYS_IGNORED_PORT not in ignored_ports:
            ignored_ports += (ALWAYS_IGNORED_PORT,)
        return cls(
            start_enabled=_flag(environ, "APPMESH_START_ENABLED"),
            ignore_uid=_id(environ, "APPMESH_IGNORE_UID", DEFAULT_IGNORE_UID),
            ignore_gid=_id(environ, "APPMESH_IGNORE_GID", None),
            ingress_port=_port(environ, "APPMESH_ENVOY_INGRESS_PORT", DEFAULT_INGRESS_PORT),
            egress_port=_port(environ, "APPMESH_ENVOY_EGRESS_PORT", DEFAULT_EGRESS_PORT),
            app_ports=_ports(environ, "APPMESH_APP_PORTS"),
            egress_ignored_ips=_networks(environ, "APPMESH_EGRESS_IGNORED_IP"),
            egress_ignored_ports=ignored_ports,
            enable_ipv6=_flag(environ, "APPMESH_ENABLE_IPV6"),
        )


def _items(environ: Mapping[str, str], name: str) -> list[str]:
    """The comma-separated entries of ``name``, blanks dropped."""
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def _flag(environ: Mapping[str, str], name: str) -> bool:
    """``1`` is on; unset, empty and ``0`` are off; anything else is a mistake worth saying."""
    value = environ.get(name, "").strip()
    if value not in ("", "0", "1"):
        raise ContractError(f"{name} must be 1 or 0, got {value!r}")
    return value == "1"


def _number(name: str, text: str, low: int, high: int) -> int:
    """``text`` as an integer in [low, high]."""
    if not (text.isascii() and text.isdecimal()) or not low <= int(text) <= high:
        raise ContractError(f"{name} must hold numbers from {low} to {high}, got {text!r}")
    return int(text)


def _id(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A uid or gid, or ``default`` when unset."""
    value = environ.get(name, "").strip()
    return default if not value else _number(name, value, 0, 2**32 - 2)


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    """One TCP port, or ``default`` when unset."""
    value = environ.get(name, "").strip()
    return default if not value else _number(name, value, 1, 65535)


def _ports(environ: Mapping[str, str], name: str) -> tuple[int, ...]:
    """A comma list of TCP ports, duplicates dropped, order kept."""
    found = [_number(name, item, 1, 65535) for item in _items(environ, name)]
    return tuple(dict.fromkeys(found))


def _networks(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma list of addresses or CIDRs, normalised (``10.0.0.1`` → ``10.0.0.1/32``)."""
    found = []
    for item in _items(environ, name):
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            message = f"{name} holds {item!r}, which is not an IP address or CIDR"
            raise ContractError(message) from None
    return tuple(dict.fromkeys(found))
