"""meshplane's own endpoints beside the App Mesh API, under ``/meshplane/v1/``.

App Mesh had no API for these because AWS ran the data plane: endpoint
registration for the local runtime, and the sync state of every proxy (what
``proxy-status`` shows in Istio: did my change reach Envoy, and if not, why).
Errors use the same App Mesh error types.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from meshplane.api import rendering
from meshplane.api.operations import Services
from meshplane.model import errors

PREFIX = "/meshplane/v1"


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, RecursionError) as exc:  # too deep a nesting is malformed input too
        raise errors.BadRequestException(f"The request body is not valid JSON: {exc}") from exc


ProxyReport = Callable[[], list[dict[str, Any]]]
"""Returns the sync state of every proxy (supplied by the composition root)."""


def add_routes(
    app: web.Application, services_key: web.AppKey[Services], proxies: ProxyReport | None = None
) -> None:
    """Register the extension routes on the API application."""

    async def get_proxies(_request: web.Request) -> web.Response:
        return web.json_response({"proxies": proxies() if proxies else []})

    async def put_endpoints(request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            if not isinstance(body, dict) or not isinstance(body.get("endpoints"), list):
                raise errors.BadRequestException(
                    'Invalid request: body must be {"source": ..., "endpoints": [...]}'
                )
            registered = request.app[services_key].discovery.register(
                request.match_info["mesh"],
                request.match_info["node"],
                str(body.get("source") or ""),
                body["endpoints"],
            )
        except errors.AppMeshError as error:
            return rendering.error_response(error)
        return web.json_response(
            {
                "endpoints": [
                    {"listenerPort": e.listener_port, "address": e.address, "port": e.port}
                    for e in registered
                ]
            }
        )

    async def get_endpoints(request: web.Request) -> web.Response:
        found = request.app[services_key].discovery.list_endpoints(request.match_info["mesh"])
        return web.Response(
            text=json.dumps(
                {
                    node: [
                        {"listenerPort": e.listener_port, "address": e.address, "port": e.port}
                        for e in endpoints
                    ]
                    for node, endpoints in found.items()
                }
            ),
            content_type="application/json",
        )

    app.router.add_put(f"{PREFIX}/meshes/{{mesh}}/virtualNodes/{{node}}/endpoints", put_endpoints)
    app.router.add_get(f"{PREFIX}/meshes/{{mesh}}/endpoints", get_endpoints)
    app.router.add_get(f"{PREFIX}/proxies", get_proxies)
