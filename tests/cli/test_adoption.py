"""`apply` warns before adopting an object created through the App Mesh API; so does --dry-run."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from meshplane.cli.main import cli
from meshplane.testing import ControlPlane

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
MESH = (
    "mesh/demos: Mesh 'demos' was created through the App Mesh API; it is now managed by this "
    "manifest (changes made through the API will be overwritten)"
)
ROUTER = (
    "virtualrouter/vr-echo-backend: VirtualRouter 'vr-echo-backend' in mesh demos was created "
    "through the App Mesh API; it is now managed by this manifest (changes made through the "
    "API will be overwritten)"
)
ROUTES = (
    "virtualrouter/vr-echo-backend: its routes from-the-api were created through the App Mesh "
    "API and are not in this manifest: they are deleted"
)


def _create_through_the_api(plane: ControlPlane) -> None:
    """The mesh and the router (with a route of its own) made with boto3, as a script would."""
    appmesh = plane.appmesh()
    appmesh.create_mesh(meshName="demos")
    appmesh.create_virtual_router(
        meshName="demos",
        virtualRouterName="vr-echo-backend",
        spec={"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]},
    )
    appmesh.create_virtual_node(meshName="demos", virtualNodeName="target", spec={})
    appmesh.create_route(
        meshName="demos",
        virtualRouterName="vr-echo-backend",
        routeName="from-the-api",
        spec={
            "httpRoute": {
                "match": {"prefix": "/"},
                "action": {"weightedTargets": [{"virtualNode": "target", "weight": 1}]},
            }
        },
    )


def test_apply_warns_once_for_each_adopted_object_and_the_routes_it_drops(
    tmp_path: Path,
) -> None:
    """The walkthrough over an API-made mesh and router: one warning each (and one naming the
    router's extra route, which is deleted); objects the manifests created warn nothing; a
    second apply warns nothing: the manifests own them now."""
    with ControlPlane(tmp_path / "data") as plane:
        _create_through_the_api(plane)
        first = plane.apply(ECHO)
        assert first.warnings == [MESH, ROUTER, ROUTES]
        routes = plane.appmesh().list_routes(meshName="demos", virtualRouterName="vr-echo-backend")
        assert [r["routeName"] for r in routes["routes"]] == ["vrr-echo-backend"]
        assert plane.apply(ECHO).warnings == []


def test_dry_run_asks_the_server_and_changes_nothing(tmp_path: Path) -> None:
    """apply --dry-run against the server prints the same adoption warnings on stderr, the
    lines marked (dry run), and leaves the API-made route and the empty manifest store alone."""
    runner = CliRunner()
    with ControlPlane(tmp_path / "data") as plane:
        _create_through_the_api(plane)
        env = {
            "AWS_SHARED_CREDENTIALS_FILE": str(plane.credentials_file),
            "AWS_PROFILE": "meshplane",
        }
        argv = ["apply", "--dry-run", "-f", str(ECHO), "--server", plane.endpoint]
        done = runner.invoke(cli, argv, env=env)
        assert done.exit_code == 0, done.output
        assert done.stderr == "".join(f"Warning: {line}\n" for line in (MESH, ROUTER, ROUTES))
        assert "mesh.appmesh.k8s.aws/demos created (dry run)" in done.stdout.splitlines()
        routes = plane.appmesh().list_routes(meshName="demos", virtualRouterName="vr-echo-backend")
        assert [r["routeName"] for r in routes["routes"]] == ["from-the-api"]
        assert plane.client().call("GET", "/meshplane/v1/objects/mesh")["items"] == []


def test_dry_run_refused_by_the_server_says_so_as_a_warning(tmp_path: Path) -> None:
    """A caller the server does not know: the dry run still validates offline (exit 0) and
    says in one line that the adoption check was refused, naming the server."""
    runner = CliRunner()
    with ControlPlane(tmp_path / "data") as plane:
        stranger = tmp_path / "stranger"
        stranger.write_text(
            "[stranger]\naws_access_key_id = AKIASTRANGER0000000\n"
            "aws_secret_access_key = not-a-principal\n"
        )
        env = {"AWS_SHARED_CREDENTIALS_FILE": str(stranger), "AWS_PROFILE": "stranger"}
        argv = ["apply", "--dry-run", "-f", str(ECHO), "--server", plane.endpoint]
        done = runner.invoke(cli, argv, env=env)
    assert done.exit_code == 0, done.output
    assert done.stderr == (
        f"Warning: adoptions not checked against {plane.endpoint}: The security token included "
        "in the request is invalid: access key AKIASTRANGER0000000 is not known to this control "
        "plane (its administrator's profile is `meshplane` in the credentials file of its data "
        "dir)\n"
    )
