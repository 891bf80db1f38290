"""A protocol-level fake Envoy on one incremental (delta) ADS stream.

The delta counterpart of :class:`~meshplane.testing.ads.FakeAdsClient` (same channel,
credential and TLS options; same :meth:`~FakeAdsClient.ended`): a test sends exactly the
DeltaDiscoveryRequests it chooses — a subscription, an ACK, a NACK, a reconnect's
``initial_resource_versions`` — and reads what the server answers::

    async with FakeDeltaClient(port, "mesh/demos/virtualNode/vn-a") as envoy:
        await envoy.request(CLUSTER)          # CDS, legacy wildcard
        clusters = await envoy.receive()
        await envoy.ack(clusters)

:meth:`FakeDeltaClient.follow` behaves like a healthy Envoy: it keeps the resources each
response adds and removes, subscribes to the EDS and RDS names they reference (as separate
requests with no nonce, as Envoy does) and ACKs every response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from meshplane.envoy import resources
from meshplane.testing.ads import FakeAdsClient


class FakeDeltaClient(FakeAdsClient):
    """One delta ADS stream that sends exactly the requests a test tells it to."""

    method = "DeltaAggregatedResources"

    async def request(  # type: ignore[override]  # a delta request has other fields
        self,
        type_url: str,
        subscribe: Iterable[str] = (),
        unsubscribe: Iterable[str] = (),
        *,
        initial: Mapping[str, str] | None = None,
        nonce: str = "",
        error: str | None = None,
    ) -> None:
        """Send one DeltaDiscoveryRequest; the node goes in the first message only."""
        assert self._call is not None
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url,
            resource_names_subscribe=list(subscribe),
            resource_names_unsubscribe=list(unsubscribe),
            initial_resource_versions=dict(initial or {}),
            response_nonce=nonce,
        )
        await self._send(request, error)

    async def receive(self) -> discovery_pb2.DeltaDiscoveryResponse:
        """The next response (the caller bounds the wait)."""
        assert self._call is not None
        response = await self._call.read()
        assert response is not grpc.aio.EOF, "stream closed"
        assert isinstance(response, discovery_pb2.DeltaDiscoveryResponse)
        return response

    async def ack(  # type: ignore[override]
        self, response: discovery_pb2.DeltaDiscoveryResponse
    ) -> None:
        """ACK ``response`` (its nonce, nothing else)."""
        await self.request(response.type_url, nonce=response.nonce)

    async def nack(  # type: ignore[override]
        self, response: discovery_pb2.DeltaDiscoveryResponse, message: str
    ) -> None:
        """NACK ``response`` the way Envoy does: its nonce plus ``error_detail``."""
        await self.request(response.type_url, nonce=response.nonce, error=message)

    async def follow(
        self,
        reject: Callable[[discovery_pb2.DeltaDiscoveryResponse], str | None] = lambda _: None,
    ) -> None:
        """Behave like a healthy Envoy until cancelled (proxies then read SYNCED).

        Subscribes to CDS and LDS (wildcard), then to EDS and RDS by the names what it
        holds references, and ACKs every response — or NACKs it with ``reject``'s message.
        """
        held: dict[str, dict[str, list[str]]] = {}
        children = {resources.CLUSTER: resources.ENDPOINT, resources.LISTENER: resources.ROUTE}
        subscribed: dict[str, set[str]] = {child: set() for child in children.values()}
        for type_url in children:
            await self.request(type_url)
        while True:
            response = await self.receive()
            message = reject(response)
            if message is not None:
                await self.nack(response, message)
                continue
            await self.ack(response)
            child = children.get(response.type_url)
            if child is None:
                continue
            refs = held.setdefault(response.type_url, {})
            for name in response.removed_resources:
                refs.pop(name, None)
            kind = resources.message_type(response.type_url)
            for entry in response.resources:
                refs[entry.name] = list(
                    resources.references_of(kind.FromString(entry.resource.value))
                )
            wanted = {ref for names in refs.values() for ref in names}
            added, gone = wanted - subscribed[child], subscribed[child] - wanted
            if added or gone:
                subscribed[child] = wanted
                await self.request(child, sorted(added), sorted(gone))


def names_of(response: discovery_pb2.DeltaDiscoveryResponse) -> list[str]:
    """The names of the resources a delta response adds or updates, in order."""
    return [entry.name for entry in response.resources]
