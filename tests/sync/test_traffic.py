"""Traffic per virtual node and per target, from two readings of the sidecars' Envoy stats."""

from __future__ import annotations

from meshplane.sync import traffic

FRONTEND = "mesh/demos/virtualNode/vn-front"
BLUE = "mesh/demos/virtualNode/vn-blue"


RQ = "envoy_cluster_upstream_rq_xx"
TIME = "envoy_cluster_upstream_rq_time_bucket"
HTTP = "envoy_http_downstream_rq_xx"


def _line(metric: str, value: int, **labels: str) -> str:
    inside = ",".join(f'{name}="{text}"' for name, text in labels.items())
    return f"{metric}{{{inside}}} {value}"


def _caller(ok_blue: int, bad_blue: int, ok_green: int, fast: int, slow: int) -> str:
    """A frontend sidecar's stats: calls to blue (2xx, 5xx) and green, blue's request times."""
    blue = "cds_egress_demos_vn-blue_http_80"
    green = "cds_egress_demos_vn-green_http_80"
    code = "envoy_response_code_class"
    prefix = "envoy_http_conn_manager_prefix"
    return "\n".join(
        [
            _line(RQ, ok_blue, **{code: "2", "envoy_cluster_name": blue}),
            _line(RQ, bad_blue, **{code: "5", "envoy_cluster_name": blue}),
            _line(RQ, ok_green, **{code: "2", "envoy_cluster_name": green}),
            _line(TIME, fast, envoy_cluster_name=blue, le="1"),
            _line(TIME, fast + slow, envoy_cluster_name=blue, le="10"),
            _line(TIME, fast + slow, envoy_cluster_name=blue, le="+Inf"),
            _line(RQ, 99, **{code: "2", "envoy_cluster_name": "cds_egress_demos_mesh-allow-all"}),
            _line(RQ, 5, **{code: "2", "envoy_cluster_name": "xds_cluster"}),
            _line(HTTP, 50, **{code: "2", prefix: "egress"}),
            _line(HTTP, 40, **{code: "2", prefix: "ingress"}),
        ]
    )


def test_target_of_reads_the_node_back_with_the_callers_mesh() -> None:
    """Egress clusters name their target node; other clusters and meshes name none."""
    assert traffic.target_of("cds_egress_demos_vn_a_b_http2_8080", "demos") == "vn_a_b"
    assert traffic.target_of("cds_egress_demos_mesh-allow-all", "demos") is None
    assert traffic.target_of("cds_egress_other_vn-a_http_80", "demos") is None
    assert traffic.target_of("xds_cluster", "demos") is None


def test_rates_give_rps_success_and_latency_per_node_and_target() -> None:
    """Two readings 2 s apart: blue got 20 (5 of them 5xx), green 10; the frontend received 40."""
    key = f"{FRONTEND}#front-0"
    before = {key: traffic.observe(key, FRONTEND, _caller(10, 0, 5, 10, 0))}
    after = {key: traffic.observe(key, FRONTEND, _caller(25, 5, 15, 20, 10))}
    rows = traffic.rates(before, after, 2.0)
    assert rows == [
        {
            "kind": "node",
            "mesh": "demos",
            "name": "vn-front",
            "proxies": 1,
            "requests": 0,
            "rps": 0.0,
            "success": None,
            "p50": None,
            "p99": None,
        },
        {
            "kind": "target",
            "mesh": "demos",
            "name": "vn-blue",
            "proxies": 1,
            "requests": 20,
            "rps": 10.0,
            "success": 75.0,
            "p50": 1.0,
            "p99": 9.82,
        },
        {
            "kind": "target",
            "mesh": "demos",
            "name": "vn-green",
            "proxies": 1,
            "requests": 10,
            "rps": 5.0,
            "success": 100.0,
            "p50": None,
            "p99": None,
        },
    ]


def test_replicas_are_summed_and_a_restarted_counter_counts_from_zero() -> None:
    """Two blue replicas' ingress add up; one restarted (40 → 3) contributes 3."""
    labels = {"envoy_response_code_class": "2", "envoy_http_conn_manager_prefix": "ingress"}
    zero, one = f"{BLUE}#blue-0", f"{BLUE}#blue-1"
    before = {
        zero: traffic.observe(zero, BLUE, _line(HTTP, 100, **labels)),
        one: traffic.observe(one, BLUE, _line(HTTP, 40, **labels)),
    }
    after = {
        zero: traffic.observe(zero, BLUE, _line(HTTP, 110, **labels)),
        one: traffic.observe(one, BLUE, _line(HTTP, 3, **labels)),
    }
    (row,) = traffic.rates(before, after, 1.0)
    assert (row["name"], row["proxies"], row["requests"], row["success"]) == (
        "vn-blue",
        2,
        10 + 3,
        100.0,
    )
