"""Reading Envoy's ``/stats/prometheus`` text: samples, and quantiles from histogram buckets.

Envoy writes its stats in Prometheus's text format with its tag extractors applied, so a
cluster's counters carry the cluster as a label::

    envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="c"} 12
    envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="c",le="0.5"} 3

Histogram buckets are cumulative since Envoy started, so a quantile *over an interval*
comes from the difference of two readings' buckets (:func:`quantile`, linear within a
bucket, as Prometheus's ``histogram_quantile`` does). Only what ``meshplane top`` and the
console need is here; this is not a general parser (no timestamps, no exemplars).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence

Labels = tuple[tuple[str, str], ...]
"""A sample's labels, sorted by name (hashable, so samples can be keyed by them)."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One line of the text format: metric name, labels, value."""

    name: str
    labels: Labels
    value: float

    def label(self, name: str) -> str:
        """The value of label ``name``, or ``""``."""
        return dict(self.labels).get(name, "")


def _labels(text: str) -> Labels:
    """``a="x",b="y"`` → ``(("a", "x"), ("b", "y"))``; backslash escapes are undone."""
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(text):
        equals = text.index("=", index)
        name = text[index:equals].strip().lstrip(",").strip()
        index = equals + 2  # past ="
        value: list[str] = []
        while text[index] != '"':
            if text[index] == "\\":
                index += 1
                value.append("\n" if text[index] == "n" else text[index])
            else:
                value.append(text[index])
            index += 1
        found.append((name, "".join(value)))
        index += 1
        while index < len(text) and text[index] in ", ":
            index += 1
    return tuple(sorted(found))


def parse(text: str) -> Iterator[Sample]:
    """Every sample in ``text`` (comment and blank lines skipped; a bad line is skipped too)."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if "{" in line:
                name, rest = line.split("{", 1)
                inside, value = rest.rsplit("}", 1)
                labels = _labels(inside)
            else:
                name, value = line.split(None, 1)
                labels = ()
            yield Sample(name, labels, float(value.split()[0]))
        except (ValueError, IndexError):
            continue


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile (0..1) of cumulative ``buckets`` (upper bound → count); ``None`` if empty.

    Linear interpolation inside the bucket the rank falls in; a rank in the ``+Inf``
    bucket reads as the largest finite bound (nothing more precise is known).
    """
    bounds: Sequence[float] = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower
