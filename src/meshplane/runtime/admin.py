"""What a sidecar's Envoy admin interface says: ready, in sync, how much traffic.

The runtime's status table reads three things from each sidecar's admin interface
(a unix socket of mode 0600, see :mod:`meshplane.runtime.sidecars`; a loopback port
for callers that pass one):

* ``/ready`` — 200 ``LIVE`` once Envoy finished initialising from xDS
  (App Mesh's readiness probe asked ``/server_info`` for the same state);
* ``*.version_text`` stats — the xDS version each subscription last accepted
  (``xds-envoy-notes.md`` §4 item 17); ``*.update_rejected`` counts NACKs;
* ``http.<prefix>.downstream_rq_total`` and ``..._rq_5xx`` — requests through
  the ingress listener(s) (``ingress…`` prefixes) and the egress one (``egress…``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import aiohttp

STATS_FILTER = r"version_text$|update_rejected$|^http\..*\.downstream_rq_(total|5xx)$"


@dataclasses.dataclass(frozen=True)
class SidecarHealth:
    """One reading of a sidecar's admin interface."""

    reachable: bool = False
    ready: bool = False
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Subscription (``cds``, ``lds``, ``rds.<name>``…) → version text accepted."""
    rejected: int = 0
    ingress_requests: int = 0
    egress_requests: int = 0
    errors_5xx: int = 0

    @property
    def sync(self) -> str:
        """A one-word sync state: ``down``, ``waiting``, ``NACKed`` or ``synced <version>``."""
        if not self.reachable:
            return "down"
        if self.rejected:
            return f"NACKed ({self.rejected})"
        listeners = self.versions.get("lds", "")
        if not listeners:
            return "waiting"
        return f"synced {listeners[:12]}"


def parse_stats(text: str) -> dict[str, str]:
    """Envoy's plain-text ``/stats`` (``name: value`` lines) as a dict of strings, unquoted."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            found[name.strip()] = value.strip().strip('"')
    return found


def _subscription(stat: str) -> str:
    """The subscription a version stat belongs to: ``cds``, ``lds`` or ``rds.<route config>``."""
    parts = stat.split(".")[:-1]
    for index, part in enumerate(parts):
        if part in {"cds", "lds", "rds", "eds"}:
            tail = ".".join(parts[index + 1 :])
            return f"{part}.{tail}" if tail else part
    return ".".join(parts)


def summarize(stats: Mapping[str, str], ready: bool) -> SidecarHealth:
    """Fold the stats into versions, NACK count and request counters."""
    versions: dict[str, str] = {}
    rejected = ingress = egress = errors = 0
    for name, value in stats.items():
        if name.endswith(".version_text"):
            versions[_subscription(name)] = value
        elif name.endswith(".update_rejected"):
            rejected += int(value or 0)
        elif name.startswith("http.") and not name.startswith("http.admin."):
            prefix = name.split(".")[1]
            count = int(value or 0)
            if name.endswith(".downstream_rq_5xx"):
                errors += count
            elif prefix.startswith("ingress"):
                ingress += count
            elif prefix.startswith("egress"):
                egress += count
    return SidecarHealth(True, ready, versions, rejected, ingress, egress, errors)


SOCKET_BASE = "http://envoy-admin"
"""The URL base of requests over a unix-socket session (the host name is not used)."""


def socket_session(path: Path, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """A session whose every request goes to the admin socket at ``path``."""
    return aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=str(path)), timeout=timeout, trust_env=False
    )


async def probe(
    session: aiohttp.ClientSession, host: str | None = None, port: int | None = None
) -> SidecarHealth:
    """Read one sidecar's admin interface; an unreachable one reads as ``down``.

    ``host`` and ``port`` name a TCP admin listener; without them ``session`` is a
    :func:`socket_session`.
    """
    base = SOCKET_BASE if host is None else f"http://{host}:{port}"
    try:
        async with session.get(f"{base}/ready") as answer:
            ready = answer.status == 200
        async with session.get(f"{base}/stats", params={"filter": STATS_FILTER}) as answer:
            stats = parse_stats(await answer.text())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return SidecarHealth()
    return summarize(stats, ready)
