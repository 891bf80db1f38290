"""``meshplane k8s`` replicas for the Kubernetes tests: real processes against the real API server.

* :func:`install_crds` — the seven appmesh.k8s.aws/v1beta2 CRDs (the chart's when it has them);
* :class:`Replica` — one ``meshplane k8s --kubeconfig`` subprocess on free loopback ports;
* :func:`aws` — the real ``aws appmesh`` CLI against a replica's read-only API;
* :class:`Envoy` — a real Envoy that dials a replica's xDS as a given node, for its config dump.

Every wait polls a condition with a deadline; nothing sleeps in place of synchronisation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from meshplane.envoy import binary, bootstrapping
from meshplane.manifests import crds

from . import cluster as k8s

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "echo"
STARTUP = 120.0
CHART_CRDS = REPO / "charts" / "meshplane" / "crds"


def _crd(info: crds.KindInfo) -> dict[str, Any]:
    """A permissive CRD (the webhooks hold the rules) with the real one's names and columns."""
    arn = f"{info.kind[0].lower()}{info.kind[1:]}ARN"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{crds.GROUP}"},
        "spec": {
            "group": crds.GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "categories": ["all"],
            },
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "versions": [
                {
                    "name": "v1beta2",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "ARN", "type": "string", "jsonPath": f".status.{arn}"},
                        {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def install_crds(cluster: k8s.Cluster) -> None:
    """Apply the CRDs and wait until every kind is served."""
    kinds = [info for info in crds.ALL if info.api_version == crds.API_VERSION]
    if CHART_CRDS.is_dir() and any(CHART_CRDS.glob("*.yaml")):
        cluster.kubectl("apply", "--server-side", "-f", str(CHART_CRDS))
    else:
        cluster.apply(*(_crd(info) for info in kinds))
    names = [f"crd/{info.plural}.{crds.GROUP}" for info in kinds]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


class Replica:
    """One ``meshplane k8s`` process on free loopback ports."""

    def __init__(
        self,
        cluster: k8s.Cluster,
        workdir: Path,
        *,
        register_webhooks: bool = True,
        lease_duration: float = 3.0,
        xds_identity: bool = False,
        sidecar_layout: str = "classic",
        resync: float | None = None,
        auth: str = "none",
    ) -> None:
        """``xds_identity`` and ``sidecar_layout`` default to the shapes of the tests written
        before pod-token identity and native sidecars: plain Envoys, classic pods."""
        self.cluster = cluster
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.api_port = k8s.free_port()
        self.xds_port = k8s.free_port()
        self.webhook_port = k8s.free_port()
        self.xds_tls_port = k8s.free_port()
        self.ca_file = workdir / "data" / "ca" / "ca.pem"
        self.log = workdir / "meshplane.log"
        argv = [
            sys.executable,
            "-m",
            "meshplane.cli.main",
            "k8s",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--data-dir",
            str(workdir / "data"),
            "--host",
            "127.0.0.1",
            "--api-port",
            str(self.api_port),
            "--xds-port",
            str(self.xds_port),
            "--webhook-host",
            "127.0.0.1",
            "--webhook-port",
            str(self.webhook_port),
            "--namespace",
            "default",
            "--xds-address",
            f"127.0.0.1:{self.xds_port}",
            "--lease-duration",
            str(lease_duration),
            "--log-level",
            "debug",
            "--auth",
            auth,  # none by default: the tests' aws CLI signs with dummy keys (loopback API)
            "--xds-tls-port",
            str(self.xds_tls_port),
            "--sidecar-layout",
            sidecar_layout,
            "--xds-identity" if xds_identity else "--no-xds-identity",
        ]
        if resync is not None:
            argv += ["--resync", str(resync)]
        if register_webhooks:
            argv.append("--register-webhooks")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.api_port}"
        k8s.poll(self._healthy, STARTUP, f"meshplane k8s to serve (log: {self.log})")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"meshplane k8s exited:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def proxies(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/meshplane/v1/proxies", timeout=5) as reply:
            found: list[dict[str, Any]] = json.loads(reply.read())["proxies"]
            return found

    def kill(self) -> None:
        """SIGKILL: a replica that dies without releasing anything."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait: the replica deregisters its webhooks and releases the Lease."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_for_webhooks(cluster: k8s.Cluster) -> None:
    """Until the API server calls meshplane's validating webhook (it learns configs by a watch)."""
    probe = {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {"name": "probe", "namespace": "default"},
        "spec": {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]},
    }

    def refused() -> bool:
        done = cluster.kubectl(
            "create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe), check=False
        )
        return done.returncode != 0 and "denied the request" in done.stderr

    k8s.poll(refused, 60.0, "the API server to call meshplane's webhooks")


def aws(replica: Replica, home: Path, *args: str) -> Any:
    """``aws appmesh <args> --endpoint-url <replica>``, parsed; it must succeed."""
    done = aws_run(replica, home, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def aws_run(replica: Replica, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_PAGER": "",
    }
    aws_bin = Path(sys.executable).parent / "aws"
    return subprocess.run(
        [str(aws_bin), "appmesh", *args, "--endpoint-url", replica.url, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


class Envoy:
    """A real Envoy connected to a replica's xDS as ``node_id``, its admin on a free port."""

    def __init__(self, replica: Replica, node_id: str, workdir: Path) -> None:
        self.address_file = workdir / f"envoy-{os.getpid()}-admin.txt"
        metadata = {"meshplane": {"egress": k8s.free_port(), "ingress": {"80": k8s.free_port()}}}
        config = bootstrapping.bootstrap(
            node_id, node_id, "127.0.0.1", replica.xds_port, "127.0.0.1", 0, metadata
        )
        argv = bootstrapping.command(
            config, binary=binary.binary_path(), admin_address_path=self.address_file
        )
        self.log = workdir / "envoy.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.admin = k8s.poll(self._admin, STARTUP, "Envoy's admin address")

    def _admin(self) -> str:
        if self.process.poll() is not None:
            raise AssertionError(f"envoy exited:\n{self.log.read_text()[-3000:]}")
        text = self.address_file.read_text().strip() if self.address_file.exists() else ""
        return f"http://{text}" if text else ""

    def weights(self) -> list[list[tuple[str, int]]]:
        """Every weighted_clusters list of the dynamic route configs: [(cluster, weight)]."""
        with urllib.request.urlopen(f"{self.admin}/config_dump", timeout=5) as reply:
            dump = json.loads(reply.read())
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

        walk(dump)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def manifest(name: str) -> str:
    """The text of ``examples/echo/<name>``."""
    return (EXAMPLE / name).read_text()


def documents(name: str) -> list[dict[str, Any]]:
    """The parsed documents of ``examples/echo/<name>``."""
    return [d for d in yaml.safe_load_all(manifest(name)) if d]


def delete_all(cluster: k8s.Cluster) -> None:
    """Delete every appmesh.k8s.aws object while a replica still finalizes them, members first.

    Whatever a replica did not finalize in time has its finalizers stripped, as the README
    documents for uninstalling meshplane, so the next test starts from an empty mesh.
    """
    plurals = [
        info.plural
        for info in reversed(crds.ALL)
        if info.api_version == crds.API_VERSION and info.namespaced
    ]
    for plural in [*plurals, "meshes"]:
        scope = ["-A"] if plural != "meshes" else []
        done = cluster.kubectl(
            "delete", plural, "--all", *scope, "--timeout=30s", "--ignore-not-found", check=False
        )
        if done.returncode == 0:
            continue
        for item in cluster.kubectl_json("get", plural, *scope)["items"]:
            where = item["metadata"].get("namespace")
            cluster.kubectl(
                "patch",
                plural,
                item["metadata"]["name"],
                *(["-n", where] if where else []),
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
