"""The APPMESH_* contract and the rules it gives, without a kernel (pure)."""

from __future__ import annotations

import pytest

from meshplane.interception import Contract, ContractError, rules


def test_defaults_are_app_meshs() -> None:
    """An empty env: not started, uid 1337, ports 15000/15001, only 22 ignored, IPv4 only."""
    assert Contract.from_env({}) == Contract(
        start_enabled=False,
        ignore_uid=1337,
        ignore_gid=None,
        ingress_port=15000,
        egress_port=15001,
        app_ports=(),
        egress_ignored_ips=(),
        egress_ignored_ports=(22,),
        enable_ipv6=False,
    )


def test_port_22_is_always_appended_once() -> None:
    """22 joins the ignored ports after the given ones, and is not repeated when given."""
    assert Contract.from_env({"APPMESH_EGRESS_IGNORED_PORTS": "443, 80"}).egress_ignored_ports == (
        443,
        80,
        22,
    )
    assert Contract.from_env({"APPMESH_EGRESS_IGNORED_PORTS": "22,80"}).egress_ignored_ports == (
        22,
        80,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("APPMESH_START_ENABLED", "yes", "APPMESH_START_ENABLED must be 1 or 0, got 'yes'"),
        (
            "APPMESH_ENVOY_EGRESS_PORT",
            "70000",
            "APPMESH_ENVOY_EGRESS_PORT must hold numbers from 1 to 65535, got '70000'",
        ),
        (
            "APPMESH_EGRESS_IGNORED_IP",
            "169.254.169.254,metadata",
            "APPMESH_EGRESS_IGNORED_IP holds 'metadata', which is not an IP address or CIDR",
        ),
        (
            "APPMESH_IGNORE_UID",
            "-1",
            "APPMESH_IGNORE_UID must hold numbers from 0 to 4294967294, got '-1'",
        ),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    """Each malformed variable is refused with its name and value."""
    with pytest.raises(ContractError) as caught:
        Contract.from_env({name: value})
    assert str(caught.value) == message


def test_more_than_fifteen_app_ports_split_into_multiport_rules() -> None:
    """multiport takes 15 ports per rule, so 17 app ports give two ingress rules."""
    ports = ",".join(str(port) for port in range(8000, 8017))
    ruleset = rules.build(Contract.from_env({"APPMESH_APP_PORTS": ports}), rules.IPV4)
    first = ",".join(str(port) for port in range(8000, 8015))
    redirect = ("-j", "REDIRECT", "--to-ports", "15000")
    assert ruleset.chains[rules.INGRESS_CHAIN] == (
        ("-p", "tcp", "-m", "multiport", "--dports", first, *redirect),
        ("-p", "tcp", "-m", "multiport", "--dports", "8015,8016", *redirect),
    )


def test_restore_script_declares_only_owned_chains() -> None:
    """The iptables-restore input names only APPMESH_* chains, so --noflush spares the rest."""
    contract = Contract.from_env({"APPMESH_APP_PORTS": "80", "APPMESH_IGNORE_UID": "1337"})
    assert rules.build(contract, rules.IPV4).restore_script() == (
        "*nat\n"
        ":APPMESH_EGRESS - [0:0]\n"
        ":APPMESH_INGRESS - [0:0]\n"
        "-A APPMESH_EGRESS -m owner --uid-owner 1337 -j RETURN\n"
        "-A APPMESH_EGRESS -p tcp -m multiport --dports 22 -j RETURN\n"
        "-A APPMESH_EGRESS -p tcp -j REDIRECT --to-ports 15001\n"
        "-A APPMESH_INGRESS -p tcp -m multiport --dports 80 -j REDIRECT --to-ports 15000\n"
        "COMMIT\n"
    )
