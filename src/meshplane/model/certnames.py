"""The SANs a certificate issued for a secret name carries: one rule for the CA and for translation.

The built-in CA issues a leaf whose SAN is the SDS secret name that asked for it
(:mod:`meshplane.pki`); translation needs the same answer without the CA, to say
statically that a caller's ``subjectAlternativeNames`` can never match what its
backend presents. Both read it from here, so the two cannot drift.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

_HOSTNAME = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9*]([A-Za-z0-9.*-]{0,251}[A-Za-z0-9])?$")

SanType = Literal["URI", "DNS", "IP"]


def san_of(name: str) -> tuple[SanType, str] | None:
    """A URI for ``scheme://…``, a DNS name for a hostname, an IP for an address; else none.

    An ARN or another opaque name gives no SAN of its own.
    """
    if "://" in name:
        return ("URI", name)
    if _HOSTNAME.match(name):
        return ("DNS", name)
    try:
        return ("IP", str(ipaddress.ip_address(name)))
    except ValueError:
        return None


def issued_sans(name: str, dns_names: tuple[str, ...] = ()) -> list[tuple[SanType, str]]:
    """Every SAN of a certificate issued for ``name`` with extra ``dns_names``, in order."""
    found: list[tuple[SanType, str]] = []
    own = san_of(name)
    if own is not None:
        found.append(own)
    found += [("DNS", extra) for extra in dns_names if extra != name]
    return found
