"""``meshplane up --isolation netns``: replicas in network namespaces behind proxy-init's rules.

The walkthrough runs as published, each replica in a namespace of its own with real iptables
rules and its Envoy (uid 1337) in App Mesh's intercepted layout; the frontend calls
``http://vs-echo-backend:80`` with no proxy setting. Weight shifts under two keep-alive clients
fail no request. A TCP backend is reached by name through interception, which process mode
(``HTTP_PROXY``) cannot do. The gateway example's VirtualGateways run in namespaces of their
own, with no rules, and the host reaches them at their published addresses.
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
from meshplane.runtime import isolation

from .harness import (
    Serve,
    Up,
    admin_env,
    apply_weights,
    descendants,
    free_port,
    running_in,
    session,
)
from .test_gateway_example import Session as GatewaySession
from .test_gateway_example import _get, _greet, _reachable
from .traffic import CONVERGE, DIRECT, Load, Plane, poll, sample

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


FRONT_APP = HERE.parents[1] / "examples" / "cloudmap" / "apps" / "front.py"
ECHO_APP = HERE.parents[1] / "examples" / "echo" / "apps" / "echo_backend.py"
LATE_MESH = """
apiVersion: v1
kind: Namespace
metadata: {name: late, labels: {mesh: late}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: late}
spec:
  namespaceSelector: {matchLabels: {mesh: late}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-echo, namespace: late}
spec:
  podSelector: {matchLabels: {app: echo}}
  listeners:
    - portMapping: {port: 8080, protocol: http}
  serviceDiscovery: {dns: {hostname: echo-pods}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: first, namespace: late}
spec:
  awsName: first.late.svc.cluster.local
  provider: {virtualNode: {virtualNodeRef: {name: vn-echo}}}
"""
FRONT_NODE = """
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-front, namespace: late}
spec:
  podSelector: {matchLabels: {app: front}}
  listeners:
    - portMapping: {port: 8080, protocol: http}
  serviceDiscovery: {dns: {hostname: front-pods}}
  backends:
"""
SECOND = """
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: vr-second, namespace: late}
spec:
  listeners:
    - portMapping: {port: 8080, protocol: http}
  routes:
    - name: to-echo
      httpRoute:
        match: {prefix: /}
        action:
          weightedTargets:
            - {virtualNodeRef: {name: vn-echo}, weight: 1}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: second, namespace: late}
spec:
  awsName: second.late.svc.cluster.local
  provider: {virtualRouter: {virtualRouterRef: {name: vr-second}}}
"""


def _front_node(*services: str) -> str:
    backends = "".join(
        f"    - virtualService: {{virtualServiceRef: {{name: {name}}}}}\n" for name in services
    )
    return FRONT_NODE + backends


def _late_example(directory: Path, port: int) -> None:
    """A front app calling ``http://<path>.late.svc.cluster.local:8080/`` and an echo node."""
    directory.mkdir()
    (directory / "mesh.yaml").write_text(LATE_MESH + "---" + _front_node("first"))
    workloads: list[dict[str, Any]] = [
        {
            "apiVersion": "meshplane.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": "echo", "namespace": "late", "labels": {"app": "echo"}},
            "spec": {
                "command": ["{python}", str(ECHO_APP)],
                "env": {"VERSION": "1.0"},
                "port": 8080,
            },
        },
        {
            "apiVersion": "meshplane.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": "front", "namespace": "late", "labels": {"app": "front"}},
            "spec": {
                "command": ["{python}", str(FRONT_APP)],
                "env": {"DOMAIN": "late.svc.cluster.local"},
                "port": 8080,
                "publish": f"127.0.0.1:{port}",
            },
        },
    ]
    (directory / "workloads.yaml").write_text(
        "\n---\n".join(json.dumps(workload) for workload in workloads) + "\n"
    )


def _front(port: int, service: str) -> tuple[int, dict[str, str]] | None:
    """The front app's (status, JSON) for ``GET /<service>``; None while nothing answers."""
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}/{service}", timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())
    except OSError:
        return None


def _meshplane(serve: Serve, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", *args, "--server", serve.url],
        env=admin_env(serve),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _hosts_names(pid: int) -> list[str]:
    """The virtual-service names in the hosts file of the namespace process ``pid`` runs in."""
    own = subprocess.run(
        ["ip", "netns", "identify", str(pid)], capture_output=True, text=True, check=True
    ).stdout.strip()
    lines = (isolation.NETNS_ETC / own / "hosts").read_text().splitlines()
    return sorted(line.split()[1] for line in lines if line.startswith(f"{isolation.SUBNET}.255."))


def test_a_virtual_service_applied_while_up_runs_is_reached_by_name(tmp_path: Path) -> None:
    """A VS + route applied after start gets a hosts entry in the running app's namespace."""
    skip_without_net_admin()
    directory, port = tmp_path / "late", free_port()
    _late_example(directory, port)
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

        def answered(service: str, status: int) -> dict[str, str] | None:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            found = _front(port, service)
            return found[1] if found is not None and found[0] == status else None

        assert poll(lambda: answered("first", 200), STARTUP, "first") == {"version": "1.0"}
        front = next(
            pid
            for pid in descendants(up.pid)
            if "front.py" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        )
        forms = ("", ".late", ".late.svc", ".late.svc.cluster.local")
        assert _hosts_names(front) == sorted(f"first{tail}" for tail in forms)
        unknown = answered("second", 502)
        assert unknown is not None
        assert unknown["error"].startswith("backend unreachable: "), unknown
        (directory / "second.yaml").write_text(SECOND + "---" + _front_node("first", "second"))
        _meshplane(serve, "apply", "-f", str(directory / "second.yaml"))
        # The running front app resolves the new name: its hosts file was rewritten in place.
        assert poll(lambda: answered("second", 200), CONVERGE, "second") == {"version": "1.0"}
        assert _hosts_names(front) == sorted(
            f"{name}{tail}" for name in ("first", "second") for tail in forms
        )
        (directory / "second-vs.yaml").write_text(SECOND.split("---")[1])
        _meshplane(serve, "delete", "-f", str(directory / "second-vs.yaml"))
        poll(
            lambda: _hosts_names(front) == sorted(f"first{tail}" for tail in forms),
            CONVERGE,
            "second's hosts entries to go",
        )
        gone = answered("second", 502)
        assert gone is not None
        assert gone["error"].startswith("backend unreachable: "), gone
        assert answered("first", 200) == {"version": "1.0"}
    finally:
        up.terminate()
        code = up.wait(timeout=60)
        serve.stop()
    assert code == 0, (tmp_path / "up.log").read_text()
    assert _namespaces_of(up.pid) == []
    assert running_in(directory) == set()


def _envoy_nodes(root: int) -> dict[str, int]:
    """Node id → process id of every Envoy below ``root`` (read from its bootstrap file)."""
    found = {}
    for pid in descendants(root):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if Path(argv[0]).name == "envoy" and "--config-path" in argv:
            bootstrap = json.loads(Path(argv[argv.index("--config-path") + 1]).read_text())
            found[str(bootstrap["node"]["id"])] = pid
    return found


def test_the_gateway_example_crosses_gateways_in_namespaces_of_their_own(tmp_path: Path) -> None:
    """Published gateways reach the backends over EDS; gateway Envoys: own namespace, no rules."""
    skip_without_net_admin()
    gateway = GatewaySession(tmp_path, "--isolation", "netns")
    try:
        poll(lambda: _reachable(gateway.gateway_port), STARTUP, "the published gateway")
        assert _get(gateway.gateway_port, "/color/x/y") == (
            200,
            {"color": "blue", "host": "color.shop.svc.cluster.local", "path": "/x/y"},
        )
        method = "/helloworld.Greeter/SayHello"
        assert poll(lambda: _greet(gateway.grpc_port, method), STARTUP, "the gRPC gateway") == (
            method.encode()
        )
        # color's app calls the greeter by name through interception (no proxy setting).
        assert _get(gateway.gateway_port, "/color/greet") == (200, {"greeting": method})
        envoys = _envoy_nodes(gateway.process.pid)
        assert sorted(envoys) == [
            "mesh/shop/virtualGateway/grpc-gw_shop-grpc",
            "mesh/shop/virtualGateway/ingress-gw_shop",
            "mesh/shop/virtualNode/color-blue_shop",
            "mesh/shop/virtualNode/greeter_shop-grpc",
        ]
        own = {}
        for node, pid in envoys.items():
            own[node] = subprocess.run(
                ["ip", "netns", "identify", str(pid)], capture_output=True, text=True, check=True
            ).stdout.strip()
            assert own[node].startswith(f"mpup{gateway.process.pid % 100000}-"), own
            rules = subprocess.run(
                ["ip", "netns", "exec", own[node], "iptables-save", "-t", "nat"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert ("--to-ports 15000" in rules) == ("virtualNode" in node), (node, rules)
        assert len(set(own.values())) == 4
    finally:
        code = gateway.stop()
    assert code == 0, gateway.output
    assert running_in(gateway.workdir) == set()
    assert _namespaces_of(gateway.process.pid) == []


ACCESS_LOG = """  serviceDiscovery: {dns: {hostname: echo-pods}}
  logging:
    accessLog:
      file:
        path: /dev/stdout
        format: {text: "MESHLOG %REQ(:METHOD)% %RESPONSE_CODE%\\n"}
"""


def test_an_access_log_to_dev_stdout_reaches_the_replicas_log(tmp_path: Path) -> None:
    """A node logging to /dev/stdout: its Envoy (uid 1337) opens it; each request is a line."""
    skip_without_net_admin()
    directory, port = tmp_path / "late", free_port()
    _late_example(directory, port)
    mesh = (directory / "mesh.yaml").read_text()
    plain = "  serviceDiscovery: {dns: {hostname: echo-pods}}\n"
    assert mesh.count(plain) == 1
    (directory / "mesh.yaml").write_text(mesh.replace(plain, ACCESS_LOG))
    serve = Serve(tmp_path).start()
    output = tmp_path / "up.log"
    with output.open("wb") as log:
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
            assert up.poll() is None, output.read_text()
            found = _front(port, "first")
            return found[1] if found is not None and found[0] == 200 else None

        assert poll(answered, STARTUP, "first") == {"version": "1.0"}

        def logged() -> list[str]:
            return [
                line
                for line in output.read_text(errors="replace").splitlines()
                if line.startswith("echo-0 envoy") and line.endswith("| MESHLOG GET 200")
            ]

        assert poll(logged, CONVERGE, "the access log line") != []
    finally:
        up.terminate()
        code = up.wait(timeout=60)
        serve.stop()
    text = output.read_text(errors="replace")
    assert code == 0, text
    assert "Permission denied" not in text
    assert _namespaces_of(up.pid) == []
