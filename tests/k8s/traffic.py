"""The seed's traffic on the test cluster: injected pods run by the fake kubelet, then shifted.

Shared by the Kubernetes traffic tests and by ``k8s.measure_traffic``: the walkthrough's
manifests applied with kubectl, Services and Deployments for its three apps, each pod as the
injector admitted it run by :class:`~k8s.kubelet.Kubelet`, and the frontend Envoy's weights
read from its admin inside the pod.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from interception.namespaces import Namespaces

from . import cluster as k8s
from . import kubelet, replicas

ORDER = (
    "namespace.yaml",
    "demos-mesh.yaml",
    "vn-echo-backend-blue.yaml",
    "vn-echo-backend-green.yaml",
    "vr-echo-backend.yaml",
    "vs-echo-backend.yaml",
    "vs-echo-backend-service.yaml",
    "vn-echo-frontend-blue.yaml",
)
DEADLINE = 90.0
BACKEND_IMAGE = "registry.invalid/echo-backend:1"
FRONTEND_IMAGE = "registry.invalid/echo-frontend:1"
COUNTER = Path(__file__).resolve().parents[1] / "interception" / "count_versions.py"
FRONTEND_URL = "http://127.0.0.1:80/"
CLUSTER = "cds_egress_demos_vn-echo-backend-{}_http_80"
IMAGES = {
    BACKEND_IMAGE: [sys.executable, str(kubelet.APPS / "echo_backend.py")],
    FRONTEND_IMAGE: [sys.executable, str(kubelet.APPS / "echo_frontend.py")],
}


def service(name: str, ports: dict[str, int], selector: dict[str, str]) -> dict[str, Any]:
    """A ClusterIP Service in ``demos`` selecting ``selector`` (none: no EndpointSlices)."""
    spec: dict[str, Any] = {"ports": [{"name": key, "port": port} for key, port in ports.items()]}
    if selector:
        spec["selector"] = selector
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "demos"},
        "spec": spec,
    }


def deployment(
    app: str, image: str, env: dict[str, str], port: int, *, probe: bool = True
) -> dict[str, Any]:
    """One replica of ``image`` labelled ``app=<app>`` with ``env``, ready when ``port`` accepts."""
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "ports": [{"containerPort": port}],
    }
    if probe:
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "namespace": "demos"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [container]},
            },
        },
    }


def active(cluster: k8s.Cluster, resource: str) -> bool:
    """Whether every ``resource`` in ``demos`` has its ``<Kind>Active`` condition True."""
    items = cluster.kubectl_json("get", resource, "-n", "demos")["items"]
    for item in items:
        conditions = item.get("status", {}).get("conditions") or []
        if not any(c["type"].endswith("Active") and c["status"] == "True" for c in conditions):
            return False
    return bool(items)


def the_pod(cluster: k8s.Cluster, app: str) -> dict[str, Any]:
    """The one (injected) pod of Deployment ``app``, once it exists."""

    def found() -> list[Any]:
        items: list[Any] = cluster.kubectl_json("get", "pods", "-n", "demos", "-l", f"app={app}")[
            "items"
        ]
        return items

    (pod,) = k8s.poll(found, DEADLINE, f"the pod of {app}")
    names = [c["name"] for c in pod["spec"]["containers"]]
    inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
    assert (names, inits) == (["app", "envoy"], ["proxyinit"]), "the injector did not run"
    return dict(pod)


def weights(pod: kubelet.RunningPod) -> list[list[tuple[str, int]]]:
    """Every weighted_clusters list in the pod's Envoy config, read from its admin (:9901)."""
    status, body = pod.get(9901, "/config_dump")
    if status != 200:
        return []
    found: list[list[tuple[str, int]]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "weighted_clusters" in value:
                clusters = value["weighted_clusters"]["clusters"]
                found.append([(c["name"], int(c.get("weight", 0))) for c in clusters])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(body))
    return found


def split(blue: int, green: int) -> list[list[tuple[str, int]]]:
    """What :func:`weights` shows for the frontend with ``blue``/``green``."""
    return [[(CLUSTER.format("blue"), blue), (CLUSTER.format("green"), green)]]


def router(blue: int, green: int) -> str:
    """vr-echo-backend.yaml with the route's weights set to ``blue`` and ``green``."""
    [document] = replicas.documents("vr-echo-backend.yaml")
    targets = document["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"]
    targets[0]["weight"], targets[1]["weight"] = blue, green
    return yaml.safe_dump(document)


def tally(frontend: kubelet.RunningPod, count: int) -> dict[str, Any]:
    """``count`` requests to the frontend app from inside its pod; what answered."""
    argv = frontend.exec([sys.executable, str(COUNTER), FRONTEND_URL, str(count)], {})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


class Seed:
    """The walkthrough applied and its three pods running on the fake kubelet."""

    def __init__(
        self,
        cluster: k8s.Cluster,
        replica: replicas.Replica,
        namespaces: Namespaces,
        workdir: Path,
        subnet: str,
    ) -> None:
        self.cluster = cluster
        self.workdir = workdir
        for name in ORDER:
            cluster.kubectl("apply", "-f", str(replicas.EXAMPLE / name))
        for resource in ("virtualnodes", "virtualrouters", "virtualservices"):
            k8s.poll(lambda r=resource: active(cluster, r), DEADLINE, f"{resource} Active")
        cluster.kubectl(
            "label",
            "namespace",
            "demos",
            "appmesh.k8s.aws/sidecarInjectorWebhook=enabled",
            "--overwrite",
        )
        backend = {"HOST": "127.0.0.1", "PORT": "80"}
        cluster.apply(
            service("echo-backend-blue", {"http": 80}, {"app": "echo-backend-blue"}),
            service("echo-backend-green", {"http": 80}, {"app": "echo-backend-green"}),
            deployment("echo-backend-blue", BACKEND_IMAGE, {**backend, "VERSION": "1.0"}, 80),
            deployment("echo-backend-green", BACKEND_IMAGE, {**backend, "VERSION": "2.0"}, 80),
            deployment(
                "echo-frontend-blue",
                FRONTEND_IMAGE,
                {**backend, "BACKEND": "http://vs-echo-backend.demos.svc.cluster.local:80"},
                80,
            ),
        )
        self.kubelet = kubelet.Kubelet(
            cluster,
            namespaces,
            subnet,
            workdir,
            kubelet.Images(images=dict(IMAGES)),
            xds_port=replica.xds_port,
        )
        self.pods: dict[str, kubelet.RunningPod] = {}
        try:
            for color in ("blue", "green"):
                app = f"echo-backend-{color}"
                self.pods[color] = self.kubelet.run(the_pod(cluster, app))
            k8s.poll(self._backends_resolve, DEADLINE, "EndpointSlices of the two backends")
            self.frontend = self.kubelet.run(the_pod(cluster, "echo-frontend-blue"))
        except BaseException:
            self.kubelet.stop()
            raise

    def _backends_resolve(self) -> bool:
        names = self.kubelet.refresh_dns()
        return all(
            names.get(f"echo-backend-{color}.demos") == [self.pods[color].ip]
            for color in ("blue", "green")
        )

    def shift(self, blue: int, green: int) -> dict[str, Any]:
        """``kubectl apply`` of new weights under live traffic; what answered meanwhile.

        The load runs from before the apply until the frontend's Envoy shows the new weights.
        """
        stop = self.workdir / f"stop-{blue}-{green}.flag"
        argv = self.frontend.exec(
            [sys.executable, str(COUNTER), FRONTEND_URL, "--until", str(stop)], {}
        )
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as load:
            try:
                k8s.poll(stop.with_suffix(".started").exists, DEADLINE, "live traffic to start")
                self.cluster.kubectl("apply", "-f", "-", stdin=router(blue, green))
                k8s.poll(
                    lambda: weights(self.frontend) == split(blue, green),
                    DEADLINE,
                    f"the frontend Envoy to get {blue}/{green}",
                )
            finally:
                stop.touch()  # the load stops whatever happened, so a failure cannot hang here
            out, _ = load.communicate(timeout=120)
        report: dict[str, Any] = json.loads(out)
        return report

    def stop(self) -> None:
        """Stop every pod's processes."""
        self.kubelet.stop()


def listener_filters(pod: kubelet.RunningPod) -> dict[str, list[str]]:
    """The pod's Envoy's dynamic listeners: name → its listener filters' names."""
    status, body = pod.get(9901, "/config_dump?resource=dynamic_listeners")
    assert status == 200, body
    found: dict[str, list[str]] = {}
    for entry in json.loads(body)["configs"]:
        listener = entry["active_state"]["listener"]
        found[listener["name"]] = [f["name"] for f in listener.get("listener_filters") or []]
    return found
