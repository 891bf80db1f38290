"""The one action table: every served route has a row; ARNs are the resources touched."""

from __future__ import annotations

from pathlib import Path

from meshplane import app, console, settings
from meshplane.api import server
from meshplane.auth import actions
from meshplane.kit.clock import FakeClock
from meshplane.model import apimodel, kinds

PREFIX = "arn:aws:appmesh:us-west-2:123456789012:"


def _target(
    path: dict[str, str], query: dict[str, str] | None = None, body: dict[str, str] | None = None
) -> actions.Target:
    return actions.Target("us-west-2", "123456789012", path, query or {}, body or {})


def _resource(operation: str, target: actions.Target) -> str:
    http = apimodel.operation(operation).http
    rule = actions.rule_for(http["method"], http["requestUri"])
    assert rule is not None
    assert rule.action == f"appmesh:{operation}"
    return rule.resource_of(target)


def test_every_route_the_application_serves_has_a_rule(tmp_path: Path) -> None:
    """No route is left to a default: the built application's routes are all in the table."""
    config = settings.load(environ={}, data_dir=tmp_path)
    plane = app.build(config, FakeClock())
    try:
        web_console = console.Console(console.load_credentials(tmp_path)[0])
        api = server.build_app(
            plane.services,
            plane.front_door,
            plane.views,
            gate=plane.gate(),
            metrics=plane.api_metrics,
            mounts=[lambda application: web_console.mount(application, plane)],
        )
        served = {
            ("GET" if r.method == "HEAD" else r.method, r.resource.canonical)
            for r in api.router.routes()
            if r.resource is not None
        }
    finally:
        plane.store.close()
    assert served == set(actions.RULES)


def test_the_38_operations_are_named_after_the_model() -> None:
    """Each App Mesh operation's action is appmesh:<OperationName> from botocore's model."""
    named = sorted(r.action for r in actions.RULES.values() if r.action.startswith("appmesh:"))
    assert len(named) == 38
    assert named == sorted(f"appmesh:{name}" for name in apimodel.operation_names())


def test_resources_are_the_arns_the_operations_touch() -> None:
    """Create names come from the body, lists get the parent's ARN, ListMeshes mesh/*."""
    assert _resource("CreateMesh", _target({}, body={"meshName": "demos"})) == PREFIX + "mesh/demos"
    assert _resource("ListMeshes", _target({})) == PREFIX + "mesh/*"
    route = {"meshName": "demos", "virtualRouterName": "vr", "routeName": "r"}
    assert (
        _resource("DescribeRoute", _target(route)) == PREFIX + "mesh/demos/virtualRouter/vr/route/r"
    )
    assert _resource("ListRoutes", _target(route)) == PREFIX + "mesh/demos/virtualRouter/vr"
    created = _resource(
        "CreateGatewayRoute",
        _target({"meshName": "demos", "virtualGatewayName": "gw"}, body={"gatewayRouteName": "g"}),
    )
    assert created == PREFIX + "mesh/demos/virtualGateway/gw/gatewayRoute/g"
    assert _resource("ListVirtualNodes", _target({"meshName": "demos"})) == PREFIX + "mesh/demos"


def test_only_creates_parse_the_body_before_the_handler() -> None:
    """The seven Creates and IssueProxyCredential name their resource in the body; no other."""
    parsing = sorted(r.action for r in actions.RULES.values() if r.needs_body)
    creates = [f"appmesh:Create{k.title}" for k in kinds.ALL]
    assert parsing == sorted([*creates, "meshplane:IssueProxyCredential"])


def test_a_proxy_credential_is_authorized_on_the_node_named_in_the_body() -> None:
    """IssueProxyCredential's resource is the App Mesh ARN of the body's nodeId."""
    (rule,) = [r for r in actions.RULES.values() if r.action == "meshplane:IssueProxyCredential"]
    node = _target({}, body={"nodeId": "mesh/demos/virtualNode/vn-a", "replica": "a-0"})
    assert rule.resource_of(node) == PREFIX + "mesh/demos/virtualNode/vn-a"
    assert rule.resource_of(actions.Target("us-west-2", "123456789012", {}, {}, {"nodeId": 7})) == (
        PREFIX
    )


def test_mesh_owner_and_foreign_arns_cannot_move_a_request_out_of_the_account() -> None:
    """meshOwner is ignored and a tagged ARN is re-issued in the served region and account."""
    owned = _target({"meshName": "demos"}, query={"meshOwner": "999999999999"})
    assert _resource("DescribeMesh", owned) == PREFIX + "mesh/demos"
    foreign = "arn:aws:appmesh:eu-west-1:999999999999:mesh/demos/virtualNode/a"
    tagged = _resource("TagResource", _target({}, query={"resourceArn": foreign}))
    assert tagged == PREFIX + "mesh/demos/virtualNode/a"
    assert _resource("ListTagsForResource", _target({}, query={"resourceArn": "junk"})) == "junk"


def test_extension_rows_fill_their_templates_from_the_path() -> None:
    """meshplane's own routes: the endpoint registration names its virtual node's ARN."""
    rule = actions.rule_for("PUT", "/meshplane/v1/meshes/{mesh}/virtualNodes/{node}/endpoints")
    assert rule is not None
    assert rule.action == "meshplane:RegisterEndpoints"
    found = rule.resource_of(_target({"mesh": "demos", "node": "vn-a"}))
    assert found == PREFIX + "mesh/demos/virtualNode/vn-a"
    assert actions.rule_for("HEAD", "/meshplane/v1/proxies") == actions.rule_for(
        "GET", "/meshplane/v1/proxies"
    )
    assert actions.rule_for("GET", "/nowhere") is None


def test_the_readme_documents_every_row() -> None:
    """Every action and every meshplane route of the table is in the README's auth section."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Authentication and authorization", 1)[1].split("\n## ", 1)[0]
    for rule in actions.RULES.values():
        if rule.action.startswith("appmesh:"):
            assert rule.action.removeprefix("appmesh:") in section, rule.action
        else:
            assert f"`{rule.method} {rule.path}`" in section, rule.path
            if ":" in rule.action:
                assert f"`{rule.action}`" in section, rule.action


def test_the_readme_documents_the_xds_stream_action() -> None:
    """The one action that is not a route, SigV4-signed ADS streams', is in the auth section."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Authentication and authorization", 1)[1].split("\n## ", 1)[0]
    assert actions.XDS_STREAM == "appmesh:StreamAggregatedResources"
    assert f"`{actions.XDS_STREAM}`" in section
