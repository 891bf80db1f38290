"""Typed calls of meshplane's own endpoints: ``/healthz`` and ``/meshplane/v1``.

One method per endpoint, named for what it does; bodies are the server's JSON (the
shapes ``meshplane proxy-status -o json`` and ``get -o json`` print), parsed once here.
:class:`MeshplaneClient` blocks (the CLI, the demo, tests); :class:`AsyncMeshplaneClient`
runs the same calls on a worker thread for event-loop callers such as the runtime, so
the wire code exists once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from meshplane.client.transport import Transport, open_transport

PREFIX = "/meshplane/v1"


@dataclasses.dataclass(frozen=True)
class Health:
    """``GET /healthz``: the server is up, at store ``revision``."""

    status: str
    revision: int


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One replica's endpoint for one listener of its virtual node."""

    listener_port: int
    address: str
    port: int
    attributes: tuple[tuple[str, str], ...] = ()
    """Its Cloud Map instance attributes (the workload's labels), sorted by key."""

    def to_json(self) -> dict[str, Any]:
        """The API's camelCase body item."""
        item: dict[str, Any] = {
            "listenerPort": self.listener_port,
            "address": self.address,
            "port": self.port,
        }
        if self.attributes:
            item["attributes"] = dict(self.attributes)
        return item

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Endpoint:
        """Parse one item of the endpoints answer."""
        attributes = item.get("attributes") or {}
        return cls(
            int(item["listenerPort"]),
            str(item["address"]),
            int(item["port"]),
            tuple(sorted((str(k), str(v)) for k, v in attributes.items())),
        )


@dataclasses.dataclass(frozen=True)
class ProxyCredential:
    """``POST /meshplane/v1/proxyCredentials``: the token one replica's sidecar shows."""

    node_id: str
    replica: str
    token: str
    expires_at: float


@dataclasses.dataclass(frozen=True)
class Registration:
    """A replica's endpoints as registered, and how long they live unless renewed."""

    endpoints: list[Endpoint]
    lease_seconds: float


@dataclasses.dataclass(frozen=True)
class Source:
    """One manifest file as the front door takes it: a name for messages and its text."""

    name: str
    text: str

    def to_json(self) -> dict[str, str]:
        """The request body item."""
        return {"name": self.name, "text": self.text}


@dataclasses.dataclass(frozen=True)
class ProxiesReport:
    """``GET /meshplane/v1/proxies``: the store revision and every proxy's sync view.

    ``converged`` is the server's verdict — every connected proxy is ``SYNCED`` at
    ``revision`` — so no client re-derives "synced".
    """

    revision: int
    converged: bool
    proxies: list[dict[str, Any]]

    @property
    def connected(self) -> list[dict[str, Any]]:
        """The proxies with an open ADS stream."""
        return [p for p in self.proxies if p["connected"]]

    def to_json(self) -> dict[str, Any]:
        """The answer as the server sent it."""
        return {"revision": self.revision, "converged": self.converged, "proxies": self.proxies}


class MeshplaneClient:
    """Blocking client of the control plane behind ``transport`` (see :func:`connect`)."""

    def __init__(self, transport: Transport) -> None:
        """Send every call through ``transport``, which decides timeouts, proxies and signing."""
        self.transport = transport

    @property
    def base_url(self) -> str:
        """The control plane's URL, without a trailing slash."""
        return self.transport.base_url

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str | None] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One JSON request to ``path``; the parsed answer, ControlPlaneError unless 2xx."""
        return self.transport.call(method, path, body, query=query, timeout=timeout)

    # -- health and the read model ---------------------------------------------------------

    def health(self) -> Health:
        """``/healthz``: up, and the store revision."""
        answer = self.call("GET", "/healthz")
        return Health(str(answer["status"]), int(answer["revision"]))

    def proxies(self) -> ProxiesReport:
        """Every proxy the xDS server has seen, with the server's sync verdict."""
        return _report(self.call("GET", f"{PREFIX}/proxies"))

    def proxy_config(self, key: str) -> dict[str, Any]:
        """What the proxy ``key`` was sent: listeners, routes, clusters, endpoints, secrets."""
        answer = self.call("GET", f"{PREFIX}/proxies/config", query={"key": key})
        return dict(answer)

    def envoy_config(self, key: str) -> dict[str, Any]:
        """Envoy's own config dump of the proxy ``key`` (local sidecars; private keys redacted)."""
        answer = self.call("GET", f"{PREFIX}/proxies/envoyConfig", query={"key": key})
        return dict(answer)

    def proxy_stats(self, key: str, form: str = "prometheus") -> str:
        """The Envoy stats of proxy ``key``: Prometheus text, or Envoy's JSON (``form="json"``)."""
        answer = self.call("GET", f"{PREFIX}/proxies/stats", query={"key": key, "format": form})
        return answer if isinstance(answer, str) else json.dumps(answer)

    def wait_for_revision(self, revision: int, timeout: float = 30.0) -> ProxiesReport:
        """Wait until every connected proxy is synced at ``revision`` or later.

        The server waits, woken by events; TimeoutError naming the laggards after ``timeout``.
        """
        query = {"waitForRevision": str(revision), "timeout": f"{timeout:g}"}
        answer = self.call("GET", f"{PREFIX}/proxies", query=query, timeout=timeout + 10)
        report = _report(answer)
        if not report.converged:
            lagging = [f"{p['key']}: {p['state']}" for p in report.connected]
            raise TimeoutError(
                f"proxies did not sync to revision {revision} within {timeout:g} s: {lagging}"
            )
        return report

    # -- endpoint registration (the local runtime) -------------------------------------------

    def issue_proxy_credential(self, node_id: str, replica: str) -> ProxyCredential:
        """The credential of ``replica`` of the virtual node or gateway ``node_id``."""
        answer = self.call(
            "POST", f"{PREFIX}/proxyCredentials", {"nodeId": node_id, "replica": replica}
        )
        return ProxyCredential(
            str(answer["nodeId"]),
            str(answer["replica"]),
            str(answer["token"]),
            float(answer["expiresAt"]),
        )

    def lease_endpoints(
        self,
        mesh: str,
        virtual_node: str,
        source: str,
        endpoints: Sequence[Endpoint],
        credential: str | None = None,
    ) -> Registration:
        """Register (or renew, or with ``[]`` withdraw) the endpoints of replica ``source``.

        ``credential`` is that replica's proxy credential; without one, one is issued for
        this call (which needs the right to issue credentials).
        """
        if credential is None:
            node_id = f"mesh/{mesh}/virtualNode/{virtual_node}"
            credential = self.issue_proxy_credential(node_id, source).token
        path = f"{PREFIX}/meshes/{mesh}/virtualNodes/{virtual_node}/endpoints"
        body = {
            "source": source,
            "endpoints": [e.to_json() for e in endpoints],
            "credential": credential,
        }
        answer = self.call("PUT", path, body)
        return Registration(
            [Endpoint.from_json(e) for e in answer["endpoints"]],
            float(answer.get("leaseSeconds") or 0),
        )

    def register_endpoints(
        self,
        mesh: str,
        virtual_node: str,
        source: str,
        endpoints: Sequence[Endpoint],
        credential: str | None = None,
    ) -> list[Endpoint]:
        """Replace the endpoints ``source`` holds for a virtual node (empty withdraws them)."""
        return self.lease_endpoints(mesh, virtual_node, source, endpoints, credential).endpoints

    def endpoints(self, mesh: str) -> dict[str, list[Endpoint]]:
        """Every registered endpoint of ``mesh``, by virtual node."""
        answer = self.call("GET", f"{PREFIX}/meshes/{mesh}/endpoints")
        return {node: [Endpoint.from_json(e) for e in items] for node, items in answer.items()}

    # -- the manifest front door -------------------------------------------------------------

    def apply(self, sources: Sequence[Source], namespace: str | None) -> dict[str, Any]:
        """``meshplane apply``: ``{"results": [{"line", "warnings", ...}]}``."""
        body = {"sources": [s.to_json() for s in sources], "namespace": namespace}
        return dict(self.call("POST", f"{PREFIX}/manifests/apply", body))

    def delete(self, sources: Sequence[Source], namespace: str | None) -> dict[str, Any]:
        """``meshplane delete -f``: the objects the manifests name."""
        body = {"sources": [s.to_json() for s in sources], "namespace": namespace}
        return dict(self.call("POST", f"{PREFIX}/manifests/delete", body))

    def objects(self, kind: str, namespace: str | None = None) -> dict[str, Any]:
        """``get KIND``: ``{"kind", "items"}`` in ``namespace`` (None: every namespace)."""
        return dict(self.call("GET", f"{PREFIX}/objects/{kind}", query={"namespace": namespace}))

    def object(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        """``get/describe KIND NAME``: ``{"object", "events"}``."""
        path = f"{PREFIX}/objects/{kind}/{name}"
        return dict(self.call("GET", path, query={"namespace": namespace}))

    def delete_object(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        """``delete KIND NAME``: ``{"results": [...]}``."""
        path = f"{PREFIX}/objects/{kind}/{name}"
        return dict(self.call("DELETE", path, query={"namespace": namespace}))

    def label_namespace(
        self, name: str, labels: Mapping[str, str | None], overwrite: bool
    ) -> dict[str, Any]:
        """``label namespace NAME k=v k-``: None removes a label."""
        body = {"labels": dict(labels), "overwrite": overwrite}
        return dict(self.call("POST", f"{PREFIX}/namespaces/{name}/labels", body))

    # -- principals and policies (the administrator) -------------------------------------------

    def credentials(self) -> list[dict[str, Any]]:
        """Every principal: name, access key id, creation time and policy (no secrets)."""
        return list(self.call("GET", f"{PREFIX}/credentials")["credentials"])

    def create_credentials(self, name: str, policy: Mapping[str, Any]) -> dict[str, Any]:
        """A new principal with ``policy``; the answer holds its secret and ``profile`` text."""
        return dict(self.call("POST", f"{PREFIX}/credentials/{name}", {"policy": dict(policy)}))

    def delete_credentials(self, name: str) -> dict[str, Any]:
        """Remove a principal; its key is refused from the next request on."""
        return dict(self.call("DELETE", f"{PREFIX}/credentials/{name}"))


def _report(answer: Mapping[str, Any]) -> ProxiesReport:
    return ProxiesReport(
        revision=int(answer["revision"]),
        converged=bool(answer["converged"]),
        proxies=list(answer["proxies"]),
    )


P = ParamSpec("P")
R = TypeVar("R")


def _off_loop(
    method: Callable[Concatenate[MeshplaneClient, P], R],
) -> Callable[Concatenate[AsyncMeshplaneClient, P], Coroutine[Any, Any, R]]:
    """``method`` of the blocking client as an awaitable one that runs it on a worker thread.

    Each asynchronous method is this one line, so its signature, defaults and answer type
    are the blocking method's own and cannot drift from them.
    """

    async def off_loop(self: AsyncMeshplaneClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        # A CLI command never builds the async client, so it does not pay asyncio's import.
        import asyncio  # noqa: PLC0415 - already imported by the caller's running event loop

        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    off_loop.__name__ = method.__name__
    off_loop.__qualname__ = f"AsyncMeshplaneClient.{method.__name__}"
    off_loop.__doc__ = f"See :meth:`MeshplaneClient.{method.__name__}`."
    return off_loop


class AsyncMeshplaneClient:
    """:class:`MeshplaneClient` for a running event loop: each call runs on a worker thread.

    A thread per call is cheap next to a request, and it keeps one wire implementation
    (and one place to sign) for every caller.
    """

    def __init__(self, sync: MeshplaneClient) -> None:
        """Run the calls of ``sync`` (from :func:`connect`) off the event loop."""
        self.sync = sync

    @property
    def base_url(self) -> str:
        """The control plane's URL, without a trailing slash."""
        return self.sync.base_url

    call = _off_loop(MeshplaneClient.call)
    health = _off_loop(MeshplaneClient.health)
    proxies = _off_loop(MeshplaneClient.proxies)
    wait_for_revision = _off_loop(MeshplaneClient.wait_for_revision)
    issue_proxy_credential = _off_loop(MeshplaneClient.issue_proxy_credential)
    lease_endpoints = _off_loop(MeshplaneClient.lease_endpoints)
    register_endpoints = _off_loop(MeshplaneClient.register_endpoints)
    apply = _off_loop(MeshplaneClient.apply)
    objects = _off_loop(MeshplaneClient.objects)


def connect(
    base_url: str,
    *,
    sign: bool = False,
    region: str = "us-west-2",
    profile: str | None = None,
    fallback_credentials: Path | None = None,
    **options: Any,
) -> MeshplaneClient:
    """The client every meshplane command builds: the one switch for request signing.

    ``options`` go to :class:`~meshplane.client.transport.Transport` (``timeout``,
    ``trust_env``).

    ``sign=True`` SigV4-signs every request with the credentials boto3 would use
    (``AWS_ACCESS_KEY_ID``…, ``AWS_PROFILE`` or ``profile``, ``AWS_SHARED_CREDENTIALS_FILE``);
    falling back to ``fallback_credentials`` (a data dir's ``credentials`` file); when
    there are none the requests go unsigned and the server answers
    ``MissingAuthenticationTokenException`` (unless it runs with ``--auth none``).
    """
    return MeshplaneClient(
        open_transport(
            base_url,
            sign=sign,
            region=region,
            profile=profile,
            fallback_credentials=fallback_credentials,
            **options,
        )
    )
