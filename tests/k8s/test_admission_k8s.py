"""meshplane's webhooks as the API server calls them: refusals, and failurePolicy Fail when down."""

from __future__ import annotations

import json
from pathlib import Path

from . import cluster as k8s
from . import replicas

BAD_ROUTER = {
    "apiVersion": "appmesh.k8s.aws/v1beta2",
    "kind": "VirtualRouter",
    "metadata": {"name": "vr-bad", "namespace": "default"},
    "spec": {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "routes": [
            {
                "name": "r",
                "httpRoute": {
                    "match": {"prefix": "/", "path": {"exact": "/a"}},
                    "action": {"weightedTargets": [{"virtualNodeRef": {"name": "a"}, "weight": 1}]},
                },
            }
        ],
    },
}


def test_a_refused_router_names_the_field_and_rule_and_nothing_is_stored(
    cluster: k8s.Cluster, tmp_path: Path
) -> None:
    """The validating webhook refuses prefix+path with the field and rule; no object is created."""
    replicas.install_crds(cluster)
    replica = replicas.Replica(cluster, tmp_path / "replica")
    try:
        replicas.wait_for_webhooks(cluster)
        done = cluster.kubectl("apply", "-f", "-", stdin=json.dumps(BAD_ROUTER), check=False)
        assert done.returncode == 1
        assert (
            'admission webhook "vvirtualrouter.appmesh.k8s.aws" denied the request: '
            "spec.routes[0].httpRoute.match: both prefix and path cannot be specified, "
            "only 1 allowed"
        ) in done.stderr
        missing = cluster.kubectl("get", "virtualrouter", "vr-bad", "-n", "default", check=False)
        assert "NotFound" in missing.stderr
    finally:
        replica.stop()


def test_with_meshplane_down_the_fail_policy_refuses_writes_until_it_returns(
    cluster: k8s.Cluster, tmp_path: Path
) -> None:
    """A killed replica leaves its Fail-policy webhooks: CR writes are refused, not let in."""
    replicas.install_crds(cluster)
    replica = replicas.Replica(cluster, tmp_path / "replica")
    try:
        replicas.wait_for_webhooks(cluster)
        replica.kill()
        good = {**BAD_ROUTER, "metadata": {"name": "vr-down", "namespace": "default"}}
        good["spec"] = {"listeners": BAD_ROUTER["spec"]["listeners"]}
        done = cluster.kubectl("apply", "-f", "-", stdin=json.dumps(good), check=False)
        assert done.returncode == 1
        assert 'failed calling webhook "mvirtualrouter.appmesh.k8s.aws"' in done.stderr
    finally:
        replica.stop()
        cluster.kubectl(
            "delete",
            "mutatingwebhookconfiguration/meshplane-mutating-webhook-configuration",
            "validatingwebhookconfiguration/meshplane-validating-webhook-configuration",
            "--ignore-not-found",
        )
