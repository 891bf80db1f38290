"""The real Envoy 1.40 binary accepts every golden case's translation.

``envoy --mode validate`` parses the bootstrap and instantiates every listener,
filter and cluster, so proto-validation rules (PGV) and extension configs are
checked exactly as a sidecar would check them on an xDS push.
"""

from __future__ import annotations

import pathlib
import subprocess

import pytest
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from meshplane.translate import build

from . import casefiles, certs, staticconfig


@pytest.mark.integration
@pytest.mark.parametrize("name", casefiles.case_names())
def test_envoy_accepts_translation(name: str, tmp_path: pathlib.Path) -> None:
    """Envoy validates the case's listeners, routes and clusters without complaint."""
    case = casefiles.load(name)
    resources = build(case.snapshot, case.node)
    ca = certs.write_files(certs.GOLDEN_DIR)
    secrets = certs.secrets_for(resources, ca)
    config = staticconfig.bootstrap(resources, case.node.node_id, secrets=secrets)
    path = tmp_path / "bootstrap.json"
    path.write_text(json_format.MessageToJson(config))
    result = subprocess.run(
        [str(staticconfig.envoy_binary()), "--mode", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


@pytest.mark.integration
def test_envoy_rejects_zero_weight_sum_which_is_why_such_routes_answer_503(
    tmp_path: pathlib.Path,
) -> None:
    """Envoy refuses weighted_clusters summing to 0, so the translator emits a 503 instead."""
    case = casefiles.load("bluegreen-100-0")
    config = staticconfig.bootstrap(build(case.snapshot, case.node), case.node.node_id)
    [listener] = [x for x in config.static_resources.listeners if x.name.startswith("lds_egress")]
    manager = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    manager.route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters[
        0
    ].weight.value = 0
    listener.filter_chains[0].filters[0].typed_config.Pack(manager)
    path = tmp_path / "bootstrap.json"
    path.write_text(json_format.MessageToJson(config))
    result = subprocess.run(
        [str(staticconfig.envoy_binary()), "--mode", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Sum of weights in the weighted_cluster must be greater than 0." in result.stderr
