"""Which ADS streams ``meshplane k8s`` serves: a pod's own service-account token, for its node.

The injector gives every sidecar a projected service-account token (audience
:data:`AUDIENCE`, short-lived, refreshed by the kubelet) and a bootstrap whose gRPC
call credentials send that file as ``authorization: Bearer <token>`` on each ADS
stream. :class:`PodIdentities` checks it as the API server would:

- no token → UNAUTHENTICATED;
- a TokenReview (audience meshplane) that does not authenticate it, or a token not
  bound to a pod (a plain ``kubectl create token``), or a bound pod that is gone or was
  replaced (uid) → UNAUTHENTICATED;
- a genuine pod token whose pod's ``envoy`` container was not injected for the node id
  the stream announces (its ``APPMESH_RESOURCE_ARN``, which the pod spec keeps
  immutably) → PERMISSION_DENIED;
- and, as in local mode, while that node is connected a second stream must announce
  the very same node.

All before the stream is recorded or answered. Reviews are cached for a few seconds
(bounded, never past the token's own expiry), so a reconnect storm costs one review
per pod. Every ``resync`` the open streams are checked again with fresh reviews,
:data:`CONCURRENCY` at a time: a sidecar whose token expired or whose pod was deleted
is disconnected then. An API
server that does not answer is not a "no": streams stay while it is away.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import dataclasses
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
from envoy.config.core.v3 import base_pb2
from lightkube import ApiError, AsyncClient

from meshplane.k8s import apiserver
from meshplane.xds import roles
from meshplane.xds import status as xds_status

log = logging.getLogger(__name__)

AUDIENCE = "meshplane"
"""The audience the injected token is minted for and every review asks about."""
POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"
"""The TokenReview ``user.extra`` keys of a token bound to a pod."""
SIDECAR = "envoy"
NODE_ENV = "APPMESH_RESOURCE_ARN"
"""The env of the injected ``envoy`` container that names the node it serves."""
CACHE_SIZE = 4096
CACHE_TTL = 10.0
CONCURRENCY = 16
"""How many streams a resync re-checks at once (each check: a TokenReview and a pod read)."""


class Unreachable(Exception):
    """The API server did not answer a review or a pod read; nothing is decided."""


@dataclasses.dataclass(frozen=True)
class PodToken:
    """What a TokenReview said of a genuine token bound to a pod."""

    namespace: str
    service_account: str
    pod: str
    pod_uid: str
    expires_at: float | None
    """The token's ``exp`` claim (epoch seconds), when it has one."""


def bearer(metadata: Mapping[str, str]) -> str | None:
    """The token of an ``authorization: Bearer <token>`` entry, if the stream sent one."""
    value = metadata.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _expiry(token: str) -> float | None:
    """The unverified ``exp`` claim of a JWT: only to bound how long a review is cached."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


class Reviewer:
    """TokenReviews against the API server, with a small bounded cache of the answers."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        ttl: float = CACHE_TTL,
        size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Review with ``client``; keep up to ``size`` answers for ``ttl`` seconds each."""
        self._client = client
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._cache: collections.OrderedDict[str, tuple[float, PodToken | str]] = (
            collections.OrderedDict()
        )
        self.reviews = 0
        """TokenReviews sent (not answered from the cache)."""

    async def review(self, token: str, *, fresh: bool = False) -> PodToken | str:
        """The pod the token was issued for, or why it is not accepted (a sentence).

        ``fresh`` skips the cache (a resync must see an expiry or a deleted pod).
        Raises :class:`Unreachable` when the API server does not answer.
        """
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and not fresh and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        answer = await self._ask(token)
        until = now + self._ttl
        if isinstance(answer, PodToken) and answer.expires_at is not None:
            until = min(until, answer.expires_at)
        self._cache[key] = (until, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return answer

    async def _ask(self, token: str) -> PodToken | str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": [AUDIENCE]},
        }
        self.reviews += 1
        try:
            reviewed = await self._client.create(apiserver.TOKEN_REVIEW.from_dict(body))
        except ApiError as error:
            raise Unreachable(f"TokenReview failed: {error.status.message}") from error
        except (httpx2.HTTPError, OSError) as error:
            raise Unreachable(f"TokenReview failed: {error}") from error
        status: dict[str, Any] = dict(reviewed.get("status") or {})
        if not status.get("authenticated"):
            why = status.get("error") or "not authenticated"
            return f"the service-account token was refused by the API server: {why}"
        if AUDIENCE not in (status.get("audiences") or [AUDIENCE]):
            return f"the service-account token is not for audience {AUDIENCE}"
        user: dict[str, Any] = dict(status.get("user") or {})
        extra: dict[str, list[str]] = dict(user.get("extra") or {})
        pod, uid = (extra.get(POD_NAME) or [""])[0], (extra.get(POD_UID) or [""])[0]
        prefix, _, rest = str(user.get("username", "")).partition("system:serviceaccount:")
        namespace, _, account = rest.partition(":")
        if prefix or not namespace or not pod or not uid:
            return (
                f"the token of {user.get('username', '?')} is not a pod's projected token; "
                f"the sidecar must send its pod's token (audience {AUDIENCE})"
            )
        return PodToken(namespace, account, pod, uid, _expiry(token))


def injected_node(pod: Mapping[str, Any]) -> str | None:
    """The node id the injector wrote into the pod's ``envoy`` container, if it did."""
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if container.get("name") != SIDECAR:
            continue
        for entry in container.get("env") or []:
            if entry.get("name") == NODE_ENV and isinstance(entry.get("value"), str):
                return str(entry["value"])
    return None


class Starting:
    """Refuses every stream until :class:`PodIdentities` takes over (it needs the client).

    The ADS port opens before the Kubernetes side starts; without this, a tokenless stream
    admitted in that window would stay open and be served once the twins exist.
    """

    def admit(self, key: str, node: base_pb2.Node, metadata: Mapping[str, str]) -> None:
        """Refuse: identity checks are not running yet (the proxy retries)."""
        del key, metadata  # the StreamAuthenticator signature; nothing in them is trusted yet
        raise roles.Unauthenticated(f"{node.id}: meshplane k8s is starting; retry")


def _nothing() -> None:
    """The release of a stream nothing is kept for."""


@dataclasses.dataclass
class _Admitted:
    token: str
    identity: PodToken
    node_id: str
    revoke: roles.Revoke


class PodIdentities:
    """An :class:`~meshplane.xds.roles.AsyncStreamAuthenticator` over pod tokens."""

    def __init__(
        self,
        client: AsyncClient,
        reviewer: Reviewer,
        board: xds_status.StatusBoard | None,
        signed: roles.StreamAuthenticator | None = None,
        *,
        concurrency: int = CONCURRENCY,
    ) -> None:
        """Read pods with ``client``; ``board`` says which proxies are connected.

        ``signed`` judges streams that carry an AWS SigV4 signature instead of a token
        (aws-appmesh-envoy sidecars); without it they are refused. A resync re-checks
        up to ``concurrency`` streams at once.
        """
        self.concurrency = max(1, concurrency)
        self._signed = signed
        self._client = client
        self.reviewer = reviewer
        self._board = board
        self._streams: dict[int, _Admitted] = {}
        self._ids = itertools.count(1)

    @property
    def streams(self) -> int:
        """How many admitted streams are open."""
        return len(self._streams)

    async def admit_stream(
        self, key: str, node: base_pb2.Node, metadata: Mapping[str, str], revoke: roles.Revoke
    ) -> Callable[[], None]:
        """Admit ``node`` only with its own pod's token (see the module docstring)."""
        if self._signed is not None and metadata.get("authorization", "").startswith("AWS4-"):
            self._signed.admit(key, node, metadata)
            return _nothing
        token = bearer(metadata)
        if token is None:
            raise roles.Unauthenticated(
                f"{node.id}: no service-account token (authorization: Bearer metadata); "
                f"the injected sidecar sends its pod's projected token (audience {AUDIENCE})"
            )
        try:
            identity = await self._check(token, fresh=False)
        except Unreachable as exc:
            raise roles.Unauthenticated(f"{node.id}: cannot verify the token now: {exc}") from exc
        if isinstance(identity, str):
            raise roles.Unauthenticated(f"{node.id}: {identity}")
        pod, node_id = identity
        if node_id != node.id:
            raise roles.PermissionDenied(
                f"pod {pod.namespace}/{pod.pod} was injected for "
                f"{node_id or 'no virtual node'}, not for {node.id}"
            )
        if self._board is not None:
            current = self._board.node(key)
            if current is not None and current.connected and current.node != node:
                raise roles.PermissionDenied(
                    f"{key} is connected already with another node announcement; "
                    "a second stream cannot change its identity or metadata"
                )
        number = next(self._ids)
        self._streams[number] = _Admitted(token, pod, node_id, revoke)

        def release() -> None:
            self._streams.pop(number, None)

        return release

    async def _check(self, token: str, *, fresh: bool) -> tuple[PodToken, str] | str:
        """The token's pod and the node it was injected for, or why not."""
        identity = await self.reviewer.review(token, fresh=fresh)
        if isinstance(identity, str):
            return identity
        try:
            pod = await self._client.get(apiserver.POD, identity.pod, namespace=identity.namespace)
        except ApiError as error:
            if error.status.code == 404:
                return f"pod {identity.namespace}/{identity.pod} no longer exists"
            raise Unreachable(f"reading the pod failed: {error.status.message}") from error
        except (httpx2.HTTPError, OSError) as error:
            raise Unreachable(f"reading the pod failed: {error}") from error
        if (pod.get("metadata") or {}).get("uid") != identity.pod_uid:
            return f"pod {identity.namespace}/{identity.pod} was replaced (another uid)"
        return identity, injected_node(pod) or ""

    async def revalidate(self) -> int:
        """Check every open stream again with a fresh review; revoke those that fail.

        Returns how many were revoked. A stream whose check cannot be made (the API
        server is away) stays. Checks run :attr:`concurrency` at a time: each is a
        TokenReview and a pod read, two round trips, so a sequential pass over 1,000
        sidecars is 2,000 waits in a row; a bound keeps the API server's load (and
        lightkube's connection pool) in check.
        """
        limit = asyncio.Semaphore(self.concurrency)

        async def check(number: int, admitted: _Admitted) -> bool:
            async with limit:
                try:
                    found = await self._check(admitted.token, fresh=True)
                except Unreachable as exc:
                    log.warning("xds identity: %s not re-checked: %s", admitted.node_id, exc)
                    return False
            if isinstance(found, str) or found[1] != admitted.node_id:
                why = found if isinstance(found, str) else "the pod's node changed"
                log.warning("xds identity: disconnecting %s: %s", admitted.node_id, why)
                self._streams.pop(number, None)
                admitted.revoke(roles.Unauthenticated(f"{admitted.node_id}: {why}"))
                return True
            return False

        checks = [check(number, admitted) for number, admitted in list(self._streams.items())]
        return sum(await asyncio.gather(*checks))

    async def run(self, every: float) -> None:
        """Revalidate the open streams every ``every`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.revalidate()
            except Exception:  # a bug must not stop the checks: log it, try next time
                log.exception("xds identity: revalidation failed")
