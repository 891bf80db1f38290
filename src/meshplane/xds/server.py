"""The ADS gRPC server: binds a port and runs one :class:`AdsStream` per proxy.

Both ADS methods: state of the world (``StreamAggregatedResources``, one
:class:`~meshplane.xds.stream.AdsStream` per proxy) and incremental
(``DeltaAggregatedResources``, one :class:`~meshplane.xds.delta.DeltaStream`), over the
same cache, board, authenticator and stream cap; the proxy's bootstrap picks one
(``api_type: GRPC`` or ``DELTA_GRPC``). Responses are pre-serialized bytes (see
:mod:`meshplane.xds.wire`), so the methods are registered with an identity serializer
instead of through the generated servicer base class.

Besides the plaintext port the server may serve the same ADS over TLS on a second
port (:meth:`AdsServer.serve_tls`): sidecars that send call credentials (a service
account token, an AWS signature) need it, since gRPC sends those on secure channels
only, and the aws-appmesh-envoy image dials its management server over TLS.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from meshplane.kit.clock import Clock, system_clock
from meshplane.kit.timers import Timer
from meshplane.xds import polling, wire
from meshplane.xds.delta import DeltaStream
from meshplane.xds.roles import (
    AsyncStreamAuthenticator,
    InvalidNode,
    PermissionDenied,
    SnapshotSource,
    StreamAuthenticator,
    StreamCallbacks,
    StreamRefused,
)
from meshplane.xds.status import StatusBoard
from meshplane.xds.stream import AdsStream

_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"


def _identity(response: bytes) -> bytes:
    return response


def stream_cap() -> int:
    """The default stream cap: a quarter of the fd limit (each stream is one socket), <= 2000."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(2000, soft // 4))


class AdsServer:
    """A grpc.aio ADS server serving the snapshots of a :class:`SnapshotSource`."""

    def __init__(
        self,
        cache: SnapshotSource,
        *,
        callbacks: StreamCallbacks | None = None,
        clock: Clock = system_clock,
        logger: logging.Logger | None = None,
        ack_timeout: float = 10.0,
        timer: Timer | None = None,
        authenticator: StreamAuthenticator | AsyncStreamAuthenticator | None = None,
        max_streams: int = 0,
    ) -> None:
        """Serve ``cache``, reporting every stream's events to ``callbacks``.

        Without ``callbacks`` a :class:`StatusBoard` on ``clock`` records them (``status``).
        ``ack_timeout`` bounds each make-before-break wait (seconds on ``timer``, the event
        loop's clock by default). ``authenticator`` admits streams (none: every stream);
        a refused one ends with UNAUTHENTICATED or PERMISSION_DENIED before any response
        (INVALID_ARGUMENT for a Node over the size limit). ``max_streams`` caps the open
        streams (0: a quarter of the fd limit, at most 2000); past it a new stream ends
        with RESOURCE_EXHAUSTED.
        """
        self.authenticator = authenticator
        """Admits each new stream; replaceable before a stream opens (e.g. by a mode's own)."""
        self.cache = cache
        self._log = logger or logging.getLogger(__name__)
        self._callbacks: StreamCallbacks = callbacks or StatusBoard(clock, self._log)
        self._timer = timer
        self._ack_timeout = ack_timeout
        self._server: grpc.aio.Server | None = None
        self._streams: set[AdsStream | DeltaStream] = set()
        self._responses = wire.SharedResponses()
        """Each (type, version) response framed once for all the streams sending it."""
        self.max_streams = max_streams or stream_cap()
        self.port: int | None = None
        """The bound port once started."""
        self.tls_port: int | None = None
        """The bound TLS port once started, if :meth:`serve_tls` asked for one."""
        self._tls: tuple[str, int, bytes, bytes] | None = None

    def serve_tls(self, host: str, port: int, chain_pem: bytes, key_pem: bytes) -> None:
        """Also serve ADS over TLS on ``host:port`` (0: a free port) with this certificate.

        Call before :meth:`start`; the certificate is the server's for its whole run.
        """
        if self._server is not None:
            raise RuntimeError("serve_tls must be called before start")
        self._tls = (host, port, chain_pem, key_pem)

    @property
    def status(self) -> StatusBoard:
        """The :class:`StatusBoard` the streams report to: read it, await it, observe it."""
        if not isinstance(self._callbacks, StatusBoard):
            raise AttributeError("this AdsServer reports to its own callbacks, not a StatusBoard")
        return self._callbacks

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, share_port: bool = False
    ) -> int:
        """Bind ``host:port`` (0 picks a free port) and start serving; returns the port.

        ``share_port`` binds with SO_REUSEPORT, so that several server processes on one
        port split the streams between them (the kernel spreads new connections); it is
        off by default, since a second control plane would then silently take half the
        proxies.
        """
        if self._server is not None:
            raise RuntimeError("AdsServer already started")
        server = grpc.aio.server(options=[("grpc.so_reuseport", int(share_port))])
        handler = grpc.stream_stream_rpc_method_handler(
            self._serve,
            request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=_identity,
        )
        delta = grpc.stream_stream_rpc_method_handler(
            self._serve_delta,
            request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
            response_serializer=_identity,
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    _SERVICE,
                    {"StreamAggregatedResources": handler, "DeltaAggregatedResources": delta},
                ),
            )
        )
        # A taken port as one OSError, before grpc logs its own lines to stderr.
        if port and not share_port:
            _check_free(host, port)
        try:
            bound = int(server.add_insecure_port(f"{host}:{port}"))
        except RuntimeError:  # grpc raises, not returns 0, when the port is taken
            bound = 0
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port} for xDS: address already in use")
        if self._tls is not None:
            tls_host, tls_port, chain_pem, key_pem = self._tls
            credentials = grpc.ssl_server_credentials([(key_pem, chain_pem)])
            self.tls_port = int(server.add_secure_port(f"{tls_host}:{tls_port}", credentials))
            if self.tls_port == 0:
                raise OSError(f"cannot bind the ADS server's TLS port to {tls_host}:{tls_port}")
            self._log.info("xds: ADS over TLS on %s:%d", tls_host, self.tls_port)
        await server.start()
        # grpc.aio is running on this loop now: one wake-up per burst of completions.
        polling.coalesce_wakeups(asyncio.get_running_loop())
        self._server = server
        self.port = bound
        self._log.info("xds: ADS server listening on %s:%d", host, bound)
        return bound

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving and close every stream; proxies keep their last config."""
        server, self._server = self._server, None
        if server is not None:
            # End our streams first so their handlers return instead of being
            # cancelled mid-write by gRPC (which logs a traceback per stream).
            for stream in list(self._streams):
                stream.close()
            await server.stop(grace)
            self._log.info("xds: ADS server on port %s stopped", self.port)

    async def _serve(
        self,
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext[discovery_pb2.DiscoveryRequest, bytes],
    ) -> None:
        await self._run(AdsStream, requests, context)

    async def _serve_delta(
        self,
        requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext[discovery_pb2.DeltaDiscoveryRequest, bytes],
    ) -> None:
        await self._run(DeltaStream, requests, context)

    async def _run(
        self,
        kind: type[AdsStream] | type[DeltaStream],
        requests: AsyncIterator[Any],
        context: grpc.aio.ServicerContext[Any, bytes],
    ) -> None:
        """Serve one stream of either kind: the cap, admission and refusals are shared."""
        if len(self._streams) >= self.max_streams:
            self._log.warning("xds: %d streams open; refusing another", len(self._streams))
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"meshplane serves at most {self.max_streams} ADS streams",
            )
        common: dict[str, Any] = {
            "cache": self.cache,
            "board": self._callbacks,
            "requests": requests,
            "write": context.write,
            "ack_timeout": self._ack_timeout,
            "logger": self._log,
            "timer": self._timer,
            "authenticator": self.authenticator,
            "metadata": _metadata(context),
        }
        stream: AdsStream | DeltaStream
        if kind is AdsStream:
            # Only state-of-the-world responses are whole per-type bodies worth sharing.
            stream = AdsStream(**common, responses=self._responses)
        else:
            stream = DeltaStream(**common)
        self._streams.add(stream)
        try:
            await stream.run()
        except StreamRefused as refused:
            code = (
                grpc.StatusCode.PERMISSION_DENIED
                if isinstance(refused, PermissionDenied)
                else grpc.StatusCode.INVALID_ARGUMENT
                if isinstance(refused, InvalidNode)
                else grpc.StatusCode.UNAUTHENTICATED
            )
            self._log.warning("xds: refused a stream (%s): %s", code.name, refused)
            await context.abort(code, str(refused))
        finally:
            self._streams.discard(stream)


def _metadata(context: grpc.aio.ServicerContext[Any, bytes]) -> dict[str, str]:
    """The stream's text metadata with lower-case keys (binary ``-bin`` entries are skipped)."""
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            found[key.lower()] = value
    return found


def _check_free(host: str, port: int) -> None:
    """OSError naming ``host:port`` if nothing could listen there now (as grpc binds it)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        message = f"cannot listen on {host}:{port} for xDS: {error.strerror}"
        raise OSError(error.errno, message) from None
