"""The runtime's only line to the control plane: its HTTP API, through aiohttp's client.

The runtime never imports the store or the service; it talks to a control
plane the way it would talk to a remote one (``meshplane up --server URL``):

* ``GET /healthz`` — ready to serve;
* ``PUT /meshplane/v1/meshes/{mesh}/virtualNodes/{vn}/endpoints`` — where one
  replica receives mesh traffic (``source`` = replica name; ``[]`` withdraws);
* the manifest front door — ``POST /meshplane/v1/manifests/apply`` with
  ``{"sources": [{"name", "text"}], "namespace"}`` (what ``meshplane apply``
  sends) and ``GET /meshplane/v1/objects/virtualnodes`` (``{"items": [...]}``,
  objects as ``get -o yaml`` shows them). A control plane without it answers
  404, which callers treat as "not available" (they then read the files).

Proxies are never used (``trust_env=False``): the runtime sets HTTP_PROXY for
its apps, not for itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from meshplane.runtime import selecting, virtualnodes

EXTENSIONS = "/meshplane/v1"
APPLY_PATH = f"{EXTENSIONS}/manifests/apply"
VIRTUAL_NODES_PATH = f"{EXTENSIONS}/objects/virtualnodes"


class ControlPlaneError(Exception):
    """The control plane refused a request or could not be reached; the message says which."""


@dataclasses.dataclass(frozen=True)
class EndpointRegistration:
    """One replica's endpoint for one listener of its virtual node."""

    listener_port: int
    address: str
    port: int

    def to_json(self) -> dict[str, Any]:
        """The API's camelCase body item."""
        return {"listenerPort": self.listener_port, "address": self.address, "port": self.port}


class ControlPlaneClient:
    """Calls one control plane at ``base_url`` (``http://127.0.0.1:9080``)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        """The session is opened lazily, inside the running event loop."""
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, trust_env=False)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        url = self.base_url + path
        try:
            async with self._client().request(method, url, **kwargs) as response:
                text = await response.text()
                try:
                    body = await response.json(content_type=None) if text else None
                except ValueError:
                    body = text
                return response.status, body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ControlPlaneError(f"{method} {url}: {exc or type(exc).__name__}") from exc

    @staticmethod
    def _failure(method: str, path: str, status: int, body: Any) -> ControlPlaneError:
        message = body
        if isinstance(body, Mapping):  # App Mesh errors carry a message, the front door errors
            message = body.get("message") or "; ".join(map(str, body.get("errors") or []))
        return ControlPlaneError(f"{method} {path}: {status} {message or ''}".rstrip())

    async def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200 now."""
        try:
            status, _ = await self._request("GET", "/healthz")
        except ControlPlaneError:
            return False
        return status == 200

    async def wait_healthy(
        self,
        deadline: float,
        still_starting: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Poll ``/healthz`` until 200; ControlPlaneError at ``deadline`` or if startup failed."""
        while not await self.healthy():
            if not still_starting():
                raise ControlPlaneError(f"the control plane at {self.base_url} exited on startup")
            if clock() >= deadline:
                raise ControlPlaneError(f"the control plane at {self.base_url} is not healthy")
            await asyncio.sleep(0.1)

    async def register_endpoints(
        self,
        mesh: str,
        virtual_node: str,
        source: str,
        endpoints: Sequence[EndpointRegistration],
    ) -> None:
        """Replace the endpoints ``source`` holds for a virtual node (empty withdraws them)."""
        path = f"{EXTENSIONS}/meshes/{mesh}/virtualNodes/{virtual_node}/endpoints"
        body = {"source": source, "endpoints": [e.to_json() for e in endpoints]}
        status, answer = await self._request("PUT", path, json=body)
        if status != 200:
            raise self._failure("PUT", path, status, answer)

    async def apply(self, directory: Path, namespace: str | None) -> list[str] | None:
        """Apply every manifest under ``directory`` at once; kubectl-style result lines.

        None if the control plane serves no manifest front door.
        """
        sources = [
            {"name": str(file), "text": file.read_text(encoding="utf-8")}
            for file in _manifest_files(directory)
        ]
        if not sources:
            return []
        body = {"sources": sources, "namespace": namespace}
        status, answer = await self._request("POST", APPLY_PATH, json=body)
        if _route_missing(status, answer):
            return None
        if status != 200 or not isinstance(answer, Mapping):
            raise self._failure("POST", APPLY_PATH, status, answer)
        lines = []
        for result in answer.get("results") or []:
            lines.append(str(result.get("line", "")))
            lines += [f"Warning: {warning}" for warning in result.get("warnings") or []]
        return lines

    async def virtual_nodes(self) -> list[selecting.VirtualNodeView] | None:
        """Every VirtualNode object the control plane holds; None if it serves no manifests."""
        status, answer = await self._request("GET", VIRTUAL_NODES_PATH)
        if _route_missing(status, answer):
            return None
        if status != 200 or not isinstance(answer, Mapping):
            raise self._failure("GET", VIRTUAL_NODES_PATH, status, answer)
        return virtualnodes.views(answer.get("items") or [])


def _route_missing(status: int, body: Any) -> bool:
    """Whether a 404 means "no such endpoint here" rather than a NotFound resource."""
    message = body.get("message", "") if isinstance(body, Mapping) else str(body)
    return status == 404 and (not message or "No App Mesh operation is served" in message)


def _manifest_files(directory: Path) -> list[Path]:
    """The manifest files ``meshplane up`` applies: every YAML file but the workloads file."""
    if not directory.is_dir():
        return [directory]
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix in {".yaml", ".yml"} and path.name != "workloads.yaml"
    )
