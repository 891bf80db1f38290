"""Both front doors refuse the same invalid specs, naming the same field.

Each case is one fault written twice: as a v1beta2 manifest spec and as the
App Mesh API spec it converts to. The manifest goes through the manifest
admission path (the CRD schema of :mod:`meshplane.manifests.crds`, then
:func:`meshplane.manifests.admission.admit`); the API spec goes through the
service path (:meth:`MeshService.create`, as the REST API calls it). Both must
refuse, and the field each names must be the same once the v1beta2 shape is
mapped onto the API's (a VirtualRouter's ``spec.routes[i]`` is a Route's
``spec``; a ``virtualServiceRef`` is a ``virtualServiceName``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from meshplane import app, settings
from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.manifests import admission, crds, schema, wording
from meshplane.manifests.objects import ManifestObject
from meshplane.model import errors, kinds, problems, rules
from meshplane.service.resources import MeshService

MESH, ROUTER, GATEWAY = "demos", "vr", "vg"


@dataclasses.dataclass(frozen=True)
class Case:
    """One fault as a manifest (kind, spec) and as an API (kind, spec), and the field both name."""

    id: str
    kind: str
    manifest: dict[str, Any]
    api_kind: kinds.Kind
    api: dict[str, Any]
    field: str
    """The field in the API's shape."""


def _listener(**extra: Any) -> dict[str, Any]:
    return {"portMapping": {"port": 80, "protocol": "http"}, **extra}


_DNS = {"dns": {"hostname": "h"}}
_CHECK = {
    "healthyThreshold": 2,
    "intervalMillis": 5000,
    "protocol": "http",
    "timeoutMillis": 2000,
    "unhealthyThreshold": 2,
}


def _route(body: dict[str, Any], route_type: str = "httpRoute") -> tuple[dict[str, Any], ...]:
    """A VirtualRouter manifest with one route, and the Route API spec it converts to."""
    manifest_targets = [{"virtualNodeRef": {"name": "vn"}, "weight": 1}]
    api_targets = [{"virtualNode": "vn", "weight": 1}]
    manifest_body = {"action": {"weightedTargets": manifest_targets}, **body}
    api_body = {"action": {"weightedTargets": api_targets}, **body}
    manifest = {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "routes": [{"name": "r", route_type: manifest_body}],
    }
    return manifest, {route_type: api_body}


def _http_route(match: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    return _route({"match": match})


def _gateway_route(match: dict[str, Any], **action: Any) -> tuple[dict[str, Any], ...]:
    """A GatewayRoute manifest with an HTTP route, and its API spec."""
    manifest_target = {"target": {"virtualService": {"virtualServiceRef": {"name": "vs"}}}}
    api_target = {"target": {"virtualService": {"virtualServiceName": "vs"}}}
    return (
        {"httpRoute": {"match": match, "action": {**manifest_target, **action}}},
        {"httpRoute": {"match": match, "action": {**api_target, **action}}},
    )


def _grpc_gateway_route(match: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    manifest_target = {"target": {"virtualService": {"virtualServiceRef": {"name": "vs"}}}}
    api_target = {"target": {"virtualService": {"virtualServiceName": "vs"}}}
    return (
        {"grpcRoute": {"match": match, "action": manifest_target}},
        {"grpcRoute": {"match": match, "action": api_target}},
    )


def _node(
    listeners: list[dict[str, Any]], discovery: Any = _DNS, backends: tuple[str, ...] = ()
) -> tuple[dict[str, Any], ...]:
    manifest: dict[str, Any] = {"listeners": listeners}
    api: dict[str, Any] = {"listeners": listeners}
    if discovery is not None:
        manifest["serviceDiscovery"] = api["serviceDiscovery"] = discovery
    if backends:
        manifest["backends"] = [
            {"virtualService": {"virtualServiceRef": {"name": b}}} for b in backends
        ]
        api["backends"] = [{"virtualService": {"virtualServiceName": b}} for b in backends]
    return manifest, api


def _broken_route(what: str) -> tuple[dict[str, Any], ...]:
    """A valid route with its one weight at 150 or its priority at 1001."""
    manifest, api = _route({"match": {"prefix": "/"}})
    if what == "weight":
        manifest["routes"][0]["httpRoute"]["action"]["weightedTargets"][0]["weight"] = 150
        api["httpRoute"]["action"]["weightedTargets"][0]["weight"] = 150
    else:
        manifest["routes"][0]["priority"] = api["priority"] = 1001
    return manifest, api


def _range(start: int, end: int) -> dict[str, Any]:
    return {"name": "x", "match": {"range": {"start": start, "end": end}}}


CASES = [
    Case(
        "node listener without service discovery",
        "VirtualNode",
        _node([_listener()], discovery=None)[0],
        kinds.VIRTUAL_NODE,
        _node([_listener()], discovery=None)[1],
        "spec.serviceDiscovery",
    ),
    Case(
        "node lists a backend twice",
        "VirtualNode",
        _node([], backends=("a", "a"))[0],
        kinds.VIRTUAL_NODE,
        _node([], backends=("a", "a"))[1],
        "spec.backends[1].virtualService.virtualServiceName",
    ),
    Case(
        "node listener with two connection pools",
        "VirtualNode",
        _node(
            [
                _listener(
                    connectionPool={"http": {"maxConnections": 1}, "tcp": {"maxConnections": 1}}
                )
            ]
        )[0],
        kinds.VIRTUAL_NODE,
        _node(
            [
                _listener(
                    connectionPool={"http": {"maxConnections": 1}, "tcp": {"maxConnections": 1}}
                )
            ]
        )[1],
        "spec.listeners[0].connectionPool",
    ),
    Case(
        "node health check interval below 5000",
        "VirtualNode",
        _node([_listener(healthCheck={**_CHECK, "intervalMillis": 100})])[0],
        kinds.VIRTUAL_NODE,
        _node([_listener(healthCheck={**_CHECK, "intervalMillis": 100})])[1],
        "spec.listeners[0].healthCheck.intervalMillis",
    ),
    Case(
        "node health check interval above 300000",
        "VirtualNode",
        _node([_listener(healthCheck={**_CHECK, "intervalMillis": 300001})])[0],
        kinds.VIRTUAL_NODE,
        _node([_listener(healthCheck={**_CHECK, "intervalMillis": 300001})])[1],
        "spec.listeners[0].healthCheck.intervalMillis",
    ),
    Case(
        "node health check timeout below 2000",
        "VirtualNode",
        _node([_listener(healthCheck={**_CHECK, "timeoutMillis": 1999})])[0],
        kinds.VIRTUAL_NODE,
        _node([_listener(healthCheck={**_CHECK, "timeoutMillis": 1999})])[1],
        "spec.listeners[0].healthCheck.timeoutMillis",
    ),
    Case(
        "node listener port 0",
        "VirtualNode",
        _node([{"portMapping": {"port": 0, "protocol": "http"}}])[0],
        kinds.VIRTUAL_NODE,
        _node([{"portMapping": {"port": 0, "protocol": "http"}}])[1],
        "spec.listeners[0].portMapping.port",
    ),
    Case(
        "node listener protocol unknown",
        "VirtualNode",
        _node([{"portMapping": {"port": 80, "protocol": "udp"}}])[0],
        kinds.VIRTUAL_NODE,
        _node([{"portMapping": {"port": 80, "protocol": "udp"}}])[1],
        "spec.listeners[0].portMapping.protocol",
    ),
    Case(
        "route sets prefix and path",
        "VirtualRouter",
        _http_route({"prefix": "/", "path": {"exact": "/a"}})[0],
        kinds.ROUTE,
        _http_route({"prefix": "/", "path": {"exact": "/a"}})[1],
        "spec.httpRoute.match",
    ),
    Case(
        "route sets neither prefix nor path",
        "VirtualRouter",
        _http_route({"method": "GET"})[0],
        kinds.ROUTE,
        _http_route({"method": "GET"})[1],
        "spec.httpRoute.match",
    ),
    Case(
        "route path sets exact and regex",
        "VirtualRouter",
        _http_route({"path": {"exact": "/a", "regex": "/a.*"}})[0],
        kinds.ROUTE,
        _http_route({"path": {"exact": "/a", "regex": "/a.*"}})[1],
        "spec.httpRoute.match.path",
    ),
    Case(
        "route path sets neither exact nor regex",
        "VirtualRouter",
        _http_route({"path": {}})[0],
        kinds.ROUTE,
        _http_route({"path": {}})[1],
        "spec.httpRoute.match.path",
    ),
    Case(
        "route has no route type",
        "VirtualRouter",
        {"listeners": [_listener()], "routes": [{"name": "r"}]},
        kinds.ROUTE,
        {},
        "spec",
    ),
    Case(
        "route weight above 100",
        "VirtualRouter",
        _broken_route("weight")[0],
        kinds.ROUTE,
        _broken_route("weight")[1],
        "spec.httpRoute.action.weightedTargets[0].weight",
    ),
    Case(
        "route priority above 1000",
        "VirtualRouter",
        _broken_route("priority")[0],
        kinds.ROUTE,
        _broken_route("priority")[1],
        "spec.priority",
    ),
    Case(
        "gateway route header range inverted",
        "GatewayRoute",
        _gateway_route({"prefix": "/", "headers": [_range(5, 5)]})[0],
        kinds.GATEWAY_ROUTE,
        _gateway_route({"prefix": "/", "headers": [_range(5, 5)]})[1],
        "spec.httpRoute.match.headers[0].match.range",
    ),
    Case(
        "gateway route header match with two methods",
        "GatewayRoute",
        _gateway_route(
            {"prefix": "/", "headers": [{"name": "x", "match": {"exact": "a", "prefix": "b"}}]}
        )[0],
        kinds.GATEWAY_ROUTE,
        _gateway_route(
            {"prefix": "/", "headers": [{"name": "x", "match": {"exact": "a", "prefix": "b"}}]}
        )[1],
        "spec.httpRoute.match.headers[0].match",
    ),
    Case(
        "gateway route header match with no method",
        "GatewayRoute",
        _gateway_route({"prefix": "/", "headers": [{"name": "x", "match": {}}]})[0],
        kinds.GATEWAY_ROUTE,
        _gateway_route({"prefix": "/", "headers": [{"name": "x", "match": {}}]})[1],
        "spec.httpRoute.match.headers[0].match",
    ),
    Case(
        "gateway route sets prefix and path",
        "GatewayRoute",
        _gateway_route({"prefix": "/", "path": {"exact": "/a"}})[0],
        kinds.GATEWAY_ROUTE,
        _gateway_route({"prefix": "/", "path": {"exact": "/a"}})[1],
        "spec.httpRoute.match",
    ),
    Case(
        "gateway route prefix without leading slash",
        "GatewayRoute",
        _gateway_route({"prefix": "api"})[0],
        kinds.GATEWAY_ROUTE,
        _gateway_route({"prefix": "api"})[1],
        "spec.httpRoute.match.prefix",
    ),
    Case(
        "gateway route hostname sets exact and suffix",
        "GatewayRoute",
        _gateway_route({"hostname": {"exact": "a.example", "suffix": "example"}})[0],
        kinds.GATEWAY_ROUTE,
        _gateway_route({"hostname": {"exact": "a.example", "suffix": "example"}})[1],
        "spec.httpRoute.match.hostname",
    ),
    Case(
        "gateway route path sets neither exact nor regex",
        "GatewayRoute",
        _gateway_route({"path": {}})[0],
        kinds.GATEWAY_ROUTE,
        _gateway_route({"path": {}})[1],
        "spec.httpRoute.match.path",
    ),
    Case(
        "gateway route prefix rewrite sets value and defaultPrefix",
        "GatewayRoute",
        _gateway_route(
            {"prefix": "/"}, rewrite={"prefix": {"value": "/x/", "defaultPrefix": "ENABLED"}}
        )[0],
        kinds.GATEWAY_ROUTE,
        _gateway_route(
            {"prefix": "/"}, rewrite={"prefix": {"value": "/x/", "defaultPrefix": "ENABLED"}}
        )[1],
        "spec.httpRoute.action.rewrite.prefix",
    ),
    Case(
        "gateway route grpc metadata match with two methods",
        "GatewayRoute",
        _grpc_gateway_route(
            {
                "serviceName": "s",
                "metadata": [{"name": "x", "match": {"exact": "a", "suffix": "b"}}],
            }
        )[0],
        kinds.GATEWAY_ROUTE,
        _grpc_gateway_route(
            {
                "serviceName": "s",
                "metadata": [{"name": "x", "match": {"exact": "a", "suffix": "b"}}],
            }
        )[1],
        "spec.grpcRoute.match.metadata[0].match",
    ),
    Case(
        "gateway route has no route type",
        "GatewayRoute",
        {},
        kinds.GATEWAY_ROUTE,
        {},
        "spec",
    ),
    Case(
        "gateway route priority above 1000",
        "GatewayRoute",
        {**_gateway_route({"prefix": "/"})[0], "priority": 1001},
        kinds.GATEWAY_ROUTE,
        {**_gateway_route({"prefix": "/"})[1], "priority": 1001},
        "spec.priority",
    ),
    Case(
        "service provider names a node and a router",
        "VirtualService",
        {
            "provider": {
                "virtualNode": {"virtualNodeRef": {"name": "vn"}},
                "virtualRouter": {"virtualRouterRef": {"name": "vr"}},
            }
        },
        kinds.VIRTUAL_SERVICE,
        {
            "provider": {
                "virtualNode": {"virtualNodeName": "vn"},
                "virtualRouter": {"virtualRouterName": "vr"},
            }
        },
        "spec.provider",
    ),
    Case(
        "gateway listener with two connection pools",
        "VirtualGateway",
        {
            "listeners": [
                _listener(
                    connectionPool={"http": {"maxConnections": 1}, "http2": {"maxRequests": 1}}
                )
            ]
        },
        kinds.VIRTUAL_GATEWAY,
        {
            "listeners": [
                _listener(
                    connectionPool={"http": {"maxConnections": 1}, "http2": {"maxRequests": 1}}
                )
            ]
        },
        "spec.listeners[0].connectionPool",
    ),
    Case(
        "gateway listener protocol tcp",
        "VirtualGateway",
        {"listeners": [{"portMapping": {"port": 80, "protocol": "tcp"}}]},
        kinds.VIRTUAL_GATEWAY,
        {"listeners": [{"portMapping": {"port": 80, "protocol": "tcp"}}]},
        "spec.listeners[0].portMapping.protocol",
    ),
]


def _api_field(manifest_path: str) -> str:
    """A v1beta2 field path in the API's shape (see the module docstring)."""
    path = re.sub(r"^spec\.routes\[0\](\.|$)", r"spec\1", manifest_path)
    return path.replace("virtualServiceRef", "virtualServiceName")


def _manifest_fields(case: Case) -> list[str]:
    """The fields the manifest admission path names for ``case`` (schema first, then webhook)."""
    found = [
        path for path, _ in schema.problems(crds.BY_KIND[case.kind].spec, case.manifest, "spec")
    ]
    namespace = "" if case.kind == "Mesh" else "demos"
    obj = ManifestObject(case.kind, namespace, "x", spec=dict(case.manifest))
    _, admitted = admission.admit(obj, None)
    return [_api_field(path) for path in found + [path for path, _ in admitted]]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> MeshService:
    data_dir: Path = tmp_path_factory.mktemp("agreement")
    plane = app.build(settings.load(environ={}, data_dir=data_dir), FakeClock(), counting_ids())
    resources = plane.services.resources
    resources.create(kinds.MESH, MESH, MESH, {})
    listener = {"portMapping": {"port": 80, "protocol": "http"}}
    resources.create(kinds.VIRTUAL_ROUTER, MESH, ROUTER, {"listeners": [listener]})
    resources.create(kinds.VIRTUAL_GATEWAY, MESH, GATEWAY, {"listeners": [listener]})
    return resources


def _api_fields(service: MeshService, case: Case) -> list[str]:
    """The fields the API service path names for ``case``: the paths in its message."""
    parent = {kinds.ROUTE.key: ROUTER, kinds.GATEWAY_ROUTE.key: GATEWAY}.get(case.api_kind.key, "")
    with pytest.raises(errors.BadRequestException) as refused:
        service.create(case.api_kind, MESH, "x", case.api, parent=parent)
    message = refused.value.message
    body = re.sub(r"^(Invalid request: |\d+ validation errors: )", "", message)
    return [line.split(": ", 1)[0] for line in body.split("; ")]


def test_agreement_covers_enough_cases() -> None:
    """The case count the issue's closing note reports: one fault per case, all distinct."""
    assert len({case.id for case in CASES}) == len(CASES) == 29


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_both_front_doors_refuse_naming_the_same_field(service: MeshService, case: Case) -> None:
    """The API service path and the manifest admission path both refuse, at the same field."""
    assert _manifest_fields(case) == [case.field]
    assert _api_fields(service, case) == [case.field]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_model_rules_find_the_fault_at_the_same_field(case: Case) -> None:
    """model.rules at the webhook's paths and at the API's agree where both report the fault.

    Where only one reports it, the other door's shape check does (botocore's unions, the
    CRD schema). Both may report it under different rules: two connection pools on an
    http listener break ``connection-pool-one`` and ``listener-protocol-member``.
    """
    obj = ManifestObject(case.kind, "demos", "x", spec=dict(case.manifest))
    webhook = [_api_field(problem.path) for problem in admission.check(obj)]
    api = [problem.path for problem in rules.check(case.api_kind.key, case.api)]
    assert set(webhook + api) <= {case.field}
    if webhook and api:
        assert webhook == api


def test_every_rule_without_api_wording_is_applied_by_the_webhook() -> None:
    """A rule the API does not word is the webhook's: it has webhook wording, and vice versa."""
    unworded = {rule.id for rule in problems.RULES.values() if rule.api is None}
    assert unworded <= set(wording.WEBHOOK)
    assert set(wording.WEBHOOK) <= set(problems.RULES)
