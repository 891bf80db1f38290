"""``proxy-config``'s summary of a TLS golden: modes per chain, upstream TLS, secrets, no keys."""

from __future__ import annotations

import pathlib

from meshplane.sync import proxyconfig
from meshplane.translate import build
from meshplane.xds.snapshot import Snapshot

from . import casefiles, certs


def _summary(name: str, tmp_path: pathlib.Path) -> dict[str, list[dict[str, object]]]:
    case = casefiles.load(name)
    resources = build(case.snapshot, case.node)
    ca = certs.write_files(tmp_path)
    secrets = certs.secrets_for(resources, ca).values()
    snapshot = Snapshot.of(
        (*resources.listeners, *resources.route_configurations, *resources.clusters, *secrets)
    )
    return proxyconfig.summarize(snapshot)


def test_listener_chains_show_their_tls_mode(tmp_path: pathlib.Path) -> None:
    """STRICT with validation is mTLS; PERMISSIVE shows both chains; DISABLED is plaintext."""
    summary = _summary("tls-listeners", tmp_path)
    [ingress] = [x for x in summary["listeners"] if x["direction"] == "INBOUND"]
    rows = [(c["name"], c["destinationPort"], c["tls"], c["mode"]) for c in ingress["chains"]]  # type: ignore[index, union-attr]
    assert rows == [
        ("http_8080", 8080, "mTLS", "STRICT"),
        ("http2_8081_tls", 8081, "mTLS", "PERMISSIVE"),
        ("http2_8081", 8081, "plaintext", "PERMISSIVE"),
        ("tcp_8082", 8082, "plaintext", "DISABLED"),
        ("grpc_8083", 8083, "TLS", "STRICT"),
    ]


def test_secrets_show_sans_and_expiry_but_never_keys(tmp_path: pathlib.Path) -> None:
    """Each secret: kind, SANs of the leaf; the summary holds no private key material."""
    summary = _summary("tls-listeners", tmp_path)
    shown = [(s["name"], s["kind"], s["sans"]) for s in summary["secrets"]]
    assert shown == [
        (
            "arn:aws:acm:us-west-2:111122223333:certificate/secure",
            "certificate",
            ["secure.demos.svc.cluster.local"],
        ),
        ("spiffe://meshplane.local", "trust", []),
        ("spiffe://meshplane.local/secure", "certificate", ["spiffe://meshplane.local/secure"]),
    ]
    assert "PRIVATE" not in repr(summary)


def test_clusters_show_upstream_tls_and_the_sans_checked(tmp_path: pathlib.Path) -> None:
    """Client policies: client certificate or not, validated or not (App Mesh's file rule)."""
    summary = _summary("tls-client-policies", tmp_path)
    by_name = {c["name"]: c["tls"] for c in summary["clusters"]}
    assert by_name["cds_egress_demos_vn-file_http_8080"] == {
        "clientCertificate": True,
        "validated": True,
        "sans": ["file.demos.svc.cluster.local"],
        "secrets": [],
    }
    assert by_name["cds_egress_demos_vn-unenforced_http_8080"] == {
        "clientCertificate": False,
        "validated": False,
        "sans": [],
        "secrets": [],
    }
    assert by_name["cds_egress_demos_vn-plain_http_7070"] is None
