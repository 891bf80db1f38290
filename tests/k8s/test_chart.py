"""charts/meshplane: lint, server-side dry run, the old chart's values, the pre-install check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from . import cluster as k8s
from . import replicas

CHART = str(replicas.REPO / "charts" / "meshplane")
OLD_VALUES = {
    "region": "eu-west-1",
    "accountId": "111122223333",
    "replicaCount": 3,
    "log": {"level": "debug"},
    "env": {"HTTPS_PROXY": "http://proxy:3128"},
    "sidecar": {
        "image": {
            "repository": "840364872350.dkr.ecr.us-west-2.amazonaws.com/aws-appmesh-envoy",
            "tag": "v1.29.12.3-prod",
        },
        "logLevel": "debug",
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    },
    "init": {"image": {"repository": "registry.example/route-manager", "tag": "v7"}},
}


def _render(cluster: k8s.Cluster, *args: str) -> list[dict[str, Any]]:
    done = cluster.helm("template", "meshplane", CHART, "-n", "appmesh-system", *args)
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_the_chart_lints(cluster: k8s.Cluster) -> None:
    """`helm lint` passes with the defaults."""
    done = cluster.helm("lint", CHART)
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_the_rendered_chart_passes_a_server_side_dry_run(cluster: k8s.Cluster) -> None:
    """Every object of `helm template` is accepted by the real API server (--dry-run=server)."""
    replicas.install_crds(cluster)
    cluster.kubectl("create", "namespace", "appmesh-system", check=False)
    rendered = cluster.helm("template", "meshplane", CHART, "-n", "appmesh-system").stdout
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=rendered)
    kinds = sorted(line.split("/")[0] for line in done.stdout.splitlines())
    assert kinds == sorted(
        [
            "clusterrole.rbac.authorization.k8s.io",
            "clusterrolebinding.rbac.authorization.k8s.io",
            "deployment.apps",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io",
            "poddisruptionbudget.policy",
            "role.rbac.authorization.k8s.io",
            "rolebinding.rbac.authorization.k8s.io",
            "secret",
            "service",
            "service",
            "service",
            "serviceaccount",
            "validatingwebhookconfiguration.admissionregistration.k8s.io",
        ]
    )


def test_the_appmesh_controller_values_are_accepted(cluster: k8s.Cluster, tmp_path: Path) -> None:
    """`-f old.yaml` from the eks/appmesh-controller chart keeps region, account, images, env."""
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(OLD_VALUES))
    objects = _render(cluster, "-f", str(old))
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    for wanted in (
        "--region=eu-west-1",
        "--account-id=111122223333",
        "--namespace=appmesh-system",
        "--xds-address=meshplane-xds.appmesh-system.svc:15010",
        "--sidecar-image=envoyproxy/envoy:v1.40.0",  # the AWS image needs the retired endpoint
        "--sidecar-log-level=debug",
        "--sidecar-cpu-request=20m",
        "--sidecar-memory-request=64Mi",
        "--sidecar-memory-limit=256Mi",
        "--init-image=registry.example/route-manager:v7",
        "--log-level=debug",
    ):
        assert wanted in args, (wanted, args)
    assert container["env"] == [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]
    (mutating,) = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    (pod,) = [w for w in mutating["webhooks"] if w["name"] == "mpod.appmesh.k8s.aws"]
    assert pod["clientConfig"]["service"] == {
        "name": "meshplane-webhook-service",
        "namespace": "appmesh-system",
        "path": "/mutate-v1-pod",
    }


def test_install_is_refused_while_the_old_injector_is_registered(cluster: k8s.Cluster) -> None:
    """The pre-install check fails while appmesh-controller's webhook configuration exists."""
    cluster.kubectl("create", "namespace", "appmesh-system", check=False)
    old = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "appmesh-controller-mutating-webhook-configuration"},
        "webhooks": [],
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(old))
    try:
        refused = cluster.helm(
            "install", "meshplane", CHART, "-n", "appmesh-system", "--dry-run=server", check=False
        )
        assert refused.returncode == 1
        assert "appmesh-controller-mutating-webhook-configuration still exists" in refused.stderr
    finally:
        cluster.kubectl(
            "delete", "mutatingwebhookconfiguration", old["metadata"]["name"], "--ignore-not-found"
        )
    allowed = cluster.helm(
        "install", "meshplane", CHART, "-n", "appmesh-system", "--dry-run=server", check=False
    )
    assert allowed.returncode == 0, allowed.stderr


def test_the_charts_role_lets_a_replica_share_the_principals_secret(
    cluster: k8s.Cluster, namespace: str
) -> None:
    """The rendered Role and binding, applied for real: the chart's account may create Secrets
    and get/update/watch meshplane-principals, but not read other Secrets' updates."""
    objects = _render(cluster, "-n", namespace)
    chosen = [o for o in objects if o["kind"] in {"Role", "RoleBinding", "ServiceAccount"}]
    cluster.apply(*chosen)
    account = f"system:serviceaccount:{namespace}:meshplane"

    def can(*what: str) -> str:
        done = cluster.kubectl(
            "auth", "can-i", *what, "-n", namespace, "--as", account, check=False
        )
        return done.stdout.strip()

    assert [
        can(verb, "secrets/meshplane-principals") for verb in ("get", "update", "list", "watch")
    ] == ["yes", "yes", "yes", "yes"]
    assert can("create", "secrets") == "yes"
    assert can("update", "secrets/meshplane-ca") == "no"
    assert can("list", "secrets") == "no"
