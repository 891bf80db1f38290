"""`helm template … | meshplane apply -f -`: a real helm render of a mixed chart applies as it is.

The chart (tests/k8s/charts/colorapp, written for this test in the walkthroughs' style) renders
RBAC, a ServiceAccount and a Deployment beside a Namespace, a Mesh and a VirtualNode; meshplane
applies the last three and skips the rest with one line each. Needs only the helm binary of
``make k8s-tools``, no cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import cluster as k8s

CHART = Path(__file__).parent / "charts" / "colorapp"
SKIPPED = [
    "serviceaccount/colorapp skipped: access control is Kubernetes' business; meshplane's local "
    "mode needs none",
    "clusterrole.rbac.authorization.k8s.io/colorapp-reader skipped: access control is "
    "Kubernetes' business; meshplane's local mode needs none",
    "clusterrolebinding.rbac.authorization.k8s.io/colorapp-reader skipped: access control is "
    "Kubernetes' business; meshplane's local mode needs none",
    "deployment.apps/colorapp-blue skipped: workloads are Kubernetes' business; in local mode "
    "use a Workload",
]


@pytest.fixture
def helm() -> Path:
    """The helm binary of ``make k8s-tools`` (skip without it, fail under ``make test-k8s``)."""
    binary = k8s.tools_dir() / "helm"
    if not os.access(binary, os.X_OK):
        reason = f"helm not in {binary.parent}: run `make k8s-tools`"
        if os.environ.get("MESHPLANE_K8S_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return bool(json.loads(answer.read())["status"] == "ok")
    except OSError:
        return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`meshplane serve` on free ports; its URL."""
    port = k8s.free_port()
    command = [sys.executable, "-m", "meshplane.cli.main", "serve", "--data-dir"]
    command += [
        str(tmp_path / "plane"),
        "--api-port",
        str(port),
        "--xds-port",
        str(k8s.free_port()),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        k8s.poll(lambda: process.poll() is None and _healthy(url), 60.0, "meshplane serve")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _piped(helm: Path, server: str, verb: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``helm template colorapp CHART | meshplane <verb> -f -``."""
    env = {**os.environ, "HOME": str(home)}  # helm's caches stay in the test's directory
    rendered = subprocess.run(
        [str(helm), "template", "colorapp", str(CHART)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    command = [sys.executable, "-m", "meshplane.cli.main", verb, "-s", server, "-f", "-"]
    # Signed as the administrator of the server's data dir (home/plane, see ``server``).
    signing = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    signing.update(
        AWS_SHARED_CREDENTIALS_FILE=str(home / "plane" / "credentials"), AWS_PROFILE="meshplane"
    )
    return subprocess.run(
        command,
        input=rendered,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=signing,
    )


def test_helm_template_output_applies_and_deletes_with_skip_lines(
    helm: Path, server: str, tmp_path: Path
) -> None:
    """Apply and delete both exit 0: App Mesh kinds handled, every other kind one skip line."""
    applied = _piped(helm, server, "apply", tmp_path)
    assert (applied.returncode, applied.stderr) == (0, "")
    assert applied.stdout.splitlines() == [
        *SKIPPED,
        "namespace/colors created",
        "mesh.appmesh.k8s.aws/colors created",
        "virtualnode.appmesh.k8s.aws/blue created",
    ]
    deleted = _piped(helm, server, "delete", tmp_path)
    assert (deleted.returncode, deleted.stderr) == (0, "")
    assert deleted.stdout.splitlines() == [
        *SKIPPED,
        'virtualnode.appmesh.k8s.aws "blue" deleted',
        'mesh.appmesh.k8s.aws "colors" deleted',
        'namespace "colors" deleted',
    ]
