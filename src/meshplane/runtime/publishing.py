"""Publishing a workload on a host port: the local LoadBalancer Service.

In the walkthrough a LoadBalancer Service put echo-frontend on the internet; its
traffic entered each pod through the sidecar's ingress listener (iptables sent
the pod port there). Locally a small asyncio TCP forwarder listens on the
published address and sends each connection to one ready replica — round
robin — at its sidecar's ingress port (or the app itself for workloads without
a sidecar). A plain TCP hop keeps the forwarder protocol-agnostic and adds no
HTTP parsing; Envoy's ingress listener still sees every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
from collections.abc import Awaitable, Callable, Sequence

Target = tuple[str, int]
TargetSource = Callable[[], Sequence[Target]]
"""Returns the replicas' addresses that may take a new connection now."""
Connector = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
"""Opens a connection to a target (``asyncio.open_connection``, or from a network namespace)."""

_CHUNK = 64 * 1024


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close so the other side sees the end (every runtime relay)."""
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class Forwarder:
    """Listens on ``host:port`` and forwards each connection to the next target."""

    def __init__(
        self, host: str, port: int, targets: TargetSource, connect: Connector | None = None
    ) -> None:
        """Nothing listens until :meth:`start`."""
        self.host, self.port = host, port
        self.targets = targets
        self._connect: Connector = connect or asyncio.open_connection
        self.connections = 0
        self.refused = 0
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind the published address (OSError, saying what to do, if it is taken)."""
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port)
        except OSError as exc:
            why = "the address is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise OSError(
                exc.errno,
                f"cannot publish on {self.host}:{self.port}: {why}; stop what listens there "
                "or change this workload's `publish:` in workloads.yaml",
            ) from exc
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._open.add(task)
        try:
            await self._serve(client_r, client_w)
        finally:
            client_w.close()
            if task is not None:
                self._open.discard(task)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        targets = list(self.targets())
        if not targets:  # nothing ready: refuse quickly rather than hang the client
            self.refused += 1
            return
        host, port = targets[next(self._turn) % len(targets)]
        try:
            upstream_r, upstream_w = await self._connect(host, port)
        except OSError:
            self.refused += 1
            return
        self.connections += 1
        try:
            await asyncio.gather(pipe(client_r, upstream_w), pipe(upstream_r, client_w))
        finally:
            upstream_w.close()

    async def stop(self) -> None:
        """Stop listening and cut open connections."""
        if self._server is not None:
            self._server.close()
            for task in list(self._open):
                task.cancel()
            for task in list(self._open):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._server.wait_closed()
