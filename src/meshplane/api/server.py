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
    limits,
    manifests,
    metering,
    offloading,
    operations,
    rendering,
)
from meshplane.manifests.frontdoor import FrontDoor
from meshplane.model import apimodel, errors, validation

log = logging.getLogger(__name__)

SERVICES_KEY = web.AppKey("services", operations.Services)
JSON = rendering.JSON
MAX_BODY_BYTES = limits.HttpLimits.max_body_bytes
"""Larger request bodies are refused; the largest valid App Mesh spec is far smaller."""


def _convert_scalar(shape: Any, raw: str, member: str) -> Any:
    if shape.type_name in ("integer", "long"):
        try:
            return int(raw)
        except ValueError as exc:
            raise errors.BadRequestException(
                f"Invalid request: {member}: {raw!r} is not an integer"
            ) from exc
    return raw


def _input(operation: Any, request: web.Request, raw: bytes) -> dict[str, Any]:
    """The operation's input: URI and query members converted, body members parsed.

    Runs on a worker thread for writes: parsing a large body is the heavy part.
    """
    shape = operation.input_shape
    values: dict[str, Any] = {}
    body_members = []
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            values[name] = request.match_info[wire]
        elif location == "querystring":
            if wire in request.query:
                values[name] = _convert_scalar(member, request.query[wire], name)
        else:
            body_members.append(name)
    if raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            # RecursionError: nesting deeper than the parser's stack is malformed input too.
            raise errors.BadRequestException(f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise errors.BadRequestException("The request body must be a JSON object")
        for name, value in body.items():
            if name not in body_members:
                raise errors.BadRequestException(
                    f"Invalid request: {name}: unknown field for {operation.name} "
                    f"(allowed: {', '.join(body_members) or 'none'})"
                )
            values[name] = value
    return values


def _declares(operation: Any, error: type[errors.AppMeshError]) -> bool:
    """Whether the model lists ``error`` among the operation's errors."""
    return any(shape.name == error.code for shape in operation.error_shapes)


def _output(operation: Any, result: dict[str, Any]) -> Any:
    payload = operation.output_shape.serialization.get("payload")
    return result[payload] if payload else result


def _handler(
    operation: Any, call: operations.Handler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    tag_limit_error = _declares(operation, errors.TooManyTagsException)

    def work(request: web.Request, raw: bytes) -> str:
        values = _input(operation, request, raw)
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
                text = await request.app[offloading.OFFLOAD_KEY].write(work, request, raw)
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
    """A middleware answering every write with ``BadRequestException(message)``."""

    @web.middleware
    async def refuse_writes(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method in {"GET", "HEAD", "OPTIONS"}:
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
    extensions.add_routes(app, SERVICES_KEY, proxies)
    if front_door is not None:
        manifests.add_routes(app, front_door)
    if gate is not None and gate.principals is not None:
        credentials.add_routes(app, gate.principals)
    for mount in mounts:
        mount(app)
    app.router.add_route("*", "/{tail:.*}", _unknown, name=metering.UNKNOWN)
    return app
