"""``meshplane up --isolation netns``: replicas in network namespaces behind proxy-init's rules.

The walkthrough runs as published, each replica in a namespace of its own with real iptables
rules and its Envoy (uid 1337) in App Mesh's intercepted layout; the frontend calls
``http://vs-echo-backend:80`` with no proxy setting. Weight shifts under two keep-alive clients
fail no request. A TCP backend is reached by name through interception, which process mode
(``HTTP_PROXY``) cannot do.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interception.namespaces import skip_without_net_admin

from .harness import Serve, Up, admin_env, apply_weights, free_port, running_in, session
from .traffic import DIRECT, Load, Plane, poll, sample

pytestmark = pytest.mark.integration

SHIFTS = ((50, 50), (0, 100), (50, 50), (100, 0))
PER_CONFIG = 100
STARTUP = 90.0
HERE = Path(__file__).resolve().parent
PROTOCOL_APPS = HERE.parent / "interception" / "protocol_apps.py"


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Up]]:
    """The walkthrough under ``up --isolation netns``, stopped with nothing left behind."""
    skip_without_net_admin()
    pids = []
    for serve, up in session(tmp_path_factory.mktemp("netns"), ("--isolation", "netns")):
        assert up.process is not None
        pids.append(up.process.pid)
        yield serve, up
    assert _namespaces_of(pids[0]) == []  # every namespace `up` made is gone


def _namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


def _namespaces_of(pid: int) -> list[str]:
    """The namespaces of the ``up`` with process id ``pid`` (``mpup<pid % 100000>-…``).

    Only its own: other sessions on the machine may make and delete theirs meanwhile.
    """
    return [name for name in _namespaces() if name.startswith(f"mpup{pid % 100000}-")]


def test_frontend_calls_the_backend_with_no_proxy_setting_in_its_own_namespace(
    walkthrough: tuple[Serve, Up],
) -> None:
    """Every replica runs in a namespace with proxy-init's rules; the app has no HTTP_PROXY."""
    serve, up = walkthrough
    Plane(serve.url, serve.data_dir).wait_converged()
    assert sample(up.port, 20) == {"1.0": 20}
    apps = [pid for pid, name in up.processes().items() if name != "envoy"]
    assert len(apps) == 3
    for pid in apps:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not [e for e in environ if e.lower().startswith(b"http_proxy=")]
        own = subprocess.run(
            ["ip", "netns", "identify", str(pid)], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert own.startswith("mpup"), own
        rules = subprocess.run(
            ["ip", "netns", "exec", own, "iptables-save", "-t", "nat"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "--to-ports 15000" in rules
        assert "--to-ports 15001" in rules
        assert "--uid-owner 1337" in rules


def test_weight_shifts_under_load_fail_no_request_through_interception(
    walkthrough: tuple[Serve, Up],
) -> None:
    """50/50, 0/100, 50/50, 100/0 under two keep-alive clients: zero failed requests."""
    serve, up = walkthrough
    plane = Plane(serve.url, serve.data_dir)
    load = Load(up.port)
    with load.running():
        load.wait_for_more(PER_CONFIG)
        for blue, green in SHIFTS:
            apply_weights(up.directory, serve, blue, green)
            plane.wait_converged()
            load.wait_for_more(PER_CONFIG)
            if (blue, green) == (0, 100):
                assert sample(up.port, 20) == {"2.0": 20}
    print(f"weight shifts under load (netns): {load.summary()}")
    assert dict(load.failures) == {}, load.summary()
    assert sorted(load.versions) == ["1.0", "2.0"]


def _tcp_example(directory: Path, port: int) -> None:
    """A TCP server node and a caller whose app dials it by its virtual-service name."""
    directory.mkdir()
    (directory / "mesh.yaml").write_text(
        textwrap.dedent(
            """
            apiVersion: v1
            kind: Namespace
            metadata: {name: tcp, labels: {mesh: tcp}}
            ---
            apiVersion: appmesh.k8s.aws/v1beta2
            kind: Mesh
            metadata: {name: tcp}
            spec:
              namespaceSelector: {matchLabels: {mesh: tcp}}
            ---
            apiVersion: appmesh.k8s.aws/v1beta2
            kind: VirtualNode
            metadata: {name: vn-db, namespace: tcp}
            spec:
              podSelector: {matchLabels: {app: db}}
              listeners:
                - portMapping: {port: 5432, protocol: tcp}
              serviceDiscovery: {dns: {hostname: db-pods}}
            ---
            apiVersion: appmesh.k8s.aws/v1beta2
            kind: VirtualService
            metadata: {name: db, namespace: tcp}
            spec:
              awsName: db.tcp.svc.cluster.local
              provider: {virtualNode: {virtualNodeRef: {name: vn-db}}}
            ---
            apiVersion: appmesh.k8s.aws/v1beta2
            kind: VirtualNode
            metadata: {name: vn-caller, namespace: tcp}
            spec:
              podSelector: {matchLabels: {app: caller}}
              listeners:
                - portMapping: {port: 8080, protocol: http}
              serviceDiscovery: {dns: {hostname: caller-pods}}
              backends:
                - virtualService: {virtualServiceRef: {name: db}}
            """
        )
    )
    workloads: list[dict[str, Any]] = [
        {
            "apiVersion": "meshplane.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": "db", "namespace": "tcp", "labels": {"app": "db"}},
            "spec": {"command": ["{python}", str(PROTOCOL_APPS), "serve", "db"], "port": 5432},
        },
        {
            "apiVersion": "meshplane.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": "caller", "namespace": "tcp", "labels": {"app": "caller"}},
            "spec": {
                "command": ["{python}", str(HERE / "tcp_caller.py")],
                "env": {"TARGET": "db.tcp.svc.cluster.local:5432"},
                "port": 8080,
                "publish": f"127.0.0.1:{port}",
            },
        },
    ]
    (directory / "workloads.yaml").write_text(
        "\n---\n".join(json.dumps(workload) for workload in workloads) + "\n"
    )


def _call(port: int) -> dict[str, str] | None:
    """The caller's JSON answer (a 502 too), or None while nothing answers."""
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}/", timeout=10) as answer:
            body = answer.read()
    except urllib.error.HTTPError as error:
        with error:
            body = error.read()
    except OSError:
        return None
    found: dict[str, str] = json.loads(body)
    return found


def test_a_tcp_backend_is_reached_by_name_through_interception(tmp_path: Path) -> None:
    """The caller's plain TCP connection to db.tcp.svc.cluster.local:5432 reaches the db app."""
    skip_without_net_admin()
    directory, port = tmp_path / "tcp", free_port()
    _tcp_example(directory, port)
    serve = Serve(tmp_path).start()
    with (tmp_path / "up.log").open("wb") as log:
        up = subprocess.Popen(
            [
                *(sys.executable, "-m", "meshplane.cli.main", "up", "-f", str(directory)),
                *("--server", serve.url, "--xds-port", str(serve.xds_port)),
                *("--isolation", "netns"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=admin_env(serve),
        )
    try:

        def answered() -> dict[str, str] | None:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            found = _call(port)
            # Until both sidecars are up, the caller's Envoy closes the connection unanswered.
            return found if found is not None and found.get("answer") else None

        assert poll(answered, STARTUP, "the caller to reach the db") == {"answer": "db:5432:ping\n"}
    finally:
        up.terminate()
        code = up.wait(timeout=60)
        serve.stop()
    assert code == 0, (tmp_path / "up.log").read_text()
    assert _namespaces_of(up.pid) == []  # every namespace `up` made is gone
    assert running_in(directory) == set()
