"""TLS rules that no golden shows: refusals are skips with a reason, never plaintext."""

from __future__ import annotations

from typing import Any

from meshplane.translate import NodeIdentity, build, tlsstate

from . import casefiles


def _node(name: str, listener: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "virtualNodeName": name,
        "spec": {
            "listeners": [listener],
            "serviceDiscovery": {"dns": {"hostname": f"{name}.local"}},
            **extra,
        },
    }


def test_a_listener_tls_without_a_certificate_skips_the_listener_and_says_why() -> None:
    """STRICT with an empty certificate cannot be served: no listener at all, not plaintext."""
    data = {
        "mesh": {"meshName": "demos", "spec": {}},
        "virtualNodes": [
            _node(
                "vn-a",
                {
                    "portMapping": {"port": 80, "protocol": "http"},
                    "tls": {"mode": "STRICT", "certificate": {}},
                },
            )
        ],
    }
    built = build(casefiles.snapshot_of(data), NodeIdentity("demos", "virtualNode", "vn-a"))
    assert [w.code for w in built.warnings] == ["tls-certificate-missing"]
    assert [x.name for x in built.listeners] == ["lds_egress_127.0.0.1_15001"]
    assert built.warnings[0].message == (
        "mesh/demos/virtualNode/vn-a: listener 80: listener tls has no certificate; "
        "listener skipped"
    )


def test_two_services_reaching_one_node_with_different_policies_warn() -> None:
    """One cluster per target: the TLS policy is used for both services, and that is said."""
    listener = {"portMapping": {"port": 80, "protocol": "http"}}
    policy = {"tls": {"validation": {"trust": {"file": {"certificateChain": "/certs/ca.pem"}}}}}
    provider = {"provider": {"virtualNode": {"virtualNodeName": "vn-b"}}}
    data = {
        "mesh": {"meshName": "demos", "spec": {}},
        "virtualNodes": [
            _node("vn-b", listener),
            _node(
                "vn-a",
                listener,
                backends=[
                    {"virtualService": {"virtualServiceName": "vs-1", "clientPolicy": policy}},
                    {"virtualService": {"virtualServiceName": "vs-2"}},
                ],
            ),
        ],
        "virtualServices": [
            {"virtualServiceName": "vs-1", "spec": provider},
            {"virtualServiceName": "vs-2", "spec": provider},
        ],
    }
    built = build(casefiles.snapshot_of(data), NodeIdentity("demos", "virtualNode", "vn-a"))
    assert [w.message for w in built.warnings] == [
        "mesh/demos/virtualNode/vn-a: VirtualNode vn-b port 80 is reached through vs-1, vs-2 "
        "with different client policies; the TLS one of vs-1 is used for all"
    ]
    [cluster] = [c for c in built.clusters if c.name == "cds_egress_demos_vn-b_http_80"]
    assert cluster.transport_socket.name == "envoy.transport_sockets.tls"


def test_a_spec_cannot_name_another_nodes_automatic_identity() -> None:
    """sds.secretName under spiffe://meshplane.local/mesh/ must be the node's own ID."""
    other = "spiffe://meshplane.local/mesh/demos/virtualNode/vn-b"
    own = "spiffe://meshplane.local/mesh/demos/virtualNode/vn-a"

    def listener(port: int, name: str) -> dict[str, Any]:
        return {
            "portMapping": {"port": port, "protocol": "http"},
            "tls": {"mode": "STRICT", "certificate": {"sds": {"secretName": name}}},
        }

    data = {
        "mesh": {"meshName": "demos", "spec": {}},
        "virtualNodes": [
            {
                "virtualNodeName": "vn-a",
                "spec": {
                    "listeners": [listener(80, other), listener(81, own)],
                    "serviceDiscovery": {"dns": {"hostname": "a.local"}},
                },
            }
        ],
    }
    node = NodeIdentity("demos", "virtualNode", "vn-a", ingress_ports={80: 20080, 81: 20081})
    built = build(casefiles.snapshot_of(data), node)
    assert [w.message for w in built.warnings] == [
        f"mesh/demos/virtualNode/vn-a: listener 80: SDS secret {other} is another proxy's "
        f"identity (this one is {own}); not issued"
    ]
    assert [x.name for x in built.listeners] == [
        "lds_egress_127.0.0.1_15001",
        "lds_ingress_127.0.0.1_20081",
    ]
    assert [s.name for s in built.secrets] == [own]


def test_a_listener_skipped_for_its_trust_names_no_secret() -> None:
    """An SDS certificate with an empty trust: no listener, and no secret Envoy never asks for."""
    data = {
        "mesh": {"meshName": "demos", "spec": {}},
        "virtualNodes": [
            _node(
                "vn-a",
                {
                    "portMapping": {"port": 80, "protocol": "http"},
                    "tls": {
                        "mode": "STRICT",
                        "certificate": {"sds": {"secretName": "spiffe://example.org/a"}},
                        "validation": {"trust": {}},
                    },
                },
            )
        ],
    }
    built = build(casefiles.snapshot_of(data), NodeIdentity("demos", "virtualNode", "vn-a"))
    assert [w.code for w in built.warnings] == ["tls-trust-missing"]
    assert built.secrets == ()
    assert [x.name for x in built.listeners] == ["lds_egress_127.0.0.1_15001"]


def _san_case(backend_certificate: dict[str, Any], accepted: str) -> dict[str, Any]:
    """vn-a calls vn-b over TLS accepting only SAN ``accepted``; vn-b serves that certificate."""
    served = {
        "portMapping": {"port": 80, "protocol": "http"},
        "tls": {"mode": "STRICT", "certificate": backend_certificate},
    }
    policy = {
        "tls": {
            "validation": {
                "trust": {"sds": {"secretName": "spiffe://meshplane.local"}},
                "subjectAlternativeNames": {"match": {"exact": [accepted]}},
            }
        }
    }
    caller = {"virtualService": {"virtualServiceName": "vs-b", "clientPolicy": policy}}
    return {
        "mesh": {"meshName": "demos", "spec": {}},
        "virtualNodes": [
            _node("vn-b", served),
            _node("vn-a", {"portMapping": {"port": 80, "protocol": "http"}}, backends=[caller]),
        ],
        "virtualServices": [
            {
                "virtualServiceName": "vs-b",
                "spec": {"provider": {"virtualNode": {"virtualNodeName": "vn-b"}}},
            }
        ],
    }


def test_a_san_that_cannot_match_the_backends_sds_certificate_is_said_about_the_backend() -> None:
    """The SDS certificate's SAN is its secret name: another accepted SAN warns, naming both."""
    sds = {"sds": {"secretName": "spiffe://meshplane.local/vn-b"}}
    caller = NodeIdentity("demos", "virtualNode", "vn-a")
    built = build(casefiles.snapshot_of(_san_case(sds, "spiffe://meshplane.local/other")), caller)
    assert [w.as_json() for w in built.warnings] == [
        {
            "resource": "mesh/demos/virtualNode/vn-b",
            "code": "tls-san-mismatch",
            "message": "mesh/demos/virtualNode/vn-a: calls to vn-b port 80 fail: the client "
            "policy accepts SAN spiffe://meshplane.local/other but vn-b's certificate carries "
            "spiffe://meshplane.local/vn-b",
        }
    ]
    matching = _san_case(sds, "spiffe://meshplane.local/vn-b")
    assert build(casefiles.snapshot_of(matching), caller).warnings == ()


def test_a_file_certificate_is_checked_only_when_its_sans_can_be_read() -> None:
    """A file certificate's SANs come from the reader the sync stage passes; without it, none."""
    file = {"file": {"certificateChain": "/certs/b.pem", "privateKey": "/certs/b-key.pem"}}
    snapshot = casefiles.snapshot_of(_san_case(file, "vn-b.local"))
    caller = NodeIdentity("demos", "virtualNode", "vn-a")
    assert build(snapshot, caller).warnings == ()
    read: list[str] = []

    def sans(path: str) -> tuple[str, ...]:
        read.append(path)
        return ("vn-c.local",)

    built = build(snapshot, caller, file_sans=sans)
    assert read == ["/certs/b.pem"]
    assert [w.message for w in built.warnings] == [
        "mesh/demos/virtualNode/vn-a: calls to vn-b port 80 fail: the client policy accepts "
        "SAN vn-b.local but vn-b's certificate carries vn-c.local"
    ]
    assert build(snapshot, caller, file_sans=sans).listeners == build(snapshot, caller).listeners


def test_describe_of_a_routed_backend_names_the_callers_san_mismatch() -> None:
    """A caller reaching vn-b through a router: vn-b's TLS state carries the mismatch condition."""
    data = _san_case({"sds": {"secretName": "spiffe://meshplane.local/vn-b"}}, "wrong.local")
    listener = {"portMapping": {"port": 80, "protocol": "http"}}
    data["virtualRouters"] = [{"virtualRouterName": "vr-b", "spec": {"listeners": [listener]}}]
    data["routes"] = [
        {
            "virtualRouterName": "vr-b",
            "routeName": "r",
            "spec": {
                "httpRoute": {
                    "match": {"prefix": "/"},
                    "action": {"weightedTargets": [{"virtualNode": "vn-b", "weight": 1}]},
                }
            },
        }
    ]
    data["virtualServices"][0]["spec"] = {
        "provider": {"virtualRouter": {"virtualRouterName": "vr-b"}}
    }
    state = tlsstate.state(casefiles.snapshot_of(data), "virtualNode", "vn-b")
    assert state is not None
    assert state["conditions"] == [
        {
            "type": "TLSPeersVerified",
            "status": "False",
            "reason": "SubjectAlternativeNameMismatch",
            "message": "mesh/demos/virtualNode/vn-a: calls to vn-b port 80 fail: the client "
            "policy accepts SAN wrong.local but vn-b's certificate carries "
            "spiffe://meshplane.local/vn-b",
        }
    ]
    assert [(entry["port"], entry["mode"], entry["source"]) for entry in state["listeners"]] == [
        (80, "STRICT", "listener tls")
    ]


def test_describe_of_a_gateway_shows_its_listener_and_backend_defaults() -> None:
    """A gateway's TLS state: its listener's file certificate, its routes' services' policy."""
    data = _san_case({"sds": {"secretName": "spiffe://meshplane.local/vn-b"}}, "wrong.local")
    policy = {
        "tls": {
            "ports": [80],
            "validation": {"trust": {"file": {"certificateChain": "/certs/ca.pem"}}},
        }
    }
    listener = {
        "portMapping": {"port": 8443, "protocol": "http"},
        "tls": {
            "mode": "STRICT",
            "certificate": {
                "file": {"certificateChain": "/certs/gw.pem", "privateKey": "/certs/gw-key.pem"}
            },
        },
    }
    data["virtualGateways"] = [
        {
            "virtualGatewayName": "gw",
            "spec": {"listeners": [listener], "backendDefaults": {"clientPolicy": policy}},
        }
    ]
    data["gatewayRoutes"] = [
        {
            "virtualGatewayName": "gw",
            "gatewayRouteName": "to-b",
            "spec": {
                "httpRoute": {
                    "match": {"prefix": "/"},
                    "action": {"target": {"virtualService": {"virtualServiceName": "vs-b"}}},
                }
            },
        }
    ]
    state = tlsstate.state(casefiles.snapshot_of(data), "virtualGateway", "gw")
    assert state is not None
    assert state["listeners"] == [
        {
            "port": 8443,
            "protocol": "http",
            "mode": "STRICT",
            "source": "listener tls",
            "certificate": {
                "source": "file",
                "certificateChain": "/certs/gw.pem",
                "servedBy": "file",
                "sans": None,
            },
            "validation": None,
            "mutual": False,
        }
    ]
    [backend] = state["backends"]
    assert backend == {
        "virtualService": "vs-b",
        "clientPolicy": "backendDefaults",
        "enforce": True,
        "ports": [80],
        "certificate": None,
        "validation": {
            "trust": {"source": "file", "certificateChain": "/certs/ca.pem"},
            "subjectAlternativeNames": [],
        },
        "targets": [
            {
                "virtualNode": "vn-b",
                "port": 80,
                "tls": "TLS",
                "decidedBy": "client policy",
                "expectedSans": ["vn-b.local"],
                "presentedSans": ["spiffe://meshplane.local/vn-b"],
                "presentedFrom": "built-in CA",
                "sanMismatch": False,
            }
        ],
    }
