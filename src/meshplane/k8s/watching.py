"""List+watch of one kind, feeding the controller: resume from resourceVersion, re-list on 410.

The informer pattern without a framework: list everything (the list's
resourceVersion is the point the watch resumes from), then watch; lightkube
re-opens a watch the server closed, from the last version it saw. When the
server has compacted that version away it answers ``410 Gone`` and the only
correct recovery is a fresh list, which :meth:`Controller.relist` turns into
the right deletions. Other failures (the API server restarting, the CRDs not
installed yet) back off and retry. Every change sets ``changed`` so the
reconcile loop runs a pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx2
from lightkube import ALL_NS, ApiError, AsyncClient
from lightkube.core.exceptions import NotReadyError

from meshplane.k8s import apiserver

log = logging.getLogger(__name__)

WATCH_SECONDS = 290
"""The server closes each watch after this long; lightkube re-opens it from the last version."""


class Sink(Protocol):
    """What a watch feeds: the controller, or the pod index of Cloud Map registration."""

    def relist(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        """A full list of ``kind``."""

    def observe(self, kind: str, event_type: str, body: dict[str, Any]) -> None:
        """One watch event."""


def _body(item: Any) -> dict[str, Any]:
    return dict(item.to_dict() if hasattr(item, "to_dict") else item)


async def watch(
    client: AsyncClient,
    kind: str,
    controller: Sink,
    changed: asyncio.Event,
    backoff: float = 1.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    resource: Any = None,
) -> None:
    """Keep ``controller``'s view of ``kind`` current until cancelled (``sleep`` backs off).

    ``resource`` is the lightkube resource (default: the controller's ``WATCHED[kind]``).
    """
    resource = resource if resource is not None else apiserver.WATCHED[kind]
    scope: dict[str, Any] = {"namespace": ALL_NS} if apiserver.namespaced(kind) else {}
    while True:
        try:
            listing = client.list(resource, **scope)
            bodies = [_body(item) async for item in listing]
            controller.relist(kind, bodies)
            changed.set()
            try:
                version: str | None = listing.resourceVersion
            except NotReadyError:
                version = None
            async for event_type, obj in client.watch(
                resource, resource_version=version, server_timeout=WATCH_SECONDS, **scope
            ):
                controller.observe(kind, event_type, _body(obj))
                changed.set()
        except ApiError as error:
            if error.status.code == 410:
                log.info("watch of %s expired (410 Gone): listing again", kind)
                continue
            log.warning("list/watch of %s failed: %s; retrying", kind, error.status.message)
            await sleep(backoff)
        except (httpx2.HTTPError, OSError) as error:
            log.warning("list/watch of %s failed: %s; retrying", kind, error)
            await sleep(backoff)
