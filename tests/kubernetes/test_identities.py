"""Pod-token admission's bookkeeping: the bounded review cache and the resync re-checks."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx2
from envoy.config.core.v3 import base_pb2

from meshplane.k8s import identities
from meshplane.xds import roles

NODE = "mesh/demos/virtualNode/vn-a"


def _jwt(exp: int) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    return f"e30.{payload}.sig"


class FakeApi:
    """Answers TokenReviews and pod reads like the API server, from what the test sets."""

    def __init__(self) -> None:
        self.authenticated = True
        self.pod_exists = True
        self.down = False
        self.reviews = 0

    async def create(self, obj: Any) -> dict[str, Any]:
        self.reviews += 1
        if self.down:
            raise httpx2.ConnectError("connection refused")
        if not self.authenticated:
            return {"status": {"authenticated": False, "error": "token has expired"}}
        return {
            "status": {
                "authenticated": True,
                "audiences": ["meshplane"],
                "user": {
                    "username": "system:serviceaccount:demos:default",
                    "extra": {
                        identities.POD_NAME: ["a-1"],
                        identities.POD_UID: ["uid-1"],
                    },
                },
            }
        }

    async def get(self, resource: Any, name: str, namespace: str) -> dict[str, Any]:
        if self.down:
            raise httpx2.ConnectError("connection refused")
        if not self.pod_exists:
            from lightkube import ApiError  # noqa: PLC0415

            response = httpx2.Response(
                404,
                json={"kind": "Status", "code": 404, "message": "not found"},
                request=httpx2.Request("GET", "http://api/pod"),
            )
            raise ApiError(response=response)
        env = [{"name": "APPMESH_RESOURCE_ARN", "value": NODE}]
        return {
            "metadata": {"uid": "uid-1"},
            "spec": {"containers": [{"name": "envoy", "env": env}]},
        }


def test_reviews_are_cached_briefly_bounded_and_never_past_the_token_expiry() -> None:
    """Same token twice: one review; past the TTL or the exp claim: asked again; size bounded."""
    now = [1000.0]
    api = FakeApi()
    reviewer = identities.Reviewer(api, ttl=10.0, size=2, clock=lambda: now[0])  # type: ignore[arg-type]
    long_lived, short_lived = _jwt(5000), _jwt(1003)

    async def scenario() -> list[int]:
        counts = []
        await reviewer.review(long_lived)
        await reviewer.review(long_lived)
        counts.append(api.reviews)  # 1: cached
        await reviewer.review(short_lived)
        now[0] = 1004.0  # past short_lived's exp, within the TTL
        await reviewer.review(short_lived)
        counts.append(api.reviews)  # 3: its exp bounds its cache entry
        await reviewer.review(long_lived)
        counts.append(api.reviews)  # 3: still cached (TTL 10 s)
        await reviewer.review(_jwt(6000))  # a third token evicts the least recent
        await reviewer.review(short_lived)
        counts.append(api.reviews)  # 5
        await reviewer.review(long_lived, fresh=True)
        counts.append(api.reviews)  # 6: a resync never trusts the cache
        return counts

    assert asyncio.run(scenario()) == [1, 3, 3, 5, 6]


def test_resync_revokes_expired_tokens_and_deleted_pods_but_not_during_an_outage() -> None:
    """API server away: streams stay; token refused or pod gone: that stream is revoked."""
    api = FakeApi()
    guard = identities.PodIdentities(api, identities.Reviewer(api), None)  # type: ignore[arg-type]
    revoked: list[tuple[str, str]] = []
    node = base_pb2.Node(id=NODE, cluster=NODE)

    def revoke(name: str) -> roles.Revoke:
        return lambda refusal: revoked.append((name, str(refusal)))

    async def scenario() -> list[int]:
        metadata = {"authorization": f"Bearer {_jwt(9_999_999_999)}"}
        await guard.admit_stream(NODE, node, metadata, revoke("first"))
        release = await guard.admit_stream(NODE, node, metadata, revoke("second"))
        counts = [guard.streams]
        api.down = True
        counts.append(await guard.revalidate())
        api.down = False
        release()  # the second stream closed on its own
        counts.append(guard.streams)
        api.authenticated = False
        counts.append(await guard.revalidate())
        counts.append(guard.streams)
        return counts

    assert asyncio.run(scenario()) == [2, 0, 1, 1, 0]
    assert revoked == [
        (
            "first",
            f"{NODE}: the service-account token was refused by the API server: token has expired",
        )
    ]


def test_a_deleted_pod_is_refused_at_admission() -> None:
    """A genuine token whose pod is gone: UNAUTHENTICATED naming the pod."""
    api = FakeApi()
    api.pod_exists = False
    guard = identities.PodIdentities(api, identities.Reviewer(api), None)  # type: ignore[arg-type]
    node = base_pb2.Node(id=NODE, cluster=NODE)

    async def scenario() -> str:
        try:
            await guard.admit_stream(NODE, node, {"authorization": "Bearer t"}, lambda _: None)
        except roles.Unauthenticated as refused:
            return str(refused)
        return "admitted"

    assert asyncio.run(scenario()) == f"{NODE}: pod demos/a-1 no longer exists"


class GatedApi(FakeApi):
    """A FakeApi whose reviews wait until ``bound`` are in flight at once (then all go)."""

    def __init__(self, bound: int) -> None:
        super().__init__()
        self.bound = bound
        self.in_flight = 0
        self.peak = 0
        self.gate = asyncio.Event()

    async def create(self, obj: Any) -> dict[str, Any]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight == self.bound:
            self.gate.set()
        await self.gate.wait()  # a sequential resync would never get here for the first one
        self.in_flight -= 1
        return await super().create(obj)


def test_a_resync_checks_streams_concurrently_up_to_its_bound() -> None:
    """Ten streams, concurrency 3: three reviews in flight at once, never more; all checked."""
    api = GatedApi(bound=3)
    reviewer = identities.Reviewer(api)  # type: ignore[arg-type]
    guard = identities.PodIdentities(api, reviewer, None, concurrency=3)  # type: ignore[arg-type]
    node = base_pb2.Node(id=NODE, cluster=NODE)

    async def scenario() -> tuple[int, int]:
        api.gate.set()  # admission itself is not what is measured
        for i in range(10):
            metadata = {"authorization": f"Bearer {_jwt(9_999_999_000 + i)}"}
            await guard.admit_stream(NODE, node, metadata, lambda refusal: None)
        api.gate.clear()
        before = api.reviews
        revoked = await asyncio.wait_for(guard.revalidate(), 30.0)
        return revoked, api.reviews - before

    assert asyncio.run(scenario()) == (0, 10)
    assert api.peak == 3
    assert guard.streams == 10
