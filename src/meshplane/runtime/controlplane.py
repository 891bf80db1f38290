"""The runtime's only line to the control plane: its HTTP API, through :mod:`meshplane.client`.

The runtime never imports the store or the service; it talks to a control
plane the way it would talk to a remote one (``meshplane up --server URL``):

* ``GET /healthz`` — ready to serve;
* ``GET /meshplane/v1/proxies`` — read once for its ``xdsPort``: where sidecars connect;
* ``POST /meshplane/v1/proxyCredentials`` — the credential of one replica, which its
  sidecar shows on the ADS stream and its registrations carry;
* ``PUT /meshplane/v1/meshes/{mesh}/virtualNodes/{vn}/endpoints`` — where one
  replica receives mesh traffic (``source`` = replica name; ``[]`` withdraws), held
  for the lease the answer names and renewed by the supervisor;
* the manifest front door — ``POST /meshplane/v1/manifests/apply`` with
  ``{"sources": [{"name", "text"}], "namespace"}`` (what ``meshplane apply``
  sends) and ``GET /meshplane/v1/objects/virtualnodes`` (``{"items": [...]}``,
  objects as ``get -o yaml`` shows them). A control plane without it answers
  404, which callers treat as "not available" (they then read the files).

Proxies are never used (``trust_env=False``): the runtime sets HTTP_PROXY for
its apps, not for itself. Every call but ``/healthz`` is SigV4-signed with the
:class:`~meshplane.client.Signer` given (``meshplane up`` passes its control plane's
administrator credentials once the server has written them). Errors become one
:class:`ControlPlaneError` line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from meshplane import client
from meshplane.runtime import selecting, virtualnodes

EXTENSIONS = "/meshplane/v1"


class ControlPlaneError(Exception):
    """The control plane refused a request or could not be reached; the message says which."""


EndpointRegistration = client.Endpoint
"""One replica's endpoint for one listener of its virtual node."""


class ControlPlaneClient:
    """Calls one control plane at ``base_url`` (``http://127.0.0.1:9080``)."""

    def __init__(
        self, base_url: str, timeout: float = 10.0, signer: client.Signer | None = None
    ) -> None:
        """Every call goes through :mod:`meshplane.client`, never through HTTP_PROXY."""
        self._timeout = timeout
        self._client = self._connect(base_url, signer)
        self.base_url = self._client.base_url

    def _connect(self, base_url: str, signer: client.Signer | None) -> client.AsyncMeshplaneClient:
        transport = client.Transport(
            base_url, timeout=self._timeout, signer=signer, trust_env=False
        )
        return client.AsyncMeshplaneClient(client.MeshplaneClient(transport))

    def sign_with(self, signer: client.Signer | None) -> None:
        """Sign every later call with ``signer``.

        Its credentials may exist only once the control plane this runtime started has
        written them, hence after construction.
        """
        self._client = self._connect(self.base_url, signer)

    async def close(self) -> None:
        """Nothing to release: kept so callers need not know the transport."""

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return await self._client.call(method, path, body)
        except client.ControlPlaneError as error:
            raise ControlPlaneError(
                f"{method} {path}: {error.status} {error.message}".rstrip()
            ) from error
        except OSError as error:
            raise ControlPlaneError(str(error)) from error

    async def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200 now."""
        try:
            await self._client.health()
        except (OSError, client.ControlPlaneError):
            return False
        return True

    async def wait_healthy(
        self,
        deadline: float,
        still_starting: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Poll ``/healthz`` until 200; ControlPlaneError at ``deadline`` or if startup failed."""
        # Polling, not waiting on an event: the server is another process still starting.
        while not await self.healthy():
            if not still_starting():
                raise ControlPlaneError(f"the control plane at {self.base_url} exited on startup")
            if clock() >= deadline:
                raise ControlPlaneError(f"the control plane at {self.base_url} is not healthy")
            await asyncio.sleep(0.1)

    async def proxy_credential(self, node_id: str, replica: str) -> str | None:
        """The credential for ``replica``'s sidecar; None if this control plane issues none."""
        answer = await self._unless_missing(
            self._call_raw(
                "POST", f"{EXTENSIONS}/proxyCredentials", {"nodeId": node_id, "replica": replica}
            )
        )
        return None if answer is None else str(answer["token"])

    async def xds_port(self) -> int | None:
        """The xDS port this control plane serves; None if its answer does not say."""
        answer = await self._unless_missing(self._call_raw("GET", f"{EXTENSIONS}/proxies", None))
        port = (answer or {}).get("xdsPort")
        return port if isinstance(port, int) else None

    async def proxy_states(self) -> dict[str, tuple[str, int | None]] | None:
        """Each connected proxy's key → (state, the revision its snapshot was built at).

        The control plane's own verdict (``SYNCED`` judged against the proxy's mesh's
        revision, ``STALE``, ``NACKED``, ``HELD``); None if it does not answer.
        """
        try:
            answer = await self._call_raw("GET", f"{EXTENSIONS}/proxies", None)
        except (OSError, client.ControlPlaneError):
            return None
        return {
            str(view["key"]): (str(view["state"]), view.get("revision"))
            for view in answer.get("proxies", [])
            if view.get("connected")
        }

    async def _call_raw(self, method: str, path: str, body: Any) -> dict[str, Any]:
        return dict(await self._client.call(method, path, body))

    async def revision(self) -> int | None:
        """The control plane's store revision now, or None if it does not answer."""
        try:
            return (await self._client.health()).revision
        except (OSError, client.ControlPlaneError):
            return None

    async def register_endpoints(
        self,
        mesh: str,
        virtual_node: str,
        source: str,
        endpoints: Sequence[EndpointRegistration],
        credential: str | None = None,
    ) -> float:
        """Replace the endpoints ``source`` holds for a virtual node (empty withdraws them).

        ``credential`` is the replica's own (one is issued for the call without it); returns
        the seconds the registration lives unless renewed (0: no lease).
        """
        try:
            registration = await self._client.lease_endpoints(
                mesh, virtual_node, source, endpoints, credential
            )
        except client.ControlPlaneError as error:
            path = f"{EXTENSIONS}/meshes/{mesh}/virtualNodes/{virtual_node}/endpoints"
            raise ControlPlaneError(
                f"PUT {path}: {error.status} {error.message}".rstrip()
            ) from error
        except OSError as error:
            raise ControlPlaneError(str(error)) from error
        return registration.lease_seconds

    async def apply(self, directory: Path, namespace: str | None) -> list[str] | None:
        """Apply every manifest under ``directory`` at once; kubectl-style result lines.

        None if the control plane serves no manifest front door.
        """
        sources = [
            client.Source(str(file), file.read_text(encoding="utf-8"))
            for file in _manifest_files(directory)
        ]
        if not sources:
            return []
        answer = await self._unless_missing(self._client.apply(sources, namespace))
        if answer is None:
            return None
        lines = []
        for result in answer.get("results") or []:
            lines.append(str(result.get("line", "")))
            lines += [f"Warning: {warning}" for warning in result.get("warnings") or []]
        return lines

    async def virtual_nodes(self) -> list[selecting.VirtualNodeView] | None:
        """Every VirtualNode and VirtualGateway held, with TCP backends; None if no front door."""
        answer = await self._unless_missing(self._client.objects("virtualnodes"))
        if answer is None:
            return None
        items = list(answer.get("items") or [])
        # Gateways, and what tells a TCP backend: services and routers.
        for kind in ("virtualgateways", "virtualservices", "virtualrouters"):
            more = await self._unless_missing(self._client.objects(kind))
            items += (more or {}).get("items") or []
        return virtualnodes.views(items)

    async def virtual_service_names(self) -> list[str]:
        """The names apps may call each VirtualService object by (awsName, the Service forms)."""
        answer = await self._unless_missing(self._client.objects("virtualservices"))
        names: set[str] = set()
        for item in (answer or {}).get("items") or []:
            metadata, spec = item.get("metadata") or {}, item.get("spec") or {}
            name, namespace = str(metadata.get("name", "")), str(metadata.get("namespace", ""))
            if spec.get("awsName"):
                names.add(str(spec["awsName"]))
            if name:
                names.add(name)
                tails = ("", ".svc", ".svc.cluster.local")
                names.update(f"{name}.{namespace}{tail}" for tail in tails)
        return sorted(names)

    @staticmethod
    async def _unless_missing(call: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
        """The answer of a front-door call; None if this control plane serves no front door."""
        try:
            return await call
        except client.ControlPlaneError as error:
            if _route_missing(error.status, error.body):
                return None
            raise ControlPlaneError(str(error)) from error
        except OSError as error:
            raise ControlPlaneError(str(error)) from error


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
