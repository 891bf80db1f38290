"""The leader's writes: finalizers, ``/status`` merge patches and Events, as the controller did.

:class:`Writer` executes a :class:`~meshplane.k8s.controlling.Plan`. Finalizer
patches carry the resourceVersion they were computed from, so a concurrent
change makes them fail (409) instead of dropping someone else's finalizer; the
next pass recomputes them. Status is a JSON merge patch of the status
subresource (``None`` removes a key the old controller or an earlier pass
wrote). Events are core/v1 Events from component ``meshplane``; one with the
same reason and message as the last one for that object is not repeated.
:class:`Outbox` holds the writes the reconcile loop planned until the writer
takes them, merging plans made meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.types import PatchType

from meshplane.k8s import apiserver
from meshplane.k8s.controlling import EventWrite, Plan
from meshplane.kit.clock import Clock
from meshplane.manifests.objects import ManifestObject, timestamp

log = logging.getLogger(__name__)

COMPONENT = "meshplane"
CONCURRENCY = 16
"""Writes in flight at once."""
RECENT = 10.0
"""Seconds an identical write is not repeated (the watch has not reported it back yet)."""


def _scope(obj: ManifestObject) -> dict[str, Any]:
    return {"namespace": obj.namespace} if obj.namespace else {}


class Writer:
    """Writes plans to the API server (call it only while leading)."""

    def __init__(self, client: AsyncClient, identity: str, clock: Clock) -> None:
        """``identity`` names this replica in Events (``reportingInstance``)."""
        self._client = client
        self._identity = identity
        self._clock = clock
        self._said: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._recent: dict[tuple[Any, str, str, str], tuple[dict[str, Any], float]] = {}

    async def write(self, plan: Plan) -> bool:
        """Execute ``plan``; ``False`` when a write failed and the pass should be retried.

        Writes go out ``CONCURRENCY`` at a time (a first sync of a thousand objects is
        two thousand requests); finalizers before status, as the controller added them
        before it created the twin. A write identical to one made in the last
        ``RECENT`` seconds is skipped: the plan was computed before the watch reported it.
        """
        now = time.monotonic()
        self._recent = {k: v for k, v in self._recent.items() if now - v[1] < RECENT}
        finalizers = [
            (
                apiserver.CUSTOM[change.obj.kind],
                change.obj,
                {
                    "metadata": {
                        "finalizers": list(change.finalizers),
                        "resourceVersion": change.resource_version,
                    }
                },
            )
            for change in plan.finalizers
        ]
        statuses = [
            (apiserver.CUSTOM[status.obj.kind].Status, status.obj, {"status": status.patch})
            for status in plan.statuses
        ]
        log.debug(
            "writing %d finalizer and %d status patches, %d events",
            len(finalizers),
            len(statuses),
            len(plan.events),
        )
        complete = all(await self._all(finalizers)) and all(await self._all(statuses))
        for event in plan.events:
            await self._event(event)
        log.debug("written in %.3f s (complete: %s)", time.monotonic() - now, complete)
        return complete

    async def _all(self, writes: list[tuple[Any, ManifestObject, dict[str, Any]]]) -> list[bool]:
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(resource: Any, obj: ManifestObject, body: dict[str, Any]) -> bool:
            mark = (resource, *obj.key)
            if self._recent.get(mark, (None, 0.0))[0] == body:
                return True
            async with limit:
                done = await self._patch(resource, obj, body)
            if done:
                self._recent[mark] = (body, time.monotonic())
            return done

        return list(await asyncio.gather(*(one(*write) for write in writes)))

    async def _patch(self, resource: Any, obj: ManifestObject, body: dict[str, Any]) -> bool:
        try:
            await self._client.patch(
                resource, obj.name, body, patch_type=PatchType.MERGE, **_scope(obj)
            )
        except ApiError as error:
            if error.status.code == 404:
                return True  # gone meanwhile: nothing left to write
            if error.status.code != 409:
                log.warning("patching %s failed: %s", obj.ref(), error.status.message)
            return False
        return True

    async def _event(self, event: EventWrite) -> None:
        obj = event.obj
        said = (event.reason, event.message)
        if self._said.get(obj.key) == said:
            return
        now = timestamp(self._clock())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{obj.name}.{uuid.uuid4().hex[:16]}",
                "namespace": obj.namespace or "default",
            },
            "involvedObject": {
                "apiVersion": obj.info.api_version,
                "kind": obj.kind,
                "name": obj.name,
                "uid": obj.uid,
                **_scope(obj),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._identity,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._client.create(apiserver.EVENT.from_dict(body))
        except ApiError as error:
            log.warning("recording an event for %s failed: %s", obj.ref(), error.status.message)
            return
        self._said[obj.key] = said


class Outbox:
    """The writes waiting for the writer, so reconciling never waits for the API server.

    Plans name only the objects they touched, so unwritten plans are merged, not
    replaced: per object the newest finalizer and status write wins; Events queue up.
    """

    def __init__(self) -> None:
        self._plan: Plan | None = None
        self.ready = asyncio.Event()

    def put(self, plan: Plan) -> None:
        """Queue ``plan``'s writes over the ones not written yet."""
        if self._plan is not None:
            old = self._plan
            finalizers = {w.obj.key: w for w in (*old.finalizers, *plan.finalizers)}
            statuses = {w.obj.key: w for w in (*old.statuses, *plan.statuses)}
            plan = Plan(
                list(finalizers.values()), list(statuses.values()), [*old.events, *plan.events]
            )
        self._plan = plan
        self.ready.set()

    def take(self) -> Plan | None:
        """Everything queued, which is then no longer queued."""
        plan, self._plan = self._plan, None
        self.ready.clear()
        return plan
