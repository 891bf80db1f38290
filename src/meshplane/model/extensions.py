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
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

PREFIX = "meshplane.dev/"
MIRROR = f"{PREFIX}mirror"
KNOWN = {MIRROR: ("route",)}
"""Extension tag → the kinds it may be set on."""

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
