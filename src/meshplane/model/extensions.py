"""meshplane's extensions to App Mesh, carried in reserved tags every App Mesh client can set.

App Mesh users asked for traffic mirroring for years (aws-app-mesh-roadmap#35) and the
2019-01-25 API has no field for it; a new spec member would be refused by boto3 and the
``aws`` CLI before it left the machine. Tags travel through every client (boto3, the
CLI, Terraform, ``meshplane apply``), so an extension is a tag whose key starts with
``meshplane.dev/``. Such tags are validated like spec fields and, unlike other tags,
change the data plane.

``meshplane.dev/mirror`` on a route: ``<virtualNode>[:<port>]=<percent>`` copies that
percentage of the route's requests to the node (fire and forget: the caller only ever
sees the answer of the weighted targets). Example: ``vn-echo-backend-green=100``.

``meshplane.dev/mtls`` on a mesh: ``STRICT`` or ``PERMISSIVE`` turns on mutual TLS for
every virtual node of the mesh with certificates from meshplane's built-in CA (a SPIFFE
ID per virtual node or gateway), without a single ``tls`` block. A listener's own ``tls``
still wins; PERMISSIVE also accepts plaintext, for a migration one workload at a time.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

PREFIX = "meshplane.dev/"
MIRROR = f"{PREFIX}mirror"
MTLS = f"{PREFIX}mtls"
KNOWN = {MIRROR: ("route",), MTLS: ("mesh",)}
"""Extension tag → the kinds it may be set on."""

MTLS_MODES = ("STRICT", "PERMISSIVE")
"""The values of ``meshplane.dev/mtls``."""

_MIRROR_VALUE = re.compile(r"^(?P<node>[^:=\s]+)(?::(?P<port>\d+))?=(?P<percent>\d+)$")


@dataclasses.dataclass(frozen=True)
class Mirror:
    """Copy ``percent`` % of a route's requests to ``node`` (on ``port`` if given)."""

    node: str
    port: int | None
    percent: int


def is_extension(key: str) -> bool:
    """Whether a tag key is one of meshplane's (reserved prefix)."""
    return key.startswith(PREFIX)


def parse_mirror(value: str) -> Mirror:
    """``vn[:port]=percent`` as a :class:`Mirror`; ValueError saying what is wrong."""
    found = _MIRROR_VALUE.match(value)
    if found is None:
        raise ValueError(f"{value!r} is not <virtualNode>[:<port>]=<percent>")
    port = int(found["port"]) if found["port"] else None
    percent = int(found["percent"])
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1..65535")
    if not 0 <= percent <= 100:
        raise ValueError(f"percent {percent} is outside 0..100")
    return Mirror(found["node"], port, percent)


def problems(kind: str, tags: Iterable[tuple[str, str]]) -> list[str]:
    """Every extension tag in ``tags`` that is unknown, misplaced or malformed."""
    found: list[str] = []
    for key, value in tags:
        if not is_extension(key):
            continue
        where = f"tags[{key}]"
        if key not in KNOWN:
            found.append(f"{where}: unknown meshplane extension (known: {', '.join(KNOWN)})")
        elif kind not in KNOWN[key]:
            found.append(f"{where}: only valid on {', '.join(KNOWN[key])} resources, not {kind}")
        elif key == MIRROR:
            try:
                parse_mirror(value)
            except ValueError as exc:
                found.append(f"{where}: {exc}")
        elif key == MTLS and value not in MTLS_MODES:
            found.append(f"{where}: {value!r} is not one of {', '.join(MTLS_MODES)}")
    return found


def of(tags: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The extension tags among ``tags``, by key."""
    return {key: value for key, value in tags if is_extension(key)}


def mirror_of(extensions: Mapping[str, str]) -> Mirror | None:
    """A resource's mirror, if it has a well-formed one."""
    value = extensions.get(MIRROR)
    if value is None:
        return None
    try:
        return parse_mirror(value)
    except ValueError:
        return None


def mtls_of(extensions: Mapping[str, str]) -> str | None:
    """A mesh's automatic mTLS mode (``STRICT`` or ``PERMISSIVE``), if it has a valid one."""
    value = extensions.get(MTLS)
    return value if value in MTLS_MODES else None
