"""``meshplane proxy-init`` in a network namespace: App Mesh's nat rules, idempotent, removable."""

from __future__ import annotations

import sys

import pytest

from .namespaces import Namespace, Namespaces, run

pytestmark = pytest.mark.integration

PRISTINE = [
    "*nat",
    ":PREROUTING ACCEPT",
    ":INPUT ACCEPT",
    ":OUTPUT ACCEPT",
    ":POSTROUTING ACCEPT",
    "COMMIT",
]
INJECTED = {
    "APPMESH_START_ENABLED": "1",
    "APPMESH_IGNORE_UID": "1337",
    "APPMESH_ENVOY_INGRESS_PORT": "15000",
    "APPMESH_ENVOY_EGRESS_PORT": "15001",
    "APPMESH_APP_PORTS": "80,8080",
    "APPMESH_EGRESS_IGNORED_IP": "169.254.169.254",
    "APPMESH_EGRESS_IGNORED_PORTS": "22",
    "APPMESH_ENABLE_IPV6": "0",
}
"""The proxyinit env App Mesh's injector writes for a node listening on 80 and 8080."""
EXPECTED = [
    "*nat",
    ":PREROUTING ACCEPT",
    ":INPUT ACCEPT",
    ":OUTPUT ACCEPT",
    ":POSTROUTING ACCEPT",
    ":APPMESH_EGRESS -",
    ":APPMESH_INGRESS -",
    "-A PREROUTING -p tcp -m addrtype ! --src-type LOCAL -j APPMESH_INGRESS",
    "-A OUTPUT -p tcp -m addrtype ! --dst-type LOCAL -j APPMESH_EGRESS",
    "-A APPMESH_EGRESS -m owner --uid-owner 1337 -j RETURN",
    "-A APPMESH_EGRESS -p tcp -m multiport --dports 22 -j RETURN",
    "-A APPMESH_EGRESS -d 169.254.169.254/32 -j RETURN",
    "-A APPMESH_EGRESS -p tcp -j REDIRECT --to-ports 15001",
    "-A APPMESH_INGRESS -p tcp -m multiport --dports 80,8080 -j REDIRECT --to-ports 15000",
    "COMMIT",
]


def proxy_init(
    pod: Namespace, env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()
) -> tuple[int, str, str]:
    """Run ``meshplane proxy-init`` inside ``pod`` with exactly ``env``."""
    argv = pod.exec([*prefix, sys.executable, "-m", "meshplane.cli.main", "proxy-init", *args], env)
    result = run(argv, check=False)
    return result.returncode, result.stdout, result.stderr


def test_installs_app_mesh_rules(namespaces: Namespaces) -> None:
    """The injector's env gives App Mesh's chains, hooks and rules, in order."""
    pod = namespaces.make("pod")
    assert pod.nat_rules() == PRISTINE
    code, out, err = proxy_init(pod, INJECTED)
    assert (code, err) == (0, "")
    assert out == (
        "proxy-init: IPv4: APPMESH_EGRESS, APPMESH_INGRESS installed "
        "(5 rules, 2 hooks added, 0 already present)\n"
    )
    assert pod.nat_rules() == EXPECTED


def test_second_run_leaves_the_same_rules(namespaces: Namespaces) -> None:
    """Running proxy-init again (a restarted init container) changes nothing."""
    pod = namespaces.make("pod")
    proxy_init(pod, INJECTED)
    code, out, _ = proxy_init(pod, INJECTED)
    assert code == 0
    assert "0 hooks added, 2 already present" in out
    assert pod.nat_rules() == EXPECTED


def test_changed_env_replaces_the_rules(namespaces: Namespaces) -> None:
    """A second run with other ports and no app ports leaves only what it asks for."""
    pod = namespaces.make("pod")
    proxy_init(pod, INJECTED)
    changed = {
        **INJECTED,
        "APPMESH_APP_PORTS": "",
        "APPMESH_EGRESS_IGNORED_PORTS": "5432,6379",
        "APPMESH_EGRESS_IGNORED_IP": "10.96.0.10,192.0.2.0/24",
        "APPMESH_IGNORE_GID": "1338",
    }
    assert proxy_init(pod, changed)[0] == 0
    assert pod.nat_rules() == [
        *PRISTINE[:5],
        ":APPMESH_EGRESS -",
        "-A OUTPUT -p tcp -m addrtype ! --dst-type LOCAL -j APPMESH_EGRESS",
        "-A APPMESH_EGRESS -m owner --uid-owner 1337 -j RETURN",
        "-A APPMESH_EGRESS -m owner --gid-owner 1338 -j RETURN",
        "-A APPMESH_EGRESS -p tcp -m multiport --dports 5432,6379,22 -j RETURN",
        "-A APPMESH_EGRESS -d 10.96.0.10/32 -j RETURN",
        "-A APPMESH_EGRESS -d 192.0.2.0/24 -j RETURN",
        "-A APPMESH_EGRESS -p tcp -j REDIRECT --to-ports 15001",
        "COMMIT",
    ]


def test_clean_removes_every_rule(namespaces: Namespaces) -> None:
    """``--clean`` deletes the hooks and chains; a second clean finds nothing to do."""
    pod = namespaces.make("pod")
    proxy_init(pod, {**INJECTED, "APPMESH_ENABLE_IPV6": "1"})
    code, out, _ = proxy_init(pod, {}, "--clean")
    assert code == 0
    assert out == (
        "proxy-init: IPv4: removed APPMESH_EGRESS, APPMESH_INGRESS\n"
        "proxy-init: IPv6: removed APPMESH_EGRESS, APPMESH_INGRESS\n"
    )
    assert pod.nat_rules() == PRISTINE
    assert pod.nat_rules("ip6tables-save") == PRISTINE
    assert proxy_init(pod, {}, "--clean")[1] == (
        "proxy-init: IPv4: removed nothing (no rules were installed)\n"
        "proxy-init: IPv6: removed nothing (no rules were installed)\n"
    )


def test_ipv6_gets_its_copy_with_its_own_ignored_addresses(namespaces: Namespaces) -> None:
    """APPMESH_ENABLE_IPV6=1 installs the ip6tables copy; each family gets its own literals."""
    pod = namespaces.make("pod")
    env = {**INJECTED, "APPMESH_ENABLE_IPV6": "1", "APPMESH_EGRESS_IGNORED_IP": "fd00::1,10.0.0.1"}
    assert proxy_init(pod, env)[0] == 0
    assert "-A APPMESH_EGRESS -d 10.0.0.1/32 -j RETURN" in pod.nat_rules()
    six = pod.nat_rules("ip6tables-save")
    assert [line for line in six if line.startswith("-A APPMESH_EGRESS")] == [
        "-A APPMESH_EGRESS -m owner --uid-owner 1337 -j RETURN",
        "-A APPMESH_EGRESS -p tcp -m multiport --dports 22 -j RETURN",
        "-A APPMESH_EGRESS -d fd00::1/128 -j RETURN",
        "-A APPMESH_EGRESS -p tcp -j REDIRECT --to-ports 15001",
    ]
    assert "-A OUTPUT -p tcp -m addrtype ! --dst-type LOCAL -j APPMESH_EGRESS" in six
    # Turning IPv6 off again removes that copy rather than leaving it behind.
    assert proxy_init(pod, INJECTED)[0] == 0
    assert pod.nat_rules("ip6tables-save") == PRISTINE


def test_not_started_installs_nothing(namespaces: Namespaces) -> None:
    """Without APPMESH_START_ENABLED=1 proxy-init says so and leaves the table alone."""
    pod = namespaces.make("pod")
    code, out, err = proxy_init(pod, {**INJECTED, "APPMESH_START_ENABLED": "0"})
    assert (code, out) == (0, "")
    assert err == "proxy-init: APPMESH_START_ENABLED is not 1; no rules installed\n"
    assert pod.nat_rules() == PRISTINE


def test_without_net_admin_exits_with_one_line(namespaces: Namespaces) -> None:
    """Dropping CAP_NET_ADMIN gives exit 1 and one line naming the capability."""
    pod = namespaces.make("pod")
    no_net_admin = ("setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", "--")
    code, out, err = proxy_init(pod, INJECTED, prefix=no_net_admin)
    assert (code, out) == (1, "")
    assert err == (
        "proxy-init: proxy-init needs the NET_ADMIN capability (run it as root, or add "
        "NET_ADMIN to the init container's securityContext.capabilities)\n"
    )
    assert pod.nat_rules() == PRISTINE


def test_bad_value_names_the_variable(namespaces: Namespaces) -> None:
    """A malformed port list exits 2 with the variable and the value, before touching rules."""
    pod = namespaces.make("pod")
    code, _, err = proxy_init(pod, {**INJECTED, "APPMESH_APP_PORTS": "80,http"})
    assert code == 2
    assert err == "proxy-init: APPMESH_APP_PORTS must hold numbers from 1 to 65535, got 'http'\n"
    assert pod.nat_rules() == PRISTINE
