"""`meshplane analyze` without -f: the same rules over a running server's meshes, signed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from meshplane.cli import liveanalysis
from meshplane.cli.main import cli
from meshplane.testing import ControlPlane

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"


def _analyze(plane: ControlPlane, *args: str) -> tuple[int, str, str]:
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(plane.credentials_file), "AWS_PROFILE": "meshplane"}
    done = CliRunner().invoke(cli, ["analyze", "--server", plane.endpoint, *args], env=env)
    return done.exit_code, done.stdout, done.stderr


def test_a_healthy_mesh_has_no_findings_and_exits_0(tmp_path: Path) -> None:
    """The walkthrough as applied: nothing to say, exit 0."""
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(ECHO)
        assert _analyze(plane) == (0, "", "0 error(s), 0 warning(s)\n")


def test_changes_made_through_the_api_are_found_and_exit_1(tmp_path: Path) -> None:
    """Zero weights and a shadowing route set with boto3, and a node whose backend does not
    exist: three errors in the offline rules' words (plus -o json), exit 1."""
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(ECHO)
        appmesh = plane.appmesh()
        where = {"meshName": "demos", "virtualRouterName": "vr-echo-backend"}
        targets = [
            {"virtualNode": "vn-echo-backend-blue", "weight": 0},
            {"virtualNode": "vn-echo-backend-green", "weight": 0},
        ]
        appmesh.update_route(
            **where,
            routeName="vrr-echo-backend",
            spec={"httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": targets}}},
        )
        appmesh.create_route(
            **where,
            routeName="shadow",
            spec={
                "httpRoute": {
                    "match": {"prefix": "/"},
                    "action": {"weightedTargets": [{**targets[0], "weight": 1}]},
                }
            },
        )
        appmesh.create_virtual_node(
            meshName="demos",
            virtualNodeName="lonely",
            spec={"backends": [{"virtualService": {"virtualServiceName": "nowhere.local"}}]},
        )
        code, out, err = _analyze(plane)
        assert (code, err) == (1, "3 error(s), 0 warning(s)\n")
        assert out.splitlines() == [
            "ERROR   route-shadowed   route/vr-echo-backend/vrr-echo-backend: matches exactly "
            "what route shadow matches (/) and neither has a priority: give them priorities or "
            "different matches",
            "ERROR   weights-zero     route/vr-echo-backend/vrr-echo-backend: every weighted "
            "target has weight 0: Envoy refuses a zero total, callers get 503",
            "ERROR   dangling-ref     virtualnode/lonely: its backend virtualService "
            "nowhere.local does not exist in mesh demos: calls through it fail",
        ]
        code, out, _ = _analyze(plane, "-o", "json")
        assert code == 1
        assert [(f["severity"], f["code"]) for f in json.loads(out)] == [
            ("error", "route-shadowed"),
            ("error", "weights-zero"),
            ("error", "dangling-ref"),
        ]


def test_a_manifest_object_that_is_not_active_is_an_error(tmp_path: Path) -> None:
    """A router applied without the nodes it weights: not-active with the condition's message."""
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("namespace.yaml", "demos-mesh.yaml", "vr-echo-backend.yaml"):
        shutil.copy(ECHO / name, alone / name)
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(alone)
        assert _analyze(plane, "--mesh", "demos") == (
            1,
            "ERROR   not-active       virtualrouter/vr-echo-backend: VirtualNode "
            "demos/vn-echo-backend-blue not found; VirtualNode demos/vn-echo-backend-green not "
            "found\n",
            "1 error(s), 0 warning(s)\n",
        )


def test_an_unknown_mesh_or_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    """--mesh that does not exist names the meshes there are; no server says what to do."""
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(ECHO)
        assert _analyze(plane, "--mesh", "nope") == (
            1,
            "",
            'error: mesh "nope" not found; meshes: demos\n',
        )
    done = CliRunner().invoke(cli, ["analyze", "--server", "http://127.0.0.1:1"])
    assert done.exit_code == 1
    assert done.stderr.startswith("error: cannot reach the meshplane control plane at ")
    assert done.stderr.endswith(
        "(is `meshplane serve` running? set --server or MESHPLANE_SERVER, or pass -f)\n"
    )


def test_nodes_nothing_announced_itself_as_are_unselected_once_something_in_the_mesh_did(
    tmp_path: Path,
) -> None:
    """No announcement in demos: no unselected-node. Blue's replica registered (as `up` does):
    green and the frontend are unselected-node warnings, exit 0; blue is not."""
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(ECHO)
        assert _analyze(plane) == (0, "", "0 error(s), 0 warning(s)\n")
        mp = plane.client()
        blue = "mesh/demos/virtualNode/vn-echo-backend-blue"
        credential = mp.issue_proxy_credential(blue, "echo-backend-blue-0").token
        mp.call(
            "PUT",
            "/meshplane/v1/meshes/demos/virtualNodes/vn-echo-backend-blue/endpoints",
            {
                "source": "echo-backend-blue-0",
                "endpoints": [{"listenerPort": 80, "address": "127.0.0.1", "port": 8080}],
                "credential": credential,
            },
        )
        why = (
            "no Envoy has connected as it and no replica is registered for it, while 1 other "
            "node(s) of mesh demos run: no workload selects it, so it gets no endpoints and its "
            "callers get 503"
        )
        assert _analyze(plane) == (
            0,
            f"WARNING unselected-node  virtualnode/vn-echo-backend-green: {why}\n"
            f"WARNING unselected-node  virtualnode/vn-echo-frontend-blue: {why}\n",
            "0 error(s), 2 warning(s)\n",
        )


def test_a_node_counts_as_connected_in_every_node_id_form() -> None:
    """Short, ARN and shared-mesh node ids of the mesh count; gateways and other meshes do not."""
    proxies = [
        {"nodeId": "mesh/demos/virtualNode/blue"},
        {"nodeId": "arn:aws:appmesh:us-west-2:111122223333:mesh/demos/virtualNode/green"},
        {"nodeId": "mesh/demos@111122223333/virtualNode/front"},
        {"nodeId": "mesh/demos/virtualGateway/gw"},
        {"nodeId": "mesh/other/virtualNode/red"},
        {"nodeId": "not-a-node-id"},
    ]
    assert liveanalysis._connected(proxies, "demos") == {"blue", "green", "front"}
