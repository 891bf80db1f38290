"""A protocol-level fake Envoy: one ADS stream over real gRPC that a test drives step by step.

Real Envoy decides for itself when to request, ACK and NACK; a test of an xDS server
needs to choose. :class:`FakeAdsClient` sends exactly the DiscoveryRequests it is told
to (the node in the first message only, as Envoy does), so a test can hold back an ACK,
NACK a response, or change a subscription on an ACK, and check what the server answers::

    async with FakeAdsClient(port, "mesh/demos/virtualNode/vn-a") as envoy:
        await envoy.request(CLUSTER)
        clusters = await envoy.receive()
        await envoy.ack(clusters)

``credential`` is sent as the ``x-meshplane-token`` metadata Envoy's bootstrap puts on the
stream, so a test can play a sidecar — or an attacker with no token or another node's —
and read how the server ended the stream with :meth:`FakeAdsClient.ended`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from meshplane import envoy
from meshplane.envoy import resources


class FakeAdsClient:
    """One SotW ADS stream that sends exactly the requests a test tells it to."""

    def __init__(
        self,
        port: int,
        node_id: str,
        replica: str | None = None,
        *,
        credential: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Connect to ``127.0.0.1:port`` as ``node_id`` (and ``meshplane.replica``) on enter.

        ``credential`` goes in the stream's gRPC metadata; ``metadata`` (node metadata
        under ``meshplane``, beside the replica) lets a test announce ports.
        """
        self.port = port
        self.credential = credential
        self.node = base_pb2.Node(id=node_id, cluster=node_id)
        if replica is not None or metadata:
            own = dict(metadata or {})
            if replica is not None:
                own["replica"] = replica
            self.node.metadata.update({"meshplane": own})
        self._channel: grpc.aio.Channel | None = None
        self._call: grpc.aio.StreamStreamCall | None = None
        self._sent_node = False

    async def __aenter__(self) -> FakeAdsClient:
        """Open the channel and the stream (no request is sent yet)."""
        self._channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        metadata = None
        if self.credential is not None:
            metadata = grpc.aio.Metadata((envoy.CREDENTIAL_METADATA, self.credential))
        self._call = stub.StreamAggregatedResources(metadata=metadata)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream and the channel."""
        await self.close()

    async def close(self) -> None:
        """Cancel the stream, as a proxy that goes away does."""
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def request(
        self,
        type_url: str,
        names: Iterable[str] = (),
        version: str = "",
        nonce: str = "",
        error: str | None = None,
    ) -> None:
        """Send one DiscoveryRequest; the node goes in the first message only, like Envoy."""
        assert self._call is not None
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=list(names),
            version_info=version,
            response_nonce=nonce,
        )
        if not self._sent_node:
            request.node.CopyFrom(self.node)
            self._sent_node = True
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
        await self._call.write(request)

    async def receive(self) -> discovery_pb2.DiscoveryResponse:
        """The next response (the caller bounds the wait)."""
        assert self._call is not None
        response = await self._call.read()
        assert response is not grpc.aio.EOF, "stream closed"
        assert isinstance(response, discovery_pb2.DiscoveryResponse)
        return response

    async def ended(self) -> tuple[grpc.StatusCode, str]:
        """How the server ended the stream (status code, details); fails if it sent anything."""
        assert self._call is not None
        try:
            response = await self._call.read()
        except grpc.aio.AioRpcError as error:  # a non-OK status ends reads with the error
            return error.code(), str(error.details())
        assert response is grpc.aio.EOF, f"the server answered before ending: {response}"
        return await self._call.code(), str(await self._call.details())

    async def ack(
        self, response: discovery_pb2.DiscoveryResponse, names: Iterable[str] | None = None
    ) -> None:
        """ACK ``response``, optionally changing the subscription (a piggybacked change)."""
        await self.request(
            response.type_url,
            names if names is not None else names_of(response),
            version=response.version_info,
            nonce=response.nonce,
        )

    async def nack(
        self, response: discovery_pb2.DiscoveryResponse, accepted_version: str, message: str
    ) -> None:
        """NACK ``response`` the way Envoy does: last accepted version plus error_detail."""
        await self.request(
            response.type_url,
            names_of(response),
            version=accepted_version,
            nonce=response.nonce,
            error=message,
        )


def names_of(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    """The resource names in a response (decoded from its Anys)."""
    kind = resources.message_type(response.type_url)
    return [resources.name_of(kind.FromString(r.value)) for r in response.resources]
