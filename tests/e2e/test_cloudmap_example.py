"""examples/cloudmap end to end: Cloud Map nodes told apart by attributes; real Envoys, traffic.

`meshplane up -f <copy of examples/cloudmap>` runs two blue replicas, one red and the front,
each with its sidecar. colorapp-blue and colorapp-red share the Cloud Map service colorapp
and differ by their `color` attribute; colorapp-all names the service with no attributes and
selects no workload. The test checks the registrations (labels as instance attributes), what
the front's Envoy was sent for each node, then traffic: the router's 100/0 reaches only blue
replicas, colorapp-all reaches all three, and after applying 0/100 only red answers.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshplane import client

from .harness import free_port, running_in
from .traffic import DIRECT, poll

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cloudmap"
MESH = "howto-k8s-cloudmap"
FRONT = f"mesh/{MESH}/virtualNode/front_{MESH}#front-0"
STARTUP = 90.0
"""Seconds the session gets to come up on a loaded 2-core box (generous on purpose)."""
CONVERGE = 30.0


def _cluster(node: str) -> str:
    return f"cds_egress_{MESH}_{node}_{MESH}_http_8080"


def _get(port: int, service: str) -> tuple[int, dict[str, str] | None]:
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}/{service}", timeout=20) as answer:
            return answer.status, dict(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        return error.code, None


class Session:
    """`meshplane up -f <copy of examples/cloudmap>` with the front on a free port."""

    def __init__(self, workdir: Path) -> None:
        """Copy the example, pick the ports, start `up`."""
        self.workdir = workdir / "cloudmap"
        shutil.copytree(EXAMPLE, self.workdir)
        self.front_port, self.api_port = free_port(), free_port()
        argv = [sys.executable, "-m", "meshplane.cli.main", "up", "-f", str(self.workdir)]
        argv += ["--api-port", str(self.api_port), "--xds-port", str(free_port())]
        argv += ["--data-dir", str(self.workdir / "data")]
        argv += ["--publish", f"front=127.0.0.1:{self.front_port}"]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.output = ""

    def plane(self) -> client.MeshplaneClient:
        """A signed client of the session's control plane."""
        signer = client.Signer.from_file(self.workdir / "data" / "credentials", "us-west-2")
        transport = client.Transport(
            f"http://127.0.0.1:{self.api_port}", trust_env=False, signer=signer
        )
        return client.MeshplaneClient(transport)

    def stop(self) -> int:
        """SIGTERM, collect the output; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.output, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, _ = self.process.communicate()
        return self.process.returncode


def _registered(session: Session) -> dict[str, list[client.Endpoint]] | None:
    """The mesh's registrations once all three colorapp replicas and the front registered."""
    try:
        found = session.plane().endpoints(MESH)
    except (client.ControlPlaneError, OSError, KeyError):  # not up, or its credentials not yet
        return None
    counts = {node: len(items) for node, items in found.items()}
    wanted = {f"colorapp-blue_{MESH}": 2, f"colorapp-red_{MESH}": 1, f"front_{MESH}": 1}
    return found if counts == wanted else None


def _answers(port: int, service: str, count: int) -> list[tuple[str, str]]:
    """``count`` calls through the front: (color, replica) per answer; every one must be 200."""
    found = []
    for _ in range(count):
        status, body = _get(port, service)
        assert status == 200, body
        assert body is not None
        found.append((body["color"], body["hostname"]))
    return found


@pytest.fixture(scope="module")
def cloudmap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """The example running; stopped (and checked to leave nothing) after the module."""
    session = Session(tmp_path_factory.mktemp("cloudmap-example"))
    try:
        poll(lambda: _registered(session), STARTUP, "every replica to register")

        def reachable() -> bool:
            try:
                return _get(session.front_port, "colorapp")[0] == 200
            except OSError:
                return False

        poll(reachable, STARTUP, "the published front to reach colorapp")
        yield session
    finally:
        code = session.stop()
    assert code == 0, session.output
    assert running_in(session.workdir) == set()


def test_replicas_register_with_their_labels_as_instance_attributes(cloudmap: Session) -> None:
    """Each colorapp replica's endpoint carries its workload's labels, namespace and pod name."""
    found = cloudmap.plane().endpoints(MESH)
    attributes = sorted(
        (
            dict(endpoint.attributes)
            for node in ("colorapp-blue", "colorapp-red")
            for endpoint in found[f"{node}_{MESH}"]
        ),
        key=lambda item: item["k8s.io/pod"],
    )
    assert attributes == [
        {"app": "colorapp", "color": color, "k8s.io/namespace": MESH, "k8s.io/pod": pod}
        for color, pod in (
            ("blue", "colorapp-blue-0"),
            ("blue", "colorapp-blue-1"),
            ("red", "colorapp-red-0"),
        )
    ]


def test_each_cloud_map_node_gets_only_the_instances_its_attributes_match(
    cloudmap: Session,
) -> None:
    """The front's Envoy has blue's two replicas for blue, red's one for red, all three for all."""
    plane = cloudmap.plane()
    found = plane.endpoints(MESH)

    def addresses(node: str) -> list[str]:
        return sorted(f"{e.address}:{e.port}" for e in found[f"{node}_{MESH}"])

    blue, red = addresses("colorapp-blue"), addresses("colorapp-red")
    sent = {
        item["cluster"]: sorted(item["addresses"])
        for item in plane.proxy_config(FRONT)["endpoints"]
    }
    assert sent == {
        _cluster("colorapp-all"): sorted(blue + red),
        _cluster("colorapp-blue"): blue,
        _cluster("colorapp-red"): red,
    }


def test_traffic_follows_the_attributes_and_the_weight_shift(cloudmap: Session) -> None:
    """100/0 reaches both blue replicas only; colorapp-all reaches all three; 0/100 only red."""
    blue = _answers(cloudmap.front_port, "colorapp", 12)
    assert {color for color, _ in blue} == {"blue"}
    assert {replica for _, replica in blue} == {"colorapp-blue-0", "colorapp-blue-1"}

    seen: set[tuple[str, str]] = set()

    def all_three() -> bool:
        seen.update(_answers(cloudmap.front_port, "colorapp-all", 3))
        return len(seen) == 3

    poll(all_three, CONVERGE, "colorapp-all to reach every replica")
    assert seen == {
        ("blue", "colorapp-blue-0"),
        ("blue", "colorapp-blue-1"),
        ("red", "colorapp-red-0"),
    }

    text = (cloudmap.workdir / "colorapp.yaml").read_text()
    shifted = text.replace("weight: 100", "weight: TMP").replace("weight: 0", "weight: 100")
    shifted = shifted.replace("weight: TMP", "weight: 0")
    plane = cloudmap.plane()
    answer = plane.apply([client.Source("colorapp.yaml", shifted)], None)
    assert "virtualrouter.appmesh.k8s.aws/colorapp configured" in [
        result["line"] for result in answer["results"]
    ]
    plane.wait_for_revision(plane.health().revision, CONVERGE)
    # Envoy's worker takes the new routes just after the ACK: wait for the first red answer,
    # then every answer must be red.
    poll(lambda: _answers(cloudmap.front_port, "colorapp", 1)[0][0] == "red", CONVERGE, "red")
    assert set(_answers(cloudmap.front_port, "colorapp", 12)) == {("red", "colorapp-red-0")}
