"""The aiohttp application: routes from the model's HTTP bindings, parsing, rendering.

A request is turned into the operation's input (URI, query string and JSON body
members, as the model binds them), checked against the input shape (everything
the model states: required, ranges, enums, unions), handed to the operation, and
its output written as App Mesh does: the bare payload for single resources, the
member object for lists, ``{}`` for tags, epoch-second timestamps.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from meshplane.api import (
    auth,
    credentials,
    extensions,
    inputs,
    limits,
    manifests,
    metering,
    offloading,
    operations,
    rendering,
    screening,
)
from meshplane.manifests.frontdoor import FrontDoor
from meshplane.model import apimodel, errors, validation

log = logging.getLogger(__name__)

SERVICES_KEY = web.AppKey("services", operations.Services)
JSON = rendering.JSON
MAX_BODY_BYTES = limits.HttpLimits.max_body_bytes
"""Larger request bodies are refused; the largest valid App Mesh spec is far smaller."""


def _output(operation: Any, result: dict[str, Any]) -> Any:
    payload = operation.output_shape.serialization.get("payload")
    return result[payload] if payload else result


async def _screen(request: web.Request, offload: offloading.Offload, name: str, raw: bytes) -> None:
    """Raise what the server would raise first for a large body, found in the screening process."""
    account = request.app[SERVICES_KEY].resources.account.account_id
    uri, query = dict(request.match_info), dict(request.query)
    refusal = await offload.screen.run(screening.screen_operation, name, uri, query, raw, account)
    if refusal is not None:
        raise refusal


def _handler(
    operation: Any, call: operations.Handler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    tag_limit_error = inputs.declares(operation, errors.TooManyTagsException)

    def work(request: web.Request, raw: bytes) -> str:
        values = inputs.parse(operation, request.match_info, request.query, raw)
        validation.check(operation.input_shape, values, tag_limit_error=tag_limit_error)
        services = request.app[SERVICES_KEY]
        principal = request.get(auth.PRINCIPAL_KEY)
        if principal is not None:
            services = dataclasses.replace(services, caller=principal.name)
        return json.dumps(_output(operation, call(services, values)))

    async def handle(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        try:
            raw = await request.read()  # already read, within its limits, by the middleware
            if request.method == "GET":
                text = work(request, raw)
            else:
                offload = request.app[offloading.OFFLOAD_KEY]
                if len(raw) >= screening.SCREEN_BYTES:
                    await _screen(request, offload, operation.name, raw)
                text = await offload.write(work, request, raw)
        except errors.AppMeshError as error:
            return rendering.error_response(error, request_id)
        except Exception:
            log.exception("%s failed", operation.name)
            return rendering.error_response(
                errors.InternalServerErrorException(
                    f"{operation.name} failed unexpectedly; see the server log ({request_id})"
                ),
                request_id,
            )
        return web.Response(
            text=text,
            content_type=JSON,
            headers={"x-amzn-RequestId": request_id},
        )

    return handle


async def _healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    revision = services.resources.store.revision()
    return web.json_response({"status": "ok", "revision": revision})


async def _unknown(request: web.Request) -> web.Response:
    return rendering.error_response(
        errors.NotFoundException(
            f"No App Mesh operation is served at {request.method} {request.path}; "
            "meshplane serves the 2019-01-25 API under /v20190125/"
        ),
        str(uuid.uuid4()),
    )


def _read_only(message: str) -> Any:
    """A middleware answering every write with ``BadRequestException(message)``.

    Principals are meshplane's own, not the mesh's: their routes stay writable (in
    Kubernetes mode every replica shares them through a Secret).
    """

    @web.middleware
    async def refuse_writes(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method in {"GET", "HEAD", "OPTIONS"} or request.path.startswith(
            f"{credentials.PREFIX}/"
        ):
            return await handler(request)
        return rendering.error_response(errors.BadRequestException(message), str(uuid.uuid4()))

    return refuse_writes


def build_app(
    services: operations.Services,
    front_door: FrontDoor | None = None,
    proxies: extensions.ProxyReport | None = None,
    gate: auth.Gate | None = None,
    http_limits: limits.HttpLimits | None = None,
    read_only: str = "",
    metrics: metering.ApiMetrics | None = None,
    mounts: Sequence[Callable[[web.Application], None]] = (),
    xds_port: int | None = None,
) -> web.Application:
    """The App Mesh API as an aiohttp application (not yet listening).

    ``gate`` puts every route behind :mod:`meshplane.api.auth` (the composition root
    always passes one; in-process unit tests of parsing may leave it out). Serve it with
    :class:`~meshplane.api.limits.LimitedRunner` so the connection limits hold too; the
    body limits hold in any runner. ``metrics`` (outermost, so refusals are counted too)
    counts every request and serves ``GET /metrics``. The body middleware comes before the
    gate, so its timeout also covers the body the gate reads to check a signature. With
    ``read_only`` (Kubernetes mode: the mesh is changed through kubectl) every
    authenticated write answers a BadRequestException with that message. Each of
    ``mounts`` adds routes of a higher layer (the console) before the catch-all 404.
    """
    bounds = http_limits or limits.HttpLimits()
    middlewares: list[Any] = [metrics.middleware] if metrics is not None else []
    if gate is not None:
        middlewares.append(auth.header_middleware(gate))
    middlewares.append(limits.body_middleware)
    if gate is not None:
        middlewares.append(auth.middleware(gate))
    if read_only:
        middlewares.append(_read_only(read_only))
    app = web.Application(client_max_size=bounds.max_body_bytes, middlewares=middlewares)
    app[limits.LIMITS_KEY] = bounds
    offloading.install(app)
    app[SERVICES_KEY] = services
    names = apimodel.operation_names()
    table = operations.handlers(names)
    for name in names:
        operation = apimodel.operation(name)
        app.router.add_route(
            operation.http["method"],
            operation.http["requestUri"],
            _handler(operation, table[name]),
            name=name,
        )
    app.router.add_get("/healthz", _healthz)
    if metrics is not None:
        app.router.add_get("/metrics", metrics.scrape)
    extensions.add_routes(app, SERVICES_KEY, proxies, xds_port)
    if front_door is not None:
        manifests.add_routes(app, front_door)
    if gate is not None and gate.principals is not None:
        credentials.add_routes(app, gate.principals)
    for mount in mounts:
        mount(app)
    app.router.add_route("*", "/{tail:.*}", _unknown, name=metering.UNKNOWN)
    return app
