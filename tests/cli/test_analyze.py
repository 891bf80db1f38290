"""`meshplane analyze -f PATH`: one finding per problem, exit 1 when any is an error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from meshplane.cli.main import cli

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
ROUTER = """apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: vr-extra, namespace: demos}
spec:
  listeners:
    - portMapping: {port: 80, protocol: http}
  routes:
ROUTES"""
ROUTE = """    - name: NAME
      httpRoute:
        match: MATCH
        action:
          weightedTargets:
            - virtualNodeRef: {name: vn-echo-backend-blue}
              weight: WEIGHT
"""
LONELY = """apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-lonely, namespace: demos}
spec:
  podSelector: {matchLabels: {app: nobody}}
  listeners:
    - portMapping: {port: 80, protocol: http}
  serviceDiscovery: {dns: {hostname: lonely.demos.svc.cluster.local}}
  backends:
    - virtualService: {virtualServiceRef: {name: vs-missing}}
"""


def _route(name: str, match: str, weight: int) -> str:
    return ROUTE.replace("NAME", name).replace("MATCH", match).replace("WEIGHT", str(weight))


def _mesh(directory: Path, *extra: str) -> Path:
    """The walkthrough (with its workloads.yaml) plus ``extra`` documents in one more file."""
    shutil.copytree(ECHO, directory, ignore=shutil.ignore_patterns("apps", "*.md"))
    if extra:
        (directory / "extra.yaml").write_text("---\n".join(extra), encoding="utf-8")
    return directory


def _analyze(path: Path) -> tuple[int, list[tuple[str, str, str]], str]:
    done = CliRunner().invoke(cli, ["analyze", "-f", str(path), "-o", "json"])
    found = [(f["severity"], f["code"], f["resource"]) for f in json.loads(done.stdout or "[]")]
    return done.exit_code, found, done.stdout


def test_the_walkthrough_has_no_findings(tmp_path: Path) -> None:
    """examples/echo: every node selected, no route problem: exit 0 and the count line."""
    done = CliRunner().invoke(cli, ["analyze", "-f", str(_mesh(tmp_path / "echo"))])
    assert (done.exit_code, done.stdout, done.stderr) == (0, "", "0 error(s), 0 warning(s)\n")


def test_each_problem_is_one_finding_and_errors_exit_1(tmp_path: Path) -> None:
    """Zero weights, an exact shadow and an overlap without priority, a dangling backend and
    a node no workload selects: each is reported once with its code."""
    routes = (
        _route("all", "{prefix: /}", 0)
        + _route("all-again", "{prefix: /}", 1)
        + _route("api", "{prefix: /api}", 1)
        + _route("ranked", "{prefix: /api}", 1).replace(
            "      httpRoute:", "      priority: 1\n      httpRoute:"
        )
    )
    path = _mesh(tmp_path / "mesh", ROUTER.replace("ROUTES", routes), LONELY)
    code, found, _ = _analyze(path)
    assert code == 1
    assert found == [
        ("error", "weights-zero", "route/vr-extra_demos/all"),
        ("error", "route-shadowed", "route/vr-extra_demos/all-again"),
        ("error", "not-active", "virtualnode/vn-lonely"),
        ("warning", "route-overlap", "route/vr-extra_demos/api"),
        ("warning", "route-overlap", "route/vr-extra_demos/api"),
        ("warning", "unselected-node", "virtualnode/vn-lonely"),
    ]


def test_a_regex_re2_refuses_is_an_error_naming_the_field(tmp_path: Path) -> None:
    """A header regex with a lookahead (RE2 has none): the server's refusal, exit 1."""
    match = '{prefix: /, headers: [{name: x-user, match: {regex: "(?=admin)"}}]}'
    path = _mesh(tmp_path / "mesh", ROUTER.replace("ROUTES", _route("re", match, 1)))
    code, found, output = _analyze(path)
    assert code == 1
    assert found == [("error", "refused", str(path))]
    (finding,) = json.loads(output)
    assert finding["message"] == (
        f"{path / 'extra.yaml'} document 1: App Mesh refuses the converted RouteSpec: "
        "spec.routes[0].httpRoute.match.headers[0].match.regex: '(?=admin)' is not a valid "
        "regular expression: RE2 refuses it (invalid perl operator: (?=)"
    )
