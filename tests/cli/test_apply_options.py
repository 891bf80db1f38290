"""`meshplane apply --dry-run`, `--strict` and `--wait`; `meshplane.testing` returns warnings."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from meshplane.cli.main import cli
from meshplane.envoy import resources
from meshplane.testing import ControlPlane, FakeAdsClient

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
NOWHERE = ["--server", "http://127.0.0.1:1"]
"""No server listens there: a dry run must not need one."""
FRONTEND = "mesh/demos/virtualNode/vn-echo-frontend-blue"
NOT_ACTIVE = (
    "virtualrouter/vr-echo-backend is not Active: VirtualNode demos/vn-echo-backend-blue not "
    "found; VirtualNode demos/vn-echo-backend-green not found"
)


def _router_alone(directory: Path) -> Path:
    """The namespace, the mesh and the router, without the nodes the router weights."""
    directory.mkdir()
    for name in ("namespace.yaml", "demos-mesh.yaml", "vr-echo-backend.yaml"):
        shutil.copy(ECHO / name, directory / name)
    return directory


def test_dry_run_validates_offline_and_strict_fails_on_a_warning(tmp_path: Path) -> None:
    """With no server: the walkthrough's files validate (every line marked); the router alone
    applies with its warning, and --strict turns that warning into exit 1."""
    runner = CliRunner()
    whole = runner.invoke(cli, ["apply", "--dry-run", "-f", str(ECHO), *NOWHERE])
    assert (whole.exit_code, whole.stderr) == (0, "")
    assert whole.stdout.splitlines() == [
        "mesh.appmesh.k8s.aws/demos created (dry run)",
        "namespace/demos created (dry run)",
        "virtualnode.appmesh.k8s.aws/vn-echo-backend-blue created (dry run)",
        "virtualnode.appmesh.k8s.aws/vn-echo-backend-green created (dry run)",
        "virtualnode.appmesh.k8s.aws/vn-echo-frontend-blue created (dry run)",
        "virtualrouter.appmesh.k8s.aws/vr-echo-backend created (dry run)",
        "service/vs-echo-backend created (dry run)",
        "virtualservice.appmesh.k8s.aws/vs-echo-backend created (dry run)",
    ]
    alone = _router_alone(tmp_path / "alone")
    lenient = runner.invoke(cli, ["apply", "--dry-run", "-f", str(alone), *NOWHERE])
    assert (lenient.exit_code, lenient.stderr) == (0, f"Warning: {NOT_ACTIVE}\n")
    strict = runner.invoke(cli, ["apply", "--dry-run", "--strict", "-f", str(alone), *NOWHERE])
    assert strict.exit_code == 1
    assert strict.stderr == f"Warning: {NOT_ACTIVE}\nerror: 1 warning(s) and --strict\n"
    refused = runner.invoke(
        cli, ["apply", "--dry-run", "-f", str(ECHO / "vr-echo-backend.yaml"), *NOWHERE]
    )
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: {ECHO / 'vr-echo-backend.yaml'} document 1: metadata.namespace: "
        'namespaces "demos" not found\n'
    )


def test_the_testing_helper_returns_the_warnings_apply_prints(tmp_path: Path) -> None:
    """ControlPlane.apply lines carry .warnings: one for the router alone, none for the rest."""
    with ControlPlane(tmp_path / "data") as plane:
        alone = plane.apply(_router_alone(tmp_path / "alone"))
        assert alone.warnings == [NOT_ACTIVE]
        assert alone[-1] == "virtualrouter.appmesh.k8s.aws/vr-echo-backend created"
        assert plane.apply(ECHO).warnings == []


def _weights(directory: Path, blue: int, green: int) -> Path:
    path = directory / "vr-echo-backend.yaml"
    weights = iter((blue, green))
    text = (ECHO / "vr-echo-backend.yaml").read_text()
    path.write_text(re.sub(r"weight: \d+", lambda _: f"weight: {next(weights)}", text))
    return path


def test_wait_returns_once_envoy_acked_and_fails_on_a_nack(tmp_path: Path) -> None:
    """A following Envoy: --wait prints that all 1 proxies ACKed the new revision (exit 0); one
    that rejects routes: --wait exits 1 with Envoy's message instead of waiting for --timeout."""
    runner = CliRunner()
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(ECHO)
        env = {
            "AWS_SHARED_CREDENTIALS_FILE": str(plane.credentials_file),
            "AWS_PROFILE": "meshplane",
        }
        server = ["--server", plane.endpoint]
        token = plane.proxy_credential(FRONTEND)

        async def run(reject: bool, blue: int) -> tuple[int, str, str]:
            async with FakeAdsClient(plane.xds_port, FRONTEND, credential=token) as envoy:
                rejects = (
                    (lambda r: "bad route" if r.type_url == resources.ROUTE else None)
                    if reject
                    else (lambda _: None)
                )
                following = asyncio.create_task(envoy.follow(rejects))
                await asyncio.to_thread(
                    plane.wait_for_state, FRONTEND, "NACKED" if reject else "SYNCED"
                )
                manifest = _weights(tmp_path, blue, 100 - blue)
                argv = ["apply", "-f", str(manifest), "--wait", "--timeout", "60", *server]
                done = await asyncio.to_thread(runner.invoke, cli, argv, env=env)
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            return done.exit_code, done.stdout, done.stderr

        code, out, err = asyncio.run(run(reject=False, blue=50))
        revision = plane.client().health().revision
        assert (code, err) == (0, "")
        assert out.splitlines() == [
            "virtualrouter.appmesh.k8s.aws/vr-echo-backend configured",
            f"revision {revision}: all 1 connected proxies ACKed it",
        ]
        code, out, err = asyncio.run(run(reject=True, blue=20))
    assert code == 1
    assert out == "virtualrouter.appmesh.k8s.aws/vr-echo-backend configured\n"
    assert err == f"error: {FRONTEND} NACKED RouteConfiguration: bad route\n"
