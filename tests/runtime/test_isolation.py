"""``--isolation``: who may use netns mode, the one-line refusals, and the pieces it builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2
from typer.testing import CliRunner

from meshplane.cli.main import cli as app
from meshplane.runtime import isolation, sidecars
from meshplane.sync import identities


def test_netns_mode_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not root: one sentence saying so and what to do instead."""
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
    assert isolation.unavailable() == (
        "--isolation netns needs root (it creates network namespaces and iptables rules); "
        "run it as root or use the default process mode"
    )


def test_netns_mode_names_the_missing_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root without iproute2/iptables: the missing tools and the Debian packages."""
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        isolation.shutil, "which", lambda tool: None if tool in {"ip", "iptables"} else "/x"
    )
    assert isolation.unavailable() == (
        "--isolation netns needs ip, iptables (Debian: apt-get install iproute2 iptables "
        "util-linux); or use the default process mode"
    )


def test_up_refuses_netns_mode_in_one_line_without_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`meshplane up --isolation netns` as a user: exit 2, one error line, nothing started."""
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(
        app, ["up", "-f", str(tmp_path), "--isolation", "netns", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --isolation netns needs root (it creates network namespaces and iptables "
        "rules); run it as root or use the default process mode"
    ]
    assert list(tmp_path.iterdir()) == []


def test_up_refuses_an_unknown_isolation_mode(tmp_path: Path) -> None:
    """`--isolation vm`: exit 2 naming the two modes."""
    result = CliRunner().invoke(app, ["up", "-f", str(tmp_path), "--isolation", "vm"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --isolation must be process or netns, got 'vm'"


def test_pods_run_commands_in_their_namespace_and_envoy_as_1337() -> None:
    """The app runs as the caller inside the namespace; Envoy as uid 1337 with its death signal."""
    pod = isolation.Pod("mpup1-2", "10.77.0.2", "web-0")
    assert pod.wrap(["app"]) == ["ip", "netns", "exec", "mpup1-2", "app"]
    assert pod.wrap(["envoy"], uid=1337) == [
        *("ip", "netns", "exec", "mpup1-2", "setpriv", "--reuid=1337", "--regid=1337"),
        *("--clear-groups", "--pdeathsig", "SIGKILL", "envoy"),
    ]


def test_proxy_init_gets_the_injectors_env_with_the_listener_ports() -> None:
    """The APPMESH_* contract App Mesh's injector wrote, app ports = the node's listeners."""
    assert isolation.proxy_init_env((80, 8443)) == {
        "APPMESH_START_ENABLED": "1",
        "APPMESH_IGNORE_UID": "1337",
        "APPMESH_ENVOY_INGRESS_PORT": "15000",
        "APPMESH_ENVOY_EGRESS_PORT": "15001",
        "APPMESH_APP_PORTS": "80,8443",
        "APPMESH_EGRESS_IGNORED_IP": "169.254.169.254",
        "APPMESH_EGRESS_IGNORED_PORTS": "22",
        "APPMESH_ENABLE_IPV6": "0",
    }


def test_an_isolated_sidecar_asks_for_the_intercepted_layout() -> None:
    """Node metadata in netns mode: interception, registered endpoints, the app port; no ports."""
    ports = sidecars.SidecarPorts(admin=0, egress=15001, ingress={80: 80})
    assert sidecars.metadata("web-0", ports, {80: 80}, intercepted=True) == {
        "meshplane": {
            "replica": "web-0",
            "interception": "iptables",
            "endpoints": "registered",
            "app": {"80": 80},
        }
    }


def test_an_isolated_gateway_binds_its_listeners_at_its_pod_address() -> None:
    """A gateway in a namespace: its own ports at the pod address, registered endpoints only."""
    ports = sidecars.SidecarPorts(admin=0, egress=15001, ingress={8088: 8088})
    announced = sidecars.metadata("gw-0", ports, {}, bind="10.77.0.5")
    assert announced == {
        "meshplane": {
            "replica": "gw-0",
            "ingress": {"8088": 8088},
            "app": {},
            "egress": 15001,
            "bind": "10.77.0.5",
            "endpoints": "registered",
        }
    }
    metadata = struct_pb2.Struct()
    metadata.update(announced)
    node = base_pb2.Node(id="mesh/shop/virtualGateway/gw_shop", metadata=metadata)
    identity = identities.identify(node)
    assert identity is not None
    assert (identity.bind_address, identity.intercepted) == ("10.77.0.5", False)
    assert (identity.ingress_port(8088), identity.egress_port) == (8088, 15001)
    assert identity.discovery == "registered-only"


def test_hosts_files_are_rewritten_in_place_shorter_or_longer(tmp_path: Path) -> None:
    """Same inode (the bind mount's), exact new text whether the file shrinks or grows."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.77.255.2 first\n10.77.255.3 second\n")
    inode = hosts.stat().st_ino
    isolation.rewrite_in_place(hosts, "127.0.0.1 localhost\n")
    assert (hosts.read_text(), hosts.stat().st_ino) == ("127.0.0.1 localhost\n", inode)
    isolation.rewrite_in_place(hosts, "127.0.0.1 localhost\n10.77.255.4 third\n")
    assert hosts.read_text() == "127.0.0.1 localhost\n10.77.255.4 third\n"
    assert hosts.stat().st_ino == inode


def test_service_names_follow_the_store_and_keep_their_virtual_ips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Added names get new IPs, removed ones leave, a returning name gets its IP back."""
    monkeypatch.setattr(isolation, "NETNS_ETC", tmp_path)
    network = isolation.Network("t")
    network.pods.append(isolation.Pod("t-2", "10.77.0.2", "web-0"))
    hosts = tmp_path / "t-2" / "hosts"
    assert network.name_services(["first"]) is True
    assert network.name_services(["first"]) is False  # unchanged: not rewritten
    assert network.name_services(["first", "second"]) is True
    assert hosts.read_text().splitlines() == [
        "127.0.0.1 localhost",
        "10.77.0.2 web-0",
        "10.77.255.2 first",
        "10.77.255.3 second",
    ]
    assert network.name_services(["second"]) is True
    assert hosts.read_text().splitlines()[2:] == ["10.77.255.3 second"]
    assert network.name_services(["first", "second"]) is True
    assert hosts.read_text().splitlines()[2:] == ["10.77.255.2 first", "10.77.255.3 second"]
