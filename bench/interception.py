"""Interception overhead: iptables + two intercepted Envoys vs. the direct call, side by side.

Network namespaces on a bridge that lives in a namespace of its own (root only;
no address is added to the host's namespace, no traffic leaves the namespaces made
here), as the data-path tests build them:

* **direct**: a client in the frontend pod, as uid 1337 (which proxy-init exempts),
  → a plain pod (no rules, no Envoy) running echo-backend on its pod IP;
* **intercepted**: a client in the frontend pod, as root, → ``http://vs-echo-backend:80``
  (a virtual IP in its hosts file) → nat OUTPUT redirect → the frontend's Envoy
  ``lds_egress_0.0.0.0_15001`` → the blue pod's IP → nat PREROUTING redirect → the
  blue Envoy's ``lds_ingress_0.0.0.0_15000`` → echo-backend on 127.0.0.1.

The same two paths for TCP: a line echo on port 7000, direct to the plain pod's, or to
``echo-tcp.demos.svc.cluster.local:7000`` (a virtual IP) → the frontend's Envoy (its
``tcp_7000`` chain) → the tcp pod's IP → its Envoy's ingress → the echo on 127.0.0.1.

Each round sends sequential requests (HTTP) or line round trips (TCP) on one connection per
path; the rounds interleave the paths; the table shows the median over rounds of p50 and p99.

Run (as root): ``python -m bench.interception [--rounds 5] [--requests 500]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from meshplane import envoy
from meshplane.testing import ControlPlane

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "echo"
MANIFESTS = (
    "namespace.yaml",
    "demos-mesh.yaml",
    "vn-echo-backend-blue.yaml",
    "vn-echo-backend-green.yaml",
    "vn-echo-frontend-blue.yaml",
    "vr-echo-backend.yaml",
    "vs-echo-backend.yaml",
)
SUBNET = "10.215"
VIRTUAL_IP = f"{SUBNET}.255.80"
TCP_VIRTUAL_IP = f"{SUBNET}.255.81"
TCP_PORT = 7000
TCP_SERVICE = "echo-tcp.demos.svc.cluster.local"
TCP_MANIFESTS = f"""
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {{name: vn-echo-tcp, namespace: demos}}
spec:
  awsName: vn-echo-tcp
  podSelector: {{matchLabels: {{app: echo-tcp}}}}
  listeners:
    - portMapping: {{port: {TCP_PORT}, protocol: tcp}}
  serviceDiscovery: {{dns: {{hostname: echo-tcp}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {{name: echo-tcp, namespace: demos}}
spec:
  awsName: {TCP_SERVICE}
  provider: {{virtualNode: {{virtualNodeRef: {{name: vn-echo-tcp}}}}}}
"""
TCP_ECHO = """
import socketserver, sys
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        while line := self.rfile.readline():
            self.wfile.write(line)
            self.wfile.flush()
server = socketserver.ThreadingTCPServer((sys.argv[1], int(sys.argv[2])), Echo)
server.serve_forever()
"""
TCP_CLIENT = """
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[4])
connection = socket.create_connection((host, port), timeout=20)
connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
lines = connection.makefile("rb")
took = []
for _ in range(count):
    start = time.perf_counter()
    connection.sendall(b"ping\\n")
    assert lines.readline() == b"ping\\n"
    took.append((time.perf_counter() - start) * 1000)
took.sort()
print(json.dumps({"p50": took[len(took) // 2], "p99": took[int(len(took) * 0.99) - 1]}))
"""
ENVOY_UID = "1337"
CLIENT = """
import http.client, json, sys, time
host, port, path_host, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
connection = http.client.HTTPConnection(host, port, timeout=20)
took = []
for _ in range(count):
    start = time.perf_counter()
    connection.request("GET", "/", headers={"Host": path_host})
    answer = connection.getresponse()
    answer.read()
    took.append((time.perf_counter() - start) * 1000)
    assert answer.status == 200, answer.status
took.sort()
print(json.dumps({"p50": took[len(took) // 2], "p99": took[int(len(took) * 0.99) - 1]}))
"""


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


class _Pods:
    """The namespaces of one run, all deleted on close."""

    def __init__(self) -> None:
        self.prefix = f"mpb{os.getpid() % 100000}"
        self.made: list[str] = []
        self.switch = self.namespace("sw")
        _run("ip", "netns", "exec", self.switch, "ip", "link", "add", "br0", "type", "bridge")
        _run("ip", "netns", "exec", self.switch, "ip", "link", "set", "br0", "up")

    def namespace(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        _run("ip", "netns", "add", name)
        self.made.append(name)
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        return name

    def pod(self, role: str) -> tuple[str, str]:
        """A namespace with eth0 on the bridge; returns it and its address."""
        name = self.namespace(role)
        index = len(self.made)
        address, peer = f"{SUBNET}.0.{index}", f"vb{index}"
        inside = ("ip", "netns", "exec", name)
        _run(*inside, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", peer)
        _run(*inside, "ip", "link", "set", peer, "netns", self.switch)
        _run("ip", "netns", "exec", self.switch, "ip", "link", "set", peer, "master", "br0", "up")
        _run(*inside, "ip", "addr", "add", f"{address}/16", "dev", "eth0")
        _run(*inside, "ip", "link", "set", "eth0", "up")
        etc = Path("/etc/netns") / name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
        return name, address

    def close(self) -> None:
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "delete", name], check=False)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def _relay(path: Path, port: int) -> socket.socket:
    """Envoy's xDS over a Unix socket (shared across namespaces) to the loopback ADS port."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    path.chmod(0o777)
    listener.listen(8)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", port))
            for pair in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=pump, args=pair, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


def _envoy(pod: str, node: str, xds: Path, plane: ControlPlane) -> list[str]:
    node_id = f"mesh/demos/virtualNode/{node}"
    config = envoy.bootstrap(
        node_id=node_id,
        cluster=node_id,
        credential=plane.proxy_credential(node_id),  # xDS streams are authenticated
        xds_host="127.0.0.1",
        xds_port=1,
        admin_address="127.0.0.1",
        admin_port=9901,
        metadata={"meshplane": {"interception": "iptables"}},
    )
    [cluster] = config["static_resources"]["clusters"]
    lb_endpoint: dict[str, Any] = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    lb_endpoint["endpoint"]["address"] = {"pipe": {"path": str(xds)}}
    as_envoy = ["setpriv", f"--reuid={ENVOY_UID}", f"--regid={ENVOY_UID}", "--clear-groups"]
    return ["ip", "netns", "exec", pod, *as_envoy, *envoy.command(config)]


def _app(pod: str, host: str) -> list[str]:
    return [
        "ip", "netns", "exec", pod, "env", "-i", f"HOST={host}", "PORT=80", "VERSION=1.0",
        sys.executable, str(EXAMPLE / "apps" / "echo_backend.py"),
    ]  # fmt: skip


def _tcp_app(pod: str, host: str) -> list[str]:
    return ["ip", "netns", "exec", pod, sys.executable, "-c", TCP_ECHO, host, str(TCP_PORT)]


def _tcp_connections(pod: str) -> int:
    """The downstream connections ``pod``'s Envoy's TCP proxies accepted (its admin stats)."""
    script = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9901/stats').read().decode())"
    text = _run("ip", "netns", "exec", pod, sys.executable, "-c", script)
    return sum(
        int(line.rsplit(":", 1)[1])
        for line in text.splitlines()
        if line.startswith("tcp.") and line.split(":", 1)[0].endswith(".downstream_cx_total")
    )


def _proxy_init(pod: str, ports: str = "80") -> None:
    env = [
        "APPMESH_START_ENABLED=1",
        f"APPMESH_APP_PORTS={ports}",
        f"APPMESH_IGNORE_UID={ENVOY_UID}",
    ]
    _run("ip", "netns", "exec", pod, "env", "-i", f"PATH={os.environ['PATH']}", *env,
         sys.executable, "-m", "meshplane.cli.main", "proxy-init")  # fmt: skip


def _measure(pod: str, uid: str | None, target: tuple[str, str], count: int) -> dict[str, float]:
    """One round: ``count`` sequential requests from inside ``pod``; p50 and p99 in ms.

    A ``host_header`` of ``tcp`` means line round trips on port 7000 instead of HTTP on 80.
    """
    as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if uid else []
    host, host_header = target
    tcp = host_header == "tcp"
    script, port = (TCP_CLIENT, str(TCP_PORT)) if tcp else (CLIENT, "80")
    argv = ["ip", "netns", "exec", pod, *as_user, sys.executable, "-c", script]
    result: dict[str, float] = json.loads(_run(*argv, host, port, host_header, str(count)))
    return result


@contextlib.contextmanager
def _running(work: Path) -> Iterator[tuple[str, str, str]]:
    """The pods, sidecars and apps; yields (frontend pod, plain pod's address, tcp pod)."""
    pods = _Pods()
    started: list[subprocess.Popen[bytes]] = []
    sockets = Path(tempfile.mkdtemp(prefix="meshplane-bench-xds-"))
    sockets.chmod(0o755)
    try:
        frontend, _ = pods.pod("fe")
        blue, blue_ip = pods.pod("blue")
        plain, plain_ip = pods.pod("plain")
        tcp, tcp_ip = pods.pod("tcp")
        hosts = f"{VIRTUAL_IP} vs-echo-backend\n{blue_ip} echo-backend-blue echo-backend-green\n"
        hosts += f"{TCP_VIRTUAL_IP} {TCP_SERVICE}\n{tcp_ip} echo-tcp\n"
        (Path("/etc/netns") / frontend / "hosts").write_text("127.0.0.1 localhost\n" + hosts)
        _proxy_init(frontend)
        _proxy_init(blue)
        _proxy_init(tcp, str(TCP_PORT))
        manifests = work / "manifests"
        manifests.mkdir()
        for name in MANIFESTS:
            shutil.copy(EXAMPLE / name, manifests / name)
        # The frontend also calls the TCP echo's virtual service.
        frontend_node = manifests / "vn-echo-frontend-blue.yaml"
        backend = "          name: vs-echo-backend\n"
        text = frontend_node.read_text()
        assert text.count(backend) == 1, "the example's frontend backends moved"
        frontend_node.write_text(
            text.replace(backend, backend + "    - virtualService:\n        virtualServiceRef:\n"
                         "          name: echo-tcp\n")
        )  # fmt: skip
        (manifests / "tcp.yaml").write_text(TCP_MANIFESTS)
        with ControlPlane(work / "data") as plane:
            plane.apply(manifests)
            relay = _relay(sockets / "xds.sock", plane.xds_port)
            for argv in (
                _envoy(frontend, "vn-echo-frontend-blue", sockets / "xds.sock", plane),
                _envoy(blue, "vn-echo-backend-blue", sockets / "xds.sock", plane),
                _envoy(tcp, "vn-echo-tcp", sockets / "xds.sock", plane),
                _app(blue, "127.0.0.1"),
                _app(plain, "0.0.0.0"),  # reached on its pod IP
                _tcp_app(tcp, "127.0.0.1"),
                _tcp_app(plain, "0.0.0.0"),
            ):
                started.append(
                    subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
            client = plane.client()
            deadline = time.monotonic() + 90
            while not ((report := client.proxies()).converged and len(report.connected) == 3):
                if time.monotonic() > deadline:
                    states = [(p.get("nodeId"), p.get("status")) for p in report.proxies]
                    raise RuntimeError(f"the intercepted sidecars did not sync in 90 s: {states}")
                time.sleep(0.1)
            try:
                yield frontend, plain_ip, tcp
            finally:
                relay.close()
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=30)
        pods.close()
        shutil.rmtree(sockets, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Measure both paths in interleaved rounds and print the table (root only)."""
    parser = argparse.ArgumentParser(prog="python -m bench.interception")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("interception: skipped (needs root to create network namespaces)")
        return
    paths = {"direct": None, "intercepted": None, "tcp direct": None, "tcp intercepted": None}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    with tempfile.TemporaryDirectory() as work, _running(Path(work)) as (frontend, plain_ip, tcp):
        targets = {
            "direct": (plain_ip, plain_ip),
            "intercepted": ("vs-echo-backend", "vs-echo-backend"),
            "tcp direct": (plain_ip, "tcp"),
            "tcp intercepted": (TCP_SERVICE, "tcp"),
        }
        users = {"direct": ENVOY_UID, "intercepted": None}
        users.update({"tcp direct": ENVOY_UID, "tcp intercepted": None})
        for name in paths:  # warm-up: connections, DNS, first requests
            _measure(frontend, users[name], targets[name], 50)
        for _ in range(args.rounds):
            for name in paths:
                results[name].append(_measure(frontend, users[name], targets[name], args.requests))
        # Proof that the intercepted TCP rows crossed both Envoys: one connection per round
        # (and the warm-up) in each Envoy's TCP proxy counters, none for the direct rows.
        proxied = {pod: _tcp_connections(pod) for pod in (frontend, tcp)}
    if set(proxied.values()) != {args.rounds + 1}:
        raise RuntimeError(f"TCP connections proxied by the Envoys: {proxied}, "
                           f"expected {args.rounds + 1} each")  # fmt: skip
    print(f"interception overhead ({args.rounds} rounds x {args.requests} sequential requests,")
    print("one keep-alive connection; median over rounds)")
    print(f"{'path':<34}{'p50 ms':>10}{'p99 ms':>10}")
    medians = {
        name: (
            statistics.median(r["p50"] for r in rounds),
            statistics.median(r["p99"] for r in rounds),
        )
        for name, rounds in results.items()
    }
    labels = {
        "direct": "HTTP direct (pod IP, uid 1337)",
        "intercepted": "HTTP iptables + two Envoys",
        "tcp direct": "TCP direct (pod IP, uid 1337)",
        "tcp intercepted": "TCP iptables + two Envoys",
    }
    for name, (p50, p99) in medians.items():
        print(f"{labels[name]:<34}{p50:>10.3f}{p99:>10.3f}")
    print(f"TCP connections proxied (frontend's Envoy, backend's Envoy): "
          f"{proxied[frontend]}, {proxied[tcp]}")  # fmt: skip
    for protocol, prefix in (("HTTP", ""), ("TCP", "tcp ")):
        added = medians[f"{prefix}intercepted"][0] - medians[f"{prefix}direct"][0]
        print(f"added by interception ({protocol}), p50: {added:+.3f} ms")


if __name__ == "__main__":
    main()
