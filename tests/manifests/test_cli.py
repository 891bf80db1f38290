"""`meshplane apply/get/describe/delete/label` against a live server: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .live import EXAMPLES, Cli, Result, Server, appmesh, table

pytestmark = pytest.mark.integration


def test_errors_exit_1_with_kubectls_words(cli: Cli, tmp_path: Path) -> None:
    """Bad files, unknown kinds and missing objects exit 1 with one clear line each."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (EXAMPLES / "namespace.yaml").read_text()
        + "---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNod\nmetadata: {name: web}\n"
    )
    result = cli("apply", "-f", str(bad))
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith(f"error: {bad} document 2: kind: kind VirtualNod is not supported")
    assert cli("get", "ns").err == "No resources found.\n"  # the namespace was not applied
    assert cli("get", "deployments") == Result(
        1,
        "",
        'Error from server (NotFound): the server doesn\'t have a resource type "deployments"\n',
    )
    assert cli("get", "vn", "nope", "-n", "demos").err == (
        'Error from server (NotFound): virtualnodes.appmesh.k8s.aws "nope" not found\n'
    )
    assert cli("apply", "-f", str(tmp_path / "absent.yaml")).err == (
        f'error: the path "{tmp_path / "absent.yaml"}" does not exist\n'
    )
    assert cli("get", "vn", "-o", "table").code == 1


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    """With no server listening, commands exit 1 and say how to point them at one."""
    dead = Server(tmp_path)
    dead.port = 1  # nothing listens on port 1 on loopback
    result = Cli(dead, tmp_path)("get", "mesh")
    assert result.code == 1
    assert result.err.startswith(f"error: cannot reach the meshplane control plane at {dead.url}: ")
    assert result.err.endswith("(is `meshplane serve` running? set --server or MESHPLANE_SERVER)\n")


def test_stdin_directory_json_and_delete(cli: Cli, server: Server) -> None:
    """`-f -`, `-f DIR`, `-o json` and `delete -f` / `delete KIND NAME` work as in kubectl."""
    setup = (
        (EXAMPLES / "namespace.yaml").read_text()
        + "---\n"
        + (EXAMPLES / "demos-mesh.yaml").read_text()
    )
    result = cli("apply", "-f", "-", stdin=setup)
    assert result.out.splitlines() == [
        "namespace/demos created",
        "mesh.appmesh.k8s.aws/demos created",
    ]
    assert cli.ok("label", "namespace", "demos", "mesh=demos") == "namespace/demos labeled\n"
    out = cli.ok("apply", "-n", "demos", "-f", str(EXAMPLES))
    assert "virtualrouter.appmesh.k8s.aws/vr-echo-backend created" in out.splitlines()
    assert "namespace/demos unchanged" in out.splitlines()
    listing = json.loads(cli.ok("get", "vs", "-n", "demos", "-o", "json"))
    assert listing["kind"] == "List"
    (item,) = listing["items"]
    assert item["status"]["conditions"][0]["status"] == "True"
    assert item["spec"]["awsName"] == "vs-echo-backend.demos.svc.cluster.local"
    one = yaml.safe_load(cli.ok("get", "mesh", "demos", "-o", "yaml"))
    assert one["status"]["meshARN"] == "arn:aws:appmesh:us-west-2:123456789012:mesh/demos"

    result = cli("delete", "mesh", "demos")
    assert result.out == 'mesh.appmesh.k8s.aws "demos" deleted\n'
    assert result.err == (
        "Warning: mesh/demos waits: objects belonging to this mesh exist, delete them to "
        "proceed: virtualService: 1, virtualRouter: 1, virtualNode: 3\n"
    )
    assert [r["NAME"] for r in table(cli.ok("get", "meshes"))] == ["demos"]
    deleted = cli("delete", "-n", "demos", "-f", str(EXAMPLES / "vn-echo-frontend-blue.yaml"))
    assert deleted.out == 'virtualnode.appmesh.k8s.aws "vn-echo-frontend-blue" deleted\n'
    for kind, name in [
        ("vs", "vs-echo-backend"),
        ("vr", "vr-echo-backend"),
        ("vn", "vn-echo-backend-blue"),
        ("vn", "vn-echo-backend-green"),
    ]:
        assert cli("delete", kind, name, "-n", "demos").err == ""
    assert cli("get", "mesh").err == "No resources found.\n"
    assert appmesh(server).list_meshes()["meshes"] == []


MIXED = """\
# Source: colorapp/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: colorapp, namespace: demos}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: colorapp}
---
"""


def test_helm_template_stream_applies_app_mesh_kinds_and_skips_the_rest(
    cli: Cli, tmp_path: Path
) -> None:
    """`helm template … | meshplane apply -f -`: other kinds skipped one line each, exit 0."""
    setup = (EXAMPLES / "namespace.yaml").read_text() + "---\n"
    setup += (EXAMPLES / "demos-mesh.yaml").read_text()
    result = cli("apply", "-f", "-", stdin=MIXED + setup)
    assert result == Result(
        0,
        "deployment.apps/colorapp skipped: workloads are Kubernetes' business; in local mode "
        "use a Workload\n"
        "clusterrolebinding.rbac.authorization.k8s.io/colorapp skipped: access control is "
        "Kubernetes' business; meshplane's local mode needs none\n"
        "namespace/demos created\n"
        "mesh.appmesh.k8s.aws/demos created\n",
        "",
    )
    nested = tmp_path / "walkthrough" / "v1"
    nested.mkdir(parents=True)
    (nested / "app.yaml").write_text(MIXED)
    (tmp_path / "walkthrough" / "mesh.yaml").write_text(setup)
    top = str(tmp_path / "walkthrough")
    assert (
        cli("apply", "-f", top).out
        == "namespace/demos unchanged\nmesh.appmesh.k8s.aws/demos unchanged\n"
    )
    assert cli("apply", "-R", "-f", top).out.splitlines()[-2:] == [
        "namespace/demos unchanged",
        "mesh.appmesh.k8s.aws/demos unchanged",
    ]
    assert cli("apply", "-f", str(nested)).out.splitlines() == [
        "deployment.apps/colorapp skipped: workloads are Kubernetes' business; in local mode "
        "use a Workload",
        "clusterrolebinding.rbac.authorization.k8s.io/colorapp skipped: access control is "
        "Kubernetes' business; meshplane's local mode needs none",
    ]
    deleted = cli("delete", "-R", "-f", top)
    assert deleted == Result(
        0,
        "deployment.apps/colorapp skipped: workloads are Kubernetes' business; in local mode "
        "use a Workload\n"
        "clusterrolebinding.rbac.authorization.k8s.io/colorapp skipped: access control is "
        "Kubernetes' business; meshplane's local mode needs none\n"
        'mesh.appmesh.k8s.aws "demos" deleted\n'
        'namespace "demos" deleted\n',
        "",
    )
