"""meshplane's own endpoints beside the App Mesh API, under ``/meshplane/v1/``.

App Mesh had no API for these because AWS ran the data plane: proxy credentials
and endpoint registration for the local runtime, and the sync state of every proxy
(what ``proxy-status`` shows in Istio: did my change reach Envoy, and if not, why).
``GET /meshplane/v1/proxies?waitForRevision=N[&timeout=S]`` answers once every
connected proxy is synced at revision N, or after S seconds with ``converged`` false.
Errors use the same App Mesh error types.

* ``POST /meshplane/v1/proxyCredentials`` ``{"nodeId", "replica"}`` →
  ``{"nodeId", "replica", "token", "expiresAt"}``: the credential one replica's sidecar
  shows on its ADS stream (action ``meshplane:IssueProxyCredential`` on the node's ARN);
* ``GET /meshplane/v1/proxies/stats?key=K[&format=prometheus|json]`` → that proxy's Envoy
  stats, read from the sidecar's read-only stats listener (the port its node metadata
  announces, always on loopback: :mod:`meshplane.envoy.statslistener`) — Envoy's own
  ``/stats/prometheus`` text, or ``/stats?format=json``; 404 when the proxy is not
  connected or announced no stats port, 502 when its listener does not answer;
* ``PUT …/virtualNodes/{node}/endpoints`` ``{"source", "endpoints", "credential"}``:
  the credential must be that replica's (node ``mesh/{mesh}/virtualNode/{node}``,
  replica ``source``), so a replica registers and withdraws only its own endpoints;
  each endpoint is ``{"listenerPort", "address", "port", "attributes"?}`` (attributes:
  the instance's Cloud Map attributes, string → string);
  the answer's ``leaseSeconds`` says how long the registration lives unless renewed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import aiohttp
from aiohttp import web

from meshplane.api import envoyadmin, offloading, rendering
from meshplane.api.operations import Services
from meshplane.model import errors, kinds, naming
from meshplane.model.snapshot import Endpoint
from meshplane.service.proxycredentials import InvalidCredential, ProxyCredentials

PREFIX = "/meshplane/v1"


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, RecursionError) as exc:  # too deep a nesting is malformed input too
        raise errors.BadRequestException(f"The request body is not valid JSON: {exc}") from exc


MAX_WAIT = 60.0
"""The longest ``?waitForRevision=`` wait one request may ask for, in seconds."""

Handler = Callable[[web.Request], Awaitable[web.Response]]
T = TypeVar("T")


def _answering(handler: Handler) -> Handler:
    """``handler`` whose App Mesh errors become their error answers: each handler raises."""

    @functools.wraps(handler)
    async def answering(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except errors.AppMeshError as error:
            return rendering.error_response(error)

    return answering


def _known(found: T | None, missing: str) -> T:
    """``found``, or NotFound saying what is ``missing``."""
    if found is None:
        raise errors.NotFoundException(missing)
    return found


class ProxyReport(Protocol):
    """The per-proxy read model (supplied by the composition root)."""

    def report(self) -> dict[str, Any]:
        """``{"revision", "converged", "proxies"}`` now."""

    def config(self, key: str) -> dict[str, Any] | None:
        """What one proxy was sent, summarized (no private keys); ``None`` if nothing."""

    def admin_socket(self, key: str) -> str | None:
        """The admin socket path a connected proxy announced, if any."""

    async def wait_for_revision(self, revision: int, timeout: float) -> dict[str, Any]:
        """The report once every connected proxy is synced at ``revision`` (or at timeout)."""

    def stats_address(self, key: str) -> str | None:
        """``host:port`` of the connected proxy's read-only stats listener, if it has one."""


def _wait_arguments(request: web.Request) -> tuple[int, float] | None:
    """``waitForRevision`` and ``timeout`` (seconds, default 30) from the query, if asked."""
    query = request.query
    if "waitForRevision" not in query:
        return None
    try:
        revision = int(query["waitForRevision"])
        timeout = float(query.get("timeout", "30"))
    except ValueError as exc:
        raise errors.BadRequestException(
            "waitForRevision must be an integer and timeout a number of seconds"
        ) from exc
    if revision < 0 or not 0 <= timeout <= MAX_WAIT:
        raise errors.BadRequestException(
            f"waitForRevision must be >= 0 and timeout between 0 and {MAX_WAIT:g} seconds"
        )
    return revision, timeout


STATS_FORMATS = {"prometheus": "/stats/prometheus", "json": "/stats?format=json"}
"""``format=`` → the stats listener path it reads."""
STATS_TIMEOUT = aiohttp.ClientTimeout(total=5)


async def _read_stats(address: str, form: str) -> str:
    """The text of one stats read from the listener at ``address`` (never via HTTP_PROXY)."""
    async with (
        aiohttp.ClientSession(timeout=STATS_TIMEOUT, trust_env=False) as session,
        session.get(f"http://{address}{STATS_FORMATS[form]}") as answer,
    ):
        answer.raise_for_status()
        return await answer.text()


MAX_REPLICA = 255
"""The longest replica name a credential may name."""


def _issue(services: Services, body: Any) -> dict[str, Any]:
    """A credential for one (node, replica) of a virtual node or gateway."""
    if services.credentials is None:
        raise errors.BadRequestException("this control plane issues no proxy credentials")
    if not isinstance(body, dict) or not isinstance(body.get("nodeId"), str):
        raise errors.BadRequestException(
            'Invalid request: body must be {"nodeId": "mesh/<mesh>/virtualNode/<name>", '
            '"replica": "<replica>"}'
        )
    replica = body.get("replica", "")
    if not isinstance(replica, str) or len(replica) > MAX_REPLICA:
        raise errors.BadRequestException(
            f"Invalid request: replica: must be a string of at most {MAX_REPLICA} characters"
        )
    ref = naming.parse_node_id(body["nodeId"])
    if ref is None:
        raise errors.BadRequestException(
            "Invalid request: nodeId: must be mesh/<mesh>/virtualNode/<name> "
            "or mesh/<mesh>/virtualGateway/<name>"
        )
    # Not checked against the store: a credential names a proxy, not a resource, and
    # the node may be created after its sidecar starts (its stream then gets nothing).
    issued = services.credentials.issue(body["nodeId"], replica)
    return {
        "nodeId": issued.claims.node_id,
        "replica": issued.claims.replica,
        "token": issued.token,
        "expiresAt": issued.claims.expires_at,
    }


def _endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    """One endpoint as the API shows it (``attributes`` only when it has some)."""
    shown: dict[str, Any] = {
        "listenerPort": endpoint.listener_port,
        "address": endpoint.address,
        "port": endpoint.port,
    }
    if endpoint.attributes:
        shown["attributes"] = dict(endpoint.attributes)
    return shown


def _check_scope(
    credentials: ProxyCredentials | None, token: Any, mesh: str, node: str, source: str
) -> None:
    """Forbidden unless ``token`` is the credential of replica ``source`` of ``node``."""
    if credentials is None or (token is None and not credentials.required):
        return
    if not isinstance(token, str):
        raise errors.ForbiddenException(
            "Registering endpoints needs the replica's proxy credential (body field credential)"
        )
    try:
        claims = credentials.verify(token)
    except InvalidCredential as exc:
        raise errors.ForbiddenException(f"Invalid proxy credential: {exc}") from exc
    ref = naming.parse_node_id(claims.node_id)
    if ref is None or (ref.mesh, ref.kind, ref.name) != (mesh, kinds.VIRTUAL_NODE.key, node):
        raise errors.ForbiddenException(
            f"The credential is for {claims.node_id}, not mesh/{mesh}/virtualNode/{node}"
        )
    if claims.replica != source:
        raise errors.ForbiddenException(
            f"The credential is for replica {claims.replica!r}, not {source!r}: "
            "a replica registers and withdraws only its own endpoints"
        )


def _proxy_stats(proxies: ProxyReport | None) -> Handler:
    """``GET /proxies/stats``: one proxy's Envoy stats, read from its announced stats port."""

    @_answering
    async def get_proxy_stats(request: web.Request) -> web.Response:
        key, form = request.query.get("key", ""), request.query.get("format", "prometheus")
        if form not in STATS_FORMATS:
            raise errors.BadRequestException("format must be prometheus or json")
        address = _known(
            proxies.stats_address(key) if proxies is not None else None,
            f"no connected proxy {key!r} announced a stats port "
            "(sidecars started by meshplane up do)",
        )
        try:
            text = await _read_stats(address, form)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.json_response(
                {"message": f"the stats listener of {key} at {address} did not answer: {exc}"},
                status=502,
            )
        kind = "application/json" if form == "json" else "text/plain"
        return web.Response(text=text, content_type=kind)

    return get_proxy_stats


def add_routes(
    app: web.Application,
    services_key: web.AppKey[Services],
    proxies: ProxyReport | None = None,
    xds_port: int | None = None,
) -> None:
    """Register the extension routes on the API application.

    ``xds_port`` (the bound xDS port) joins ``GET /proxies``'s answer as ``xdsPort``, so
    ``meshplane up --server URL`` learns where its sidecars connect from the URL alone.
    """
    port = {} if xds_port is None else {"xdsPort": xds_port}

    @_answering
    async def get_proxies(request: web.Request) -> web.Response:
        if proxies is None:
            return web.json_response({"revision": 0, "converged": True, "proxies": [], **port})
        waiting = _wait_arguments(request)
        if waiting is None:
            return web.json_response({**proxies.report(), **port})
        return web.json_response({**(await proxies.wait_for_revision(*waiting)), **port})

    @_answering
    async def get_proxy_config(request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        found = proxies.config(key) if proxies is not None else None
        return web.json_response(_known(found, f"no proxy {key!r} has been sent a config"))

    @_answering
    async def get_envoy_config(request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        path = _known(
            proxies.admin_socket(key) if proxies is not None else None,
            f"proxy {key!r} is not connected or announced no admin socket (only the "
            "local runtime's sidecars on this machine do)",
        )
        try:
            dump = await envoyadmin.config_dump(path)
        except envoyadmin.Unreachable as error:
            raise errors.BadRequestException(f"cannot read {key}'s Envoy: {error}") from error
        return web.json_response({"key": key, "configDump": dump})

    @_answering
    async def post_credentials(request: web.Request) -> web.Response:
        return web.json_response(_issue(request.app[services_key], await _body(request)))

    @_answering
    async def put_endpoints(request: web.Request) -> web.Response:
        services = request.app[services_key]
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("endpoints"), list):
            raise errors.BadRequestException(
                'Invalid request: body must be {"source": ..., "endpoints": [...]}'
            )
        mesh, node = request.match_info["mesh"], request.match_info["node"]
        source = str(body.get("source") or "")
        _check_scope(services.credentials, body.get("credential"), mesh, node, source)
        registered = await request.app[offloading.OFFLOAD_KEY].write(
            functools.partial(services.discovery.register, leased=True),
            mesh,
            node,
            source,
            body["endpoints"],
        )
        return web.json_response(
            {
                "endpoints": [_endpoint_json(e) for e in registered],
                "leaseSeconds": services.discovery.lease_ttl,
            }
        )

    async def get_endpoints(request: web.Request) -> web.Response:
        found = request.app[services_key].discovery.list_endpoints(request.match_info["mesh"])
        return web.Response(
            text=json.dumps(
                {node: [_endpoint_json(e) for e in endpoints] for node, endpoints in found.items()}
            ),
            content_type="application/json",
        )

    app.router.add_put(f"{PREFIX}/meshes/{{mesh}}/virtualNodes/{{node}}/endpoints", put_endpoints)
    app.router.add_get(f"{PREFIX}/meshes/{{mesh}}/endpoints", get_endpoints)
    app.router.add_get(f"{PREFIX}/proxies", get_proxies)
    app.router.add_get(f"{PREFIX}/proxies/config", get_proxy_config)
    app.router.add_get(f"{PREFIX}/proxies/envoyConfig", get_envoy_config)
    app.router.add_get(f"{PREFIX}/proxies/stats", _proxy_stats(proxies))
    app.router.add_post(f"{PREFIX}/proxyCredentials", post_credentials)
