"""Which names a server answers to, and whether an address is the loopback interface.

The ``Host`` check of the API (DNS rebinding: ``evil.example`` resolving to 127.0.0.1)
accepts only the names of the address the server is bound to plus ``--allow-host``
names; ``--auth none`` is refused unless that address is the loopback interface.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address to bind) is the loopback interface."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bound_names(host: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The ``Host`` names a server bound to ``host`` answers to (lower case, no port)."""
    names = {host.lower().strip("[]"), *(e.lower().strip("[]") for e in extra)}
    if is_loopback(host):
        names |= LOOPBACK_NAMES
    elif host in ("0.0.0.0", "::", ""):  # every interface: loopback, the host's names
        hostname = socket.gethostname()
        names |= LOOPBACK_NAMES | {hostname.lower(), socket.getfqdn().lower()}
        try:
            names |= {str(a[4][0]).lower() for a in socket.getaddrinfo(hostname, None)}
        except OSError:
            log.warning("could not resolve %s; use --allow-host for its addresses", hostname)
    return frozenset(names)
