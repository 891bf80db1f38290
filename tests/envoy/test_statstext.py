"""Envoy's Prometheus text: samples with labels, and quantiles from cumulative buckets."""

from __future__ import annotations

import math

from meshplane.envoy import statstext

TEXT = """# TYPE envoy_cluster_upstream_rq_xx counter
envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="c"} 12
envoy_server_live{} 1
plain_metric 3.5
weird{a="x\\"y",b="p,q"} 7
not a sample line
"""


def test_parse_reads_names_labels_and_values_and_skips_bad_lines() -> None:
    """Comments and a bad line are skipped; labels are sorted, quotes unescaped, commas kept."""
    assert list(statstext.parse(TEXT)) == [
        statstext.Sample(
            "envoy_cluster_upstream_rq_xx",
            (("envoy_cluster_name", "c"), ("envoy_response_code_class", "2")),
            12.0,
        ),
        statstext.Sample("envoy_server_live", (), 1.0),
        statstext.Sample("plain_metric", (), 3.5),
        statstext.Sample("weird", (("a", 'x"y'), ("b", "p,q")), 7.0),
    ]


def test_quantile_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    """10 requests: 4 ≤ 1 ms, 6 more ≤ 5 ms → p50 = 1 + 4·(1/6) ms, p99 = 1 + 4·(5.9/6) ms."""
    buckets = {0.5: 0.0, 1.0: 4.0, 5.0: 10.0, math.inf: 10.0}
    assert statstext.quantile(0.5, buckets) == 1.0 + 4.0 * (1.0 / 6.0)
    assert statstext.quantile(0.99, buckets) == 1.0 + 4.0 * (5.9 / 6.0)


def test_quantile_of_nothing_is_none_and_the_inf_bucket_reads_as_the_last_bound() -> None:
    """Empty or zero buckets give None; a rank beyond every finite bound gives the last one."""
    assert statstext.quantile(0.5, {}) is None
    assert statstext.quantile(0.5, {1.0: 0.0, math.inf: 0.0}) is None
    assert statstext.quantile(0.99, {1.0: 1.0, 10.0: 1.0, math.inf: 100.0}) == 10.0
