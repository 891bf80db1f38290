"""Reading Envoy's admin stats: versions, NACKs and request counts."""

from __future__ import annotations

from meshplane.runtime import admin

STATS = """\
cluster_manager.cds.update_rejected: 0
cluster_manager.cds.version_text: "5f2a9c1e"
listener_manager.lds.update_rejected: 1
listener_manager.lds.version_text: "0123456789abcdef"
http.egress.rds.rds_egress_http_15001.version_text: "r1"
http.admin.downstream_rq_total: 40
http.ingress.downstream_rq_total: 12
http.ingress.downstream_rq_5xx: 2
http.ingress.http.8080.downstream_rq_total: 3
http.egress.downstream_rq_total: 7
"""


def test_plain_text_stats_parse_unquoted() -> None:
    """``name: value`` lines become a dict; text readouts lose their quotes."""
    parsed = admin.parse_stats(STATS)
    assert parsed["cluster_manager.cds.version_text"] == "5f2a9c1e"
    assert parsed["http.ingress.downstream_rq_total"] == "12"
    assert len(parsed) == 10


def test_summary_counts_ingress_egress_errors_and_nacks() -> None:
    """Admin traffic is excluded; 5xx counted apart; update_rejected summed."""
    health = admin.summarize(admin.parse_stats(STATS), ready=True)
    assert health == admin.SidecarHealth(
        reachable=True,
        ready=True,
        versions={"cds": "5f2a9c1e", "lds": "0123456789abcdef", "rds.rds_egress_http_15001": "r1"},
        rejected=1,
        ingress_requests=15,
        egress_requests=7,
        errors_5xx=2,
    )
    assert health.sync == "NACKed (1)"


def test_sync_words() -> None:
    """down when unreachable, waiting before LDS, synced with a short version after."""
    assert admin.SidecarHealth().sync == "down"
    assert admin.summarize({}, ready=False).sync == "waiting"
    stats = {"listener_manager.lds.version_text": "0123456789abcdef"}
    assert admin.summarize(stats, ready=True).sync == "synced 0123456789ab"
