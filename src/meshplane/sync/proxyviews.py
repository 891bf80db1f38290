"""The per-proxy read model: what every Envoy runs, whether it is synced, and why not.

One server-side component owns "synced", so ``proxy-status``, the demo, tests and a
future console all read the same verdict instead of re-deriving it from three sources.
A proxy's view joins the xDS status board (connected, sent, ACKed, NACKs), the snapshot
cache (the target it should run) and the sync stage (the store revision and the
translation warnings its snapshot was built from). Its ``state`` is:

- ``DISCONNECTED`` — no ADS stream is open;
- ``HELD`` — the store does not have the proxy's mesh (or its virtual node or gateway)
  and did not delete it: the proxy keeps the config it runs and is given nothing until
  the store has it again (``held`` says why; see :mod:`meshplane.sync.syncing`);
- ``NACKED`` — Envoy rejected a response and still runs an older version of that type;
- ``SYNCED`` — its snapshot is built from the store's current revision (or later) and
  Envoy ACKed all of it (sent == ACKed per type is not enough: a snapshot is walked over
  in ACK-gated steps, and between two steps every type reads as ACKed);
- ``STALE`` — otherwise: not yet rebuilt, or not yet ACKed.

:meth:`ProxyViews.wait_for_revision` waits for every connected proxy to be synced at a
revision without polling: the status board's events and the sync stage's publish passes
wake it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from google.protobuf import json_format

from meshplane.sync import identities, proxyconfig
from meshplane.sync.syncing import Published
from meshplane.translate import diagnostics
from meshplane.xds import cache as xds_cache
from meshplane.xds import status as xds_status

SYNCED, STALE, NACKED, DISCONNECTED = "SYNCED", "STALE", "NACKED", "DISCONNECTED"
HELD = "HELD"
SHARED_CODES = frozenset({"tls-san-mismatch"})
"""Warning codes also listed under the proxies of the node they concern, not only the caller's."""


class Publications(Protocol):
    """What the sync stage last published per node key, and a hook after each pass."""

    @property
    def published(self) -> Mapping[str, Published]:
        """Node key → the store revision and warnings of its last snapshot."""

    @property
    def held(self) -> Mapping[str, str]:
        """Node key → why the proxy is held (keeps its config, given nothing)."""

    def subscribe(self, observer: Callable[[], None]) -> Callable[[], None]:
        """Call ``observer`` after every publish pass; returns the unsubscribe function."""


class ProxyViews:
    """Every proxy's view and the convergence verdict, read on the event loop."""

    def __init__(
        self,
        sync: Publications,
        cache: xds_cache.SnapshotCache,
        board: xds_status.StatusBoard,
        revision: Callable[[], int],
    ) -> None:
        """Join ``sync``, ``cache`` and ``board``; ``revision`` reads the store's revision."""
        self._sync = sync
        self._cache = cache
        self._board = board
        self._revision = revision
        self._changed = asyncio.Event()
        # Both sources call back synchronously on the loop; each call swaps in a fresh
        # event and sets the old one, so every waiter re-checks once per change.
        board.subscribe(self._wake)
        sync.subscribe(self._wake)

    def _wake(self, _event: object = None) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def changed(self) -> asyncio.Event:
        """An event set at the next change of any view (take it before reading the views)."""
        return self._changed

    async def wait_for_state(self, key: str, wanted: str, timeout: float) -> dict[str, Any]:
        """The view of ``key`` once its state is ``wanted``; TimeoutError after ``timeout``."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                for view in self.proxies():
                    if view["key"] == key and view["state"] == wanted:
                        return view
                await changed.wait()

    def proxies(self) -> list[dict[str, Any]]:
        """Every proxy the xDS server has seen, ordered by key (the endpoint's JSON items)."""
        return self._views(self._revision())

    def node_ids(self) -> dict[str, str]:
        """Every proxy's node key → its node id, ordered by key, with no view built.

        A page picks its proxies from these first, then asks :meth:`views_of` for theirs.
        """
        return {key: status.node.id for key, status in sorted(self._board.nodes().items())}

    def views_of(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The views of those ``keys`` the xDS server knows, at the store's revision.

        A console page shows 50 of thousands of proxies; building only theirs keeps its
        cost with the page instead of with the mesh.
        """
        revision, about = self._revision(), self._about_others()
        found = {}
        for key in keys:
            status = self._board.node(key)
            if status is not None:
                found[key] = self._view(key, status, revision, about)
        return found

    def config(self, key: str) -> dict[str, Any] | None:
        """What the proxy at ``key`` was sent, summarized; ``None`` when nothing was."""
        snapshot = self._cache.snapshot(key)
        if snapshot is None:
            return None
        return {"key": key, "version": snapshot.version, **proxyconfig.summarize(snapshot)}

    def admin_socket(self, key: str) -> str | None:
        """The admin socket a connected proxy announced (node metadata ``meshplane.admin``).

        Only the runtime on the control plane's machine announces one; it is read for
        ``proxy-config --envoy``, so the caller checks it is a socket this user owns.
        """
        status = self._board.nodes().get(key)
        if status is None or not status.connected:
            return None
        try:
            announced = json_format.MessageToDict(status.node.metadata).get("meshplane")
        except ValueError:
            return None
        path = announced.get("admin") if isinstance(announced, dict) else None
        return path if isinstance(path, str) and path.startswith("/") else None

    def stats_address(self, key: str) -> str | None:
        """``host:port`` of the stats listener the connected proxy ``key`` announced."""
        status = self._board.node(key)
        if status is None or not status.connected:
            return None
        return identities.stats_address(status.node)

    def report(self) -> dict[str, Any]:
        """``{"revision", "converged", "proxies"}`` as of now, at the store's revision."""
        revision = self._revision()
        views = self._views(revision)
        return {"revision": revision, "converged": _converged(views), "proxies": views}

    async def wait_for_revision(self, revision: int, timeout: float) -> dict[str, Any]:
        """The report once every connected proxy is synced at ``revision`` or later.

        After ``timeout`` seconds the current report is returned with ``converged`` false,
        so a caller can say which proxy lags.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    current = max(self._revision(), revision)
                    views = self._views(current)
                    if _converged(views):
                        return {"revision": current, "converged": True, "proxies": views}
                    await changed.wait()
        except TimeoutError:
            current = max(self._revision(), revision)
            views = self._views(current)
            return {"revision": current, "converged": _converged(views), "proxies": views}

    def _views(self, revision: int) -> list[dict[str, Any]]:
        about = self._about_others()
        return [
            self._view(key, status, revision, about)
            for key, status in sorted(self._board.nodes().items())
        ]

    def _about_others(self) -> dict[str, list[diagnostics.Warning]]:
        """Node id → warnings other proxies' translations recorded about that node.

        A SAN mismatch is found while translating the caller, but the backend's
        operator needs to read it too: its calls fail at the backend's handshake.
        """
        found: dict[str, list[diagnostics.Warning]] = {}
        for published in self._sync.published.values():
            for warning in published.warnings:
                if warning.code in SHARED_CODES:
                    listed = found.setdefault(warning.resource, [])
                    if warning not in listed:
                        listed.append(warning)
        return found

    def _view(
        self,
        key: str,
        status: xds_status.NodeStatus,
        revision: int,
        about: Mapping[str, list[diagnostics.Warning]],
    ) -> dict[str, Any]:
        published = self._sync.published.get(key)
        warnings = list(published.warnings) if published else []
        warnings += [w for w in about.get(status.node.id, ()) if w not in warnings]
        target = self._cache.snapshot(key)
        # Runs all of its published snapshot (see the module docstring for why per-type
        # sent == acked is not enough).
        synced = status.connected and target is not None and status.has_acked(target)
        types = {
            type_url.rsplit(".", 1)[-1]: {
                "sent": t.sent_version,
                "acked": t.acked_version,
                "nacks": t.nacks,
                "lastNack": t.last_nack.message if t.last_nack else None,
            }
            for type_url, t in sorted(status.types.items())
        }
        view: dict[str, Any] = {
            "key": key,
            "nodeId": status.node.id,
            "connected": status.connected,
            "revision": published.revision if published else None,
            "synced": synced,
            "warnings": [w.message for w in warnings],
            # The same warnings with their resource and stable code, for programs.
            "diagnostics": [w.as_json() for w in warnings],
            # Make-before-break steps that went ahead without Envoy's ACK in time.
            "gateTimeouts": status.gate_timeouts,
            "held": self._sync.held.get(key),
            "types": types,
            # The sidecar's read-only stats listener (``host:port``), when it has one.
            "stats": identities.stats_address(status.node),
        }
        view["state"] = state(view, revision)
        return view


def state(view: dict[str, Any], revision: int) -> str:
    """The one definition of a proxy's state at store ``revision`` (module docstring)."""
    if not view["connected"]:
        return DISCONNECTED
    if view.get("held"):
        return HELD
    if any(t["lastNack"] and t["acked"] != t["sent"] for t in view["types"].values()):
        return NACKED
    rebuilt = view["revision"] is not None and view["revision"] >= revision
    return SYNCED if rebuilt and view["synced"] else STALE


def _converged(views: list[dict[str, Any]]) -> bool:
    return all(v["state"] == SYNCED for v in views if v["connected"])
