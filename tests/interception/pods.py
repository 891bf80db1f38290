"""Test "pods" in network namespaces: a veth on a bridge, proxy-init's rules, Envoy as uid 1337.

What the injector's pod spec does on a node, done by hand for a test
(``k8s-mode.md`` §7, Tier 2):

- :class:`Network` — a bridge inside a namespace of its own, and a pod per
  namespace with one veth on it and a private address (only these
  namespaces ever see the addresses or the traffic);
- :func:`proxy_init` — ``meshplane proxy-init`` with the injector's env;
- :class:`UnixRelay` — the pods' way to the control plane: Envoy's xDS
  cluster is a Unix socket (the filesystem is shared across namespaces),
  relayed to the control plane's loopback xDS port, so no address is
  added to the host's namespace;
- :func:`envoy_command` — the sidecar's bootstrap with App Mesh's node id and
  ``meshplane.interception: iptables``, run as uid 1337 with ``setpriv``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshplane import envoy

from .namespaces import Namespace, Namespaces, run

ENVOY_UID = 1337
DEADLINE_S = 90.0
SUBNET_PREFIX = 16


class Network:
    """A bridge in its own namespace; each pod a namespace with ``eth0`` on it."""

    def __init__(self, namespaces: Namespaces, subnet: str) -> None:
        self._namespaces = namespaces
        self._subnet = subnet
        """The first two octets, e.g. ``10.213``: pods get ``<subnet>.0.<n>``."""
        self._switch = namespaces.make("sw")
        run(self._switch.exec(["ip", "link", "add", "br0", "type", "bridge"]))
        run(self._switch.exec(["ip", "link", "set", "br0", "up"]))
        self._count = 0

    def pod(self, role: str) -> tuple[Namespace, str]:
        """A new pod namespace wired to the bridge; returns it and its address."""
        self._count += 1
        pod = self._namespaces.make(role)
        address = f"{self._subnet}.0.{self._count + 1}"
        port = f"vp{self._count}"
        run(pod.exec(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", port]))
        run(pod.exec(["ip", "link", "set", port, "netns", self._switch.name]))
        run(self._switch.exec(["ip", "link", "set", port, "master", "br0", "up"]))
        run(pod.exec(["ip", "addr", "add", f"{address}/{SUBNET_PREFIX}", "dev", "eth0"]))
        run(pod.exec(["ip", "link", "set", "eth0", "up"]))
        return pod, address


def proxy_init(pod: Namespace, app_ports: str) -> str:
    """Run ``meshplane proxy-init`` in ``pod`` with the env App Mesh's injector writes."""
    env = {
        "APPMESH_START_ENABLED": "1",
        "APPMESH_IGNORE_UID": str(ENVOY_UID),
        "APPMESH_ENVOY_INGRESS_PORT": "15000",
        "APPMESH_ENVOY_EGRESS_PORT": "15001",
        "APPMESH_APP_PORTS": app_ports,
        "APPMESH_EGRESS_IGNORED_IP": "169.254.169.254",
        "APPMESH_EGRESS_IGNORED_PORTS": "22",
    }
    argv = [sys.executable, "-m", "meshplane.cli.main", "proxy-init"]
    return run(pod.exec(argv, env)).stdout


def envoy_command(pod: Namespace, node_id: str, xds_socket: Path, credential: str) -> list[str]:
    """The sidecar: intercepted bootstrap, xDS over the relay's socket, run as uid 1337.

    ``credential`` is the node's proxy credential (``ControlPlane.proxy_credential``).
    """
    config = envoy.bootstrap(
        node_id=node_id,
        cluster=node_id,
        xds_host="127.0.0.1",
        xds_port=1,
        admin_address="127.0.0.1",
        admin_port=9901,
        metadata={"meshplane": {"interception": "iptables"}},
        credential=credential,
    )
    [xds] = config["static_resources"]["clusters"]
    endpoint: dict[str, Any] = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    endpoint["endpoint"]["address"] = {"pipe": {"path": str(xds_socket)}}
    as_envoy = ["setpriv", f"--reuid={ENVOY_UID}", f"--regid={ENVOY_UID}", "--clear-groups"]
    return pod.exec([*as_envoy, *envoy.command(config, log_level="warning")])


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a long-running process with its output in ``log``."""
    with log.open("ab") as sink:
        return subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)


class UnixRelay:
    """Accepts on a Unix socket and pipes each connection to ``127.0.0.1:<port>``."""

    def __init__(self, path: Path, port: int) -> None:
        self.path = path
        self._port = port
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        os.chmod(path, 0o777)  # Envoy runs as uid 1337
        self._listener.listen(16)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="xds-relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self._port))
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._open += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        """Stop accepting and cut every relayed connection."""
        self._listener.close()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._open.clear()


def pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes one way until either side closes."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def poll(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition()`` until true, or fail after :data:`DEADLINE_S`."""
    end = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {DEADLINE_S}s waiting for {what}")
        time.sleep(0.1)  # polling a condition, not standing in for one
