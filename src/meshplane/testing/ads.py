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
and read how the server ended the stream with :meth:`FakeAdsClient.ended`. With
``root_certificates`` the stream goes over TLS (the server's TLS port), and
``call_metadata`` adds entries such as ``authorization`` (a pod token, an AWS signature).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2, message
from google.rpc import status_pb2

from meshplane import envoy
from meshplane.envoy import resources


class FakeAdsClient:
    """One SotW ADS stream that sends exactly the requests a test tells it to."""

    method = "StreamAggregatedResources"
    """The ADS method the stream calls (:class:`~meshplane.testing.delta.FakeDeltaClient`'s
    is the incremental one)."""

    def __init__(
        self,
        port: int,
        node_id: str,
        replica: str | None = None,
        *,
        credential: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        call_metadata: Sequence[tuple[str, str]] = (),
        root_certificates: bytes | None = None,
        server_name: str | None = None,
    ) -> None:
        """Connect to ``127.0.0.1:port`` as ``node_id`` (and ``meshplane.replica``) on enter.

        ``credential`` goes in the stream's gRPC metadata; ``metadata`` (node metadata
        under ``meshplane``, beside the replica) lets a test announce ports.
        ``root_certificates`` makes the channel TLS, checking the server's certificate
        for ``server_name`` (default ``localhost``); ``call_metadata`` is sent as is.
        """
        self.port = port
        self.credential = credential
        self.call_metadata = tuple(call_metadata)
        self.root_certificates = root_certificates
        self.server_name = server_name
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
        target = f"127.0.0.1:{self.port}"
        if self.root_certificates is not None:
            name = self.server_name or "localhost"
            self._channel = grpc.aio.secure_channel(
                target,
                grpc.ssl_channel_credentials(self.root_certificates),
                options=[("grpc.ssl_target_name_override", name), ("grpc.default_authority", name)],
            )
        else:
            self._channel = grpc.aio.insecure_channel(target)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        entries = list(self.call_metadata)
        if self.credential is not None:
            entries.append((envoy.CREDENTIAL_METADATA, self.credential))
        metadata = grpc.aio.Metadata(*entries) if entries else None
        self._call = getattr(stub, self.method)(metadata=metadata)
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
        await self._send(request, error)

    async def _send(self, request: Any, error: str | None) -> None:
        """Write ``request`` (either protocol's), with the node if first and a NACK's error."""
        assert self._call is not None
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

    async def until_ended(self) -> tuple[grpc.StatusCode, str]:
        """Read past any responses until the server ends the stream (a revocation); its status."""
        assert self._call is not None
        while True:
            try:
                response = await self._call.read()
            except grpc.aio.AioRpcError as error:
                return error.code(), str(error.details())
            if response is grpc.aio.EOF:
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

    async def follow(
        self, reject: Callable[[discovery_pb2.DiscoveryResponse], str | None] = lambda _: None
    ) -> None:
        """Behave like a healthy Envoy until cancelled (proxies then read SYNCED).

        Subscribes to CDS and LDS, then to EDS and RDS by the names they reference, and ACKs
        every response — or NACKs it with the message ``reject`` returns for it (Envoy then
        keeps its last accepted version).
        """
        accepted: dict[str, str] = {}
        children = {resources.CLUSTER: resources.ENDPOINT, resources.LISTENER: resources.ROUTE}
        subscribed: dict[str, list[str]] = {}
        for type_url in children:
            await self.request(type_url)
        while True:
            response = await self.receive()
            message = reject(response)
            if message is not None:
                await self.nack(response, accepted.get(response.type_url, ""), message)
                continue
            await self.ack(response)
            accepted[response.type_url] = response.version_info
            child = children.get(response.type_url)
            if child is None:
                continue
            names = sorted(
                {
                    ref
                    for packed in response.resources
                    for ref in resources.references_of(_unpacked(packed))
                }
            )
            # Envoy subscribes to EDS/RDS only once something names them (an empty list
            # would be a wildcard subscription).
            if names != subscribed.get(child, []):
                subscribed[child] = names
                await self.request(child, names, version=accepted.get(child, ""))


def _unpacked(packed: any_pb2.Any) -> message.Message:
    """The resource inside ``packed``, decoded by its type URL."""
    decoded = resources.message_type(packed.type_url)()
    packed.Unpack(decoded)
    return decoded


def names_of(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    """The resource names in a response (decoded from its Anys)."""
    kind = resources.message_type(response.type_url)
    return [resources.name_of(kind.FromString(r.value)) for r in response.resources]
