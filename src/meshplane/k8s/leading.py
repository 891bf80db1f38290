"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Every replica reconciles and serves; only the holder of the Lease
``meshplane-leader`` writes status, finalizers and Events, so two replicas never
fight over an object. A replica takes the Lease when it is free or when its
holder has not renewed it for ``duration`` seconds *as observed locally* (the
holder's clock is never compared with ours), renews it every ``retry``
seconds, and stops leading as soon as it has not renewed for ``duration`` —
so two leaders never overlap by more than the clocks' drift over one period.
Updates are optimistic on resourceVersion: of two replicas racing for an
expired Lease, one wins, the other gets 409 and follows.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient

from meshplane.k8s import apiserver

log = logging.getLogger(__name__)

NAME = "meshplane-leader"


def _micro_time(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Leader:
    """A replica's view of the Lease; :attr:`leading` says whether it may write."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        identity: str,
        *,
        duration: float = 15.0,
        retry: float = 2.0,
        on_change: Callable[[bool], None] = lambda _: None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """Compete for the Lease ``meshplane-leader`` in ``namespace`` as ``identity``."""
        self._client = client
        self._namespace = namespace
        self.identity = identity
        self._duration = duration
        self._retry = retry
        self._on_change = on_change
        self._monotonic = monotonic
        self._wall = wall
        self._renewed_at = float("-inf")
        self._observed: tuple[Any, Any] | None = None
        self._observed_at = float("-inf")
        self._was_leading = False

    @property
    def leading(self) -> bool:
        """Whether this replica holds the Lease and renewed it within ``duration``."""
        return self._monotonic() - self._renewed_at < self._duration

    def _spec(self, transitions: int, acquired: float | None) -> dict[str, Any]:
        now = _micro_time(self._wall())
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self._duration)),
            "acquireTime": _micro_time(acquired) if acquired else now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def attempt(self) -> None:
        """One round: create, renew or take over the Lease if allowed."""
        try:
            lease = await self._client.get(apiserver.LEASE, NAME, namespace=self._namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": NAME, "namespace": self._namespace},
                "spec": self._spec(0, None),
            }
            await self._client.create(apiserver.LEASE.from_dict(body))
            self._renewed()
            return
        spec = dict(lease.get("spec") or {})
        observed = (spec.get("holderIdentity"), spec.get("renewTime"))
        if observed != self._observed:
            self._observed, self._observed_at = observed, self._monotonic()
        holder = spec.get("holderIdentity")
        mine = holder == self.identity
        expired = self._monotonic() - self._observed_at >= self._duration
        if not (mine or not holder or expired):
            return
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        lease["spec"] = self._spec(transitions, None if not mine else self._acquired(spec))
        await self._client.replace(lease)
        self._renewed()

    def _renewed(self) -> None:
        """Record a renewal; report leadership if it had lapsed (or never was).

        A lapse can go unseen: the loop was busy past the lease duration and renewed
        right after. The writer dropped plans meanwhile, so regaining is reported too.
        """
        regained = not self.leading
        self._renewed_at = self._monotonic()
        if regained:
            self._was_leading = True
            log.info("%s is now leader", self.identity)
            self._on_change(True)

    def _acquired(self, spec: dict[str, Any]) -> float | None:
        text = spec.get("acquireTime")
        if not isinstance(text, str):
            return None
        moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
        return moment.replace(tzinfo=datetime.UTC).timestamp()

    async def run(self) -> None:
        """Compete until cancelled, reporting each change of leadership."""
        while True:
            try:
                await self.attempt()
            except ApiError as error:
                if error.status.code != 409:
                    log.warning("lease %s: %s", NAME, error.status.message)
            except (httpx2.HTTPError, OSError) as error:
                log.warning("lease %s: %s", NAME, error)
            self._report()
            await asyncio.sleep(self._retry)

    def _report(self) -> None:
        """Report a loss of leadership (gains are reported by :meth:`_renewed`)."""
        if self._was_leading and not self.leading:
            self._was_leading = False
            log.info("%s is no longer leader", self.identity)
            self._on_change(False)

    async def release(self) -> None:
        """Give the Lease up (on a clean stop) so another replica takes over at once."""
        if not self.leading:
            return
        try:
            lease = await self._client.get(apiserver.LEASE, NAME, namespace=self._namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"] = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1}
            await self._client.replace(lease)
        except (ApiError, httpx2.HTTPError, OSError) as error:
            log.warning("releasing lease %s: %s", NAME, error)
        self._renewed_at = float("-inf")
