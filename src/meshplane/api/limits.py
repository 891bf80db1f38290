"""HTTP limits: what one client may hold of the API server, and how a breach is answered.

aiohttp parses requests well but bounds little: a client that sends one byte a
second keeps its connection (and a file descriptor) forever, the number of
connections is bounded only by the process's fd limit (past it ``accept`` fails
and health checks with it), and a malformed request line is answered with a
plain-text page and logged with a traceback. This module closes those gaps
without touching the routes:

- **Header and idle timeouts.** A connection waiting for a request head is
  closed when the head has not fully arrived ``header_timeout`` seconds after
  its first byte (slowloris), or when no byte came for ``idle_timeout`` seconds.
  A request whose head has arrived is never cut here (long polls stay open).
- **Body timeout and size.** :func:`body_middleware` reads every body within
  ``body_timeout`` seconds and at most ``max_body_bytes``, before any handler runs; a
  ``Content-Length`` over ``max_body_bytes`` is refused before the body is read.
- **A connection cap** below the fd limit. At the cap, a new connection evicts
  the connection that has waited longest for a request head (an idle or
  slowloris one), so health checks and real clients still get in; only when
  every connection has a request in flight is the newcomer closed. The xDS
  server listens on its own port and is not counted.
- **App Mesh rendering.** Every refusal (oversize request line or headers,
  malformed request, oversize or slow body) is a 400 with ``x-amzn-ErrorType:
  BadRequestException`` and a ``message`` naming the limit, and is logged as one
  line without a traceback.

The sweeper that enforces the timeouts ticks every quarter of the shortest
timeout; a connection is closed at most one tick late.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import resource
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from meshplane.api import rendering
from meshplane.model import errors

log = logging.getLogger(__name__)

FD_SHARE = 2
"""The API may use at most 1/FD_SHARE of the process's file descriptors for connections."""


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """The bounds of one API server; the defaults suit a laptop and a cluster alike."""

    max_line_bytes: int = 16384
    """Request line: three 255-character names fit percent-encoded (see model.rules)."""
    max_field_bytes: int = 8190
    max_headers: int = 100
    max_body_bytes: int = 4 * 1024 * 1024
    """The largest valid App Mesh spec is far smaller; manifests share the limit."""
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    body_timeout: float = 30.0
    max_connections: int = 0
    """0: derived from the fd limit (:func:`connection_cap`)."""

    def connection_cap(self) -> int:
        """The connection cap in force: the setting, or a share of the fd limit, at most 1000."""
        if self.max_connections > 0:
            return self.max_connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return max(16, min(1000, soft // FD_SHARE))


LIMITS_KEY = web.AppKey("http_limits", HttpLimits)


def _refusal(message: str) -> web.Response:
    response = rendering.error_response(errors.BadRequestException(message))
    response.force_close()
    return response


@web.middleware
async def body_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Read the whole body within the time and size limits before the handler sees it.

    ``request.read()`` caches the body, so handlers read it again for free. A body whose
    ``Content-Length`` already says it is over the limit is refused before a byte of it
    is read (aiohttp would read up to the limit first, then refuse): the client still
    gets the 400, as aiohttp reads and drops what it goes on sending.
    """
    limits = request.app[LIMITS_KEY]
    announced = request.content_length
    if announced is not None and announced > limits.max_body_bytes:
        log.info("api: refused a %d-byte body from %s unread", announced, request.remote)
        return _too_large(limits)
    if request.can_read_body:
        try:
            async with asyncio.timeout(limits.body_timeout):
                await request.read()
        except TimeoutError:
            log.info(
                "api: body from %s not received within %gs", request.remote, limits.body_timeout
            )
            return _refusal(
                f"The request body did not arrive within {limits.body_timeout:g} seconds"
            )
        except web.HTTPRequestEntityTooLarge:
            return _too_large(limits)
    return await handler(request)


def _too_large(limits: HttpLimits) -> web.Response:
    return _refusal(
        f"The request body is larger than the {limits.max_body_bytes} bytes meshplane accepts"
    )


class _Connections:
    """Every open API connection and what it waits for; evicts and sweeps."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self.cap = limits.connection_cap()
        self.open: dict[_LimitedHandler, None] = {}  # insertion order: oldest first
        self.evicted = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._tick = min(limits.header_timeout, limits.idle_timeout) / 4

    def admit(self, handler: _LimitedHandler) -> bool:
        """Register a new connection; False when it must be closed at once."""
        if len(self.open) >= self.cap:
            waiting = [h for h in self.open if h.waiting_since is not None]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda h: h.waiting_since or 0.0)
            self.evicted += 1
            oldest.cut("evicted at the connection cap")
        self.open[handler] = None
        if self._sweeper is None:
            self._schedule(handler.loop)
        return True

    def forget(self, handler: _LimitedHandler) -> None:
        """A connection closed."""
        self.open.pop(handler, None)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = loop.call_later(self._tick, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for handler in list(self.open):
            reason = handler.overdue(now, self.limits)
            if reason:
                handler.cut(reason)
        if self.open:
            self._schedule(loop)
        else:
            self._sweeper = None

    def stop(self) -> None:
        """Cancel the sweeper (the server is shutting down)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


class _LimitedHandler(RequestHandler):
    """aiohttp's protocol handler, plus head timeouts, the cap and App Mesh-rendered errors."""

    def __init__(self, connections: _Connections, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = connections
        self.loop = asyncio.get_running_loop()
        self.waiting_since: float | None = None
        """When this connection began waiting for a request head (None: a request in flight)."""
        self.first_byte_at: float | None = None
        """When the first byte of the awaited head came (None: nothing yet)."""
        self._heads = 0
        self._answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.waiting_since = self.loop.time()
        if not self.connections.admit(self):
            log.warning(
                "api: %d connections, every one busy; refusing a new one",
                len(self.connections.open),
            )
            transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.connections.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.waiting_since is not None and self.first_byte_at is None and data:
            self.first_byte_at = self.loop.time()
        before = self._request_count
        super().data_received(data)
        arrived = self._request_count - before
        if arrived:
            self._heads += arrived
            self.waiting_since = self.first_byte_at = None

    async def finish_response(self, request: Any, resp: Any, start_time: float | None) -> Any:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._answered += 1
            if self._answered >= self._heads:
                self.waiting_since = self.loop.time()
                self.first_byte_at = None

    def overdue(self, now: float, limits: HttpLimits) -> str | None:
        """Why this connection must close now, if it must."""
        if self.waiting_since is None:
            return None
        if self.first_byte_at is not None:
            if now - self.first_byte_at >= limits.header_timeout:
                return f"no complete request head within {limits.header_timeout:g}s"
            return None
        if now - self.waiting_since >= limits.idle_timeout:
            return f"idle for {limits.idle_timeout:g}s"
        return None

    def cut(self, reason: str) -> None:
        """Close the connection now, logging one line."""
        self.connections.forget(self)
        log.info("api: closing a connection: %s", reason)
        self.force_close()
        if self.transport is not None:
            self.transport.close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        # A malformed or oversize request is the client's fault: one line, no traceback.
        log.info("api: refused a malformed request from %s: %s", request.remote, message or exc)
        return _refusal(f"The request is malformed or over meshplane's limits: {message or exc}")


class _LimitedServer(web.Server):
    """aiohttp's connection factory, making :class:`_LimitedHandler` connections."""

    tracked: _Connections

    def __call__(self) -> RequestHandler:
        # The kwargs aiohttp's own factory would pass: every parser limit still applies.
        return _LimitedHandler(self.tracked, self, loop=self._loop, **self._kwargs)


class LimitedRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections obey :class:`HttpLimits`."""

    def __init__(self, app: web.Application, limits: HttpLimits, **kwargs: Any) -> None:
        """Serve ``app`` within ``limits`` (``kwargs`` go to aiohttp's runner)."""
        super().__init__(
            app,
            max_line_size=limits.max_line_bytes,
            max_field_size=limits.max_field_bytes,
            max_headers=limits.max_headers,
            **kwargs,
        )
        self.connections = _Connections(limits)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server inside the application (private API); re-class that very
        # object so everything it was configured with stays, and only __call__ changes.
        server.__class__ = _LimitedServer
        assert isinstance(server, _LimitedServer)
        server.tracked = self.connections
        return server

    async def cleanup(self) -> None:
        """Stop the sweeper, then aiohttp's cleanup."""
        self.connections.stop()
        await super().cleanup()
