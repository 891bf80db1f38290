"""The walkthrough's blue-green shift through iptables interception, in network namespaces.

Three "pods" (frontend, blue, green), each a network namespace on a test
bridge with ``meshplane proxy-init``'s rules, a real Envoy running as uid 1337
bootstrapped with ``meshplane.interception: iptables`` against a control plane
this test starts, and the walkthrough's app. The frontend calls
``http://vs-echo-backend:80`` with no proxy settings: its ``/etc/hosts``
(``/etc/netns/<ns>/hosts``) maps the name to a virtual IP no host has, the
egress redirect hands the connection to Envoy's ``lds_egress_0.0.0.0_15001``,
whose route splits it over the DNS clusters of blue and green; their ingress
redirects land on ``lds_ingress_0.0.0.0_15000`` and reach the app on
127.0.0.1. Weights 100/0 → 50/50 → 0/100 move the traffic, with live
traffic across each shift and no failed request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshplane.testing import ControlPlane

from . import pods
from .namespaces import Namespace, Namespaces
from .pods import poll

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "echo"
MANIFESTS = (
    "namespace.yaml",
    "demos-mesh.yaml",
    "vn-echo-backend-blue.yaml",
    "vn-echo-backend-green.yaml",
    "vn-echo-frontend-blue.yaml",
    "vr-echo-backend.yaml",
    "vs-echo-backend.yaml",
)
SUBNET = "10.213"
VIRTUAL_IP = f"{SUBNET}.255.80"
"""What ``vs-echo-backend`` resolves to: no host has it; any non-loopback IP does (roadmap#65)."""
REQUESTS = 40
COUNTER = Path(__file__).with_name("count_versions.py")
FRONTEND_URL = "http://127.0.0.1:80/"


def weights(directory: Path, blue: int, green: int) -> Path:
    """vr-echo-backend.yaml with the route's two weights set to ``blue`` and ``green``."""
    manifest = directory / "vr-echo-backend.yaml"
    text = (EXAMPLE / "vr-echo-backend.yaml").read_text()
    assert (text.count("weight: 100"), text.count("weight: 0")) == (1, 1)
    text = text.replace("weight: 100", "weight: BLUE").replace("weight: 0", "weight: GREEN")
    manifest.write_text(text.replace("BLUE", str(blue)).replace("GREEN", str(green)))
    return manifest


def tally(frontend: Namespace, count: int) -> dict[str, Any]:
    """``count`` requests to the frontend app from inside its pod; what answered."""
    argv = frontend.exec([sys.executable, str(COUNTER), FRONTEND_URL, str(count)], {})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


class Walkthrough:
    """The three pods with their sidecars and apps, against one control plane."""

    def __init__(self, namespaces: Namespaces, workdir: Path, socket_dir: Path) -> None:
        network = pods.Network(namespaces, SUBNET)
        self.frontend, _ = network.pod("fe")
        self.blue, blue_ip = network.pod("blue")
        self.green, green_ip = network.pod("green")
        self.frontend.write_hosts(
            {
                "vs-echo-backend": VIRTUAL_IP,
                "echo-backend-blue": blue_ip,
                "echo-backend-green": green_ip,
            }
        )
        for pod in (self.frontend, self.blue, self.green):
            # No DNS server exists here: names come from the hosts file, lookups fail fast.
            pod.write_etc("resolv.conf", "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
        self.workdir = workdir
        self.socket_dir = socket_dir
        self.manifests = workdir / "manifests"
        self.manifests.mkdir()
        for name in MANIFESTS:
            shutil.copy(EXAMPLE / name, self.manifests / name)
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, plane: ControlPlane, relay: pods.UnixRelay) -> None:
        """Each pod's Envoy (uid 1337) and app; returns once all three sidecars are synced."""
        apps = EXAMPLE / "apps"
        for pod, node, app, env in (
            (self.blue, "vn-echo-backend-blue", "echo_backend.py", {"VERSION": "1.0"}),
            (self.green, "vn-echo-backend-green", "echo_backend.py", {"VERSION": "2.0"}),
            (
                self.frontend,
                "vn-echo-frontend-blue",
                "echo_frontend.py",
                {"BACKEND": "http://vs-echo-backend:80"},
            ),
        ):
            command = pods.envoy_command(
                pod,
                f"mesh/demos/virtualNode/{node}",
                relay.path,
                plane.proxy_credential(f"mesh/demos/virtualNode/{node}"),
            )
            self.started.append(pods.start(command, self.workdir / f"envoy-{node}.log"))
            app_env = {"HOST": "127.0.0.1", "PORT": "80", **env}
            app_argv = pod.exec([sys.executable, str(apps / app)], app_env)
            self.started.append(pods.start(app_argv, self.workdir / f"app-{node}.log"))
        client = plane.client()

        def synced() -> bool:
            assert all(p.poll() is None for p in self.started), "a sidecar or app exited"
            report = client.proxies()
            return len(report.connected) == 3 and report.converged

        poll(synced, "three intercepted sidecars to connect and sync")

    def shift(self, plane: ControlPlane, blue: int, green: int) -> dict[str, Any]:
        """Apply new weights with live traffic running; what answered while they took effect."""
        stop = self.workdir / f"stop-{blue}-{green}.flag"
        argv = self.frontend.exec(
            [sys.executable, str(COUNTER), FRONTEND_URL, "--until", str(stop)], {}
        )
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as load:
            try:
                poll(stop.with_suffix(".started").exists, "live traffic to start")
                plane.apply(weights(self.manifests, blue, green))
                client = plane.client()
                client.wait_for_revision(client.health().revision, timeout=60)
            finally:
                stop.touch()  # the load stops whatever happened, so a failure cannot hang here
            out, _ = load.communicate(timeout=120)
        report: dict[str, Any] = json.loads(out)
        return report

    def stop(self) -> None:
        """Stop every process this walkthrough started."""
        for process in self.started:
            process.terminate()
        for process in self.started:
            process.wait(timeout=30)


def test_weight_shift_moves_intercepted_traffic(
    namespaces: Namespaces, tmp_path: Path, socket_dir: Path
) -> None:
    """100/0 reaches only blue, 50/50 both, 0/100 only green, through iptables and two Envoys."""
    walk = Walkthrough(namespaces, tmp_path, socket_dir)
    for pod in (walk.blue, walk.green):
        assert "2 hooks added" in pods.proxy_init(pod, "80")
    relay: pods.UnixRelay | None = None
    try:
        with ControlPlane(tmp_path / "data") as plane:
            plane.apply(walk.manifests)
            relay = pods.UnixRelay(socket_dir / "xds.sock", plane.xds_port)
            walk.start(plane, relay)
            # Without the frontend's rules its call goes to the virtual IP, where nothing is.
            unintercepted = tally(walk.frontend, 1)
            assert unintercepted["failed"] == 1
            assert "backend unreachable" in unintercepted["errors"][0]

            assert "2 hooks added" in pods.proxy_init(walk.frontend, "80")
            poll(lambda: tally(walk.frontend, 1)["failed"] == 0, "the first intercepted call")
            assert tally(walk.frontend, REQUESTS) == {
                "versions": {"1.0": REQUESTS},
                "failed": 0,
                "errors": [],
            }

            during = walk.shift(plane, 50, 50)
            assert (during["failed"], during["errors"]) == (0, [])
            assert during["versions"]["1.0"] >= 1
            half = tally(walk.frontend, REQUESTS)
            assert (half["failed"], sorted(half["versions"])) == (0, ["1.0", "2.0"])
            assert sum(half["versions"].values()) == REQUESTS

            during = walk.shift(plane, 0, 100)
            assert (during["failed"], during["errors"]) == (0, [])
            assert sum(during["versions"].values()) >= 1
            assert tally(walk.frontend, REQUESTS) == {
                "versions": {"2.0": REQUESTS},
                "failed": 0,
                "errors": [],
            }
    finally:
        walk.stop()
        if relay is not None:
            relay.close()
