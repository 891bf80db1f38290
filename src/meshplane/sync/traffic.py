"""Live traffic per virtual node and per weighted target, from the sidecars' Envoy stats.

``meshplane top`` and the console's topology read the same numbers, defined once here.
Each sidecar's ``/stats/prometheus`` (:mod:`meshplane.envoy.statstext`) yields, for the
proxy's own node, what arrived at its ingress listener(s) (``envoy_http_…downstream_rq_*``,
stat prefix ``ingress…``) and, per target virtual node it calls, what its egress cluster
sent there (``envoy_cluster_upstream_rq_*``; the cluster is App Mesh's
``cds_egress_<mesh>_<node>_<protocol>_<port>``, read back with the caller's mesh and the
fixed protocol/port tail, see :func:`target_of`). A *target* row is the callers' view of a
node: how the route's weights actually split the traffic; a *node* row is the node's own.

Counters and histogram buckets are cumulative, so rates come from two readings:
:func:`rates` turns ``before``/``after`` readings and the seconds between them into
requests per second, success % (answers that are not 5xx) and p50/p99 in milliseconds.
A counter that went down (the sidecar restarted) counts from zero; a proxy first seen in
the later reading counts from that reading on.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from meshplane.envoy import statstext
from meshplane.model import naming

NODE, TARGET = "node", "target"
_EGRESS_TAIL = re.compile(r"^(?P<name>.+)_(?:http|http2|grpc|tcp)_\d+$")


@dataclasses.dataclass(frozen=True, order=True)
class Subject:
    """What a row is about: a node's own ingress, or the callers' traffic to a target node."""

    kind: str
    mesh: str
    name: str


@dataclasses.dataclass
class Totals:
    """Cumulative counts for one subject, summed over the proxies that reported it."""

    requests: float = 0.0
    errors: float = 0.0
    """Answers of class 5xx."""
    buckets: dict[float, float] = dataclasses.field(default_factory=dict)
    """Request time in ms: upper bound → cumulative count."""
    proxies: set[str] = dataclasses.field(default_factory=set)
    """The proxy keys that reported it (a node's replicas, or a target's callers)."""

    def add(self, other: Totals) -> None:
        """Fold ``other`` into these totals."""
        self.requests += other.requests
        self.errors += other.errors
        for bound, count in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0.0) + count
        self.proxies |= other.proxies


def target_of(cluster: str, mesh: str) -> str | None:
    """The target virtual node of egress cluster ``cluster`` in ``mesh``, else ``None``."""
    prefix = f"cds_egress_{mesh}_"
    if not cluster.startswith(prefix):
        return None
    found = _EGRESS_TAIL.match(cluster[len(prefix) :])
    return found["name"] if found else None


def _subject(sample: statstext.Sample, mesh: str, own: Subject) -> Subject | None:
    name = sample.name
    if name.startswith("envoy_cluster_upstream_rq_"):
        target = target_of(sample.label("envoy_cluster_name"), mesh)
        return Subject(TARGET, mesh, target) if target is not None else None
    if name.startswith("envoy_http_") and "downstream_rq_" in name:
        prefix = sample.label("envoy_http_conn_manager_prefix")
        return own if prefix.startswith("ingress") else None
    return None


def observe(key: str, node_id: str, text: str) -> dict[Subject, Totals]:
    """One proxy's cumulative totals by subject, from its ``/stats/prometheus`` ``text``."""
    ref = naming.parse_node_id(node_id)
    if ref is None:
        return {}
    own = Subject(NODE, ref.mesh, ref.name)
    found: dict[Subject, Totals] = {}
    for sample in statstext.parse(text):
        subject = _subject(sample, ref.mesh, own)
        if subject is None:
            continue
        totals = found.setdefault(subject, Totals(proxies={key}))
        if sample.name.endswith("_rq_xx"):
            totals.requests += sample.value
            if sample.label("envoy_response_code_class") == "5":
                totals.errors += sample.value
        elif sample.name.endswith("_rq_time_bucket"):
            bound = float(sample.label("le"))
            totals.buckets[bound] = totals.buckets.get(bound, 0.0) + sample.value
    return {s: t for s, t in found.items() if t.requests or t.buckets}


Reading = Mapping[str, Mapping[Subject, Totals]]
"""One reading of several proxies: proxy key → its :func:`observe` totals."""


def _delta(after: float, before: float) -> float:
    return after - before if after >= before else after


def _interval(now: Totals, then: Totals | None) -> Totals:
    """What one proxy counted between two readings (all of ``now`` if it restarted).

    A proxy (or subject) missing from the earlier reading contributes nothing yet: its
    totals since Envoy started are a baseline, not traffic of this interval.
    """
    if then is None:
        return Totals(proxies=now.proxies)
    if now.requests < then.requests:
        return now
    buckets = {b: _delta(c, then.buckets.get(b, 0.0)) for b, c in now.buckets.items()}
    return Totals(
        now.requests - then.requests, _delta(now.errors, then.errors), buckets, now.proxies
    )


def rates(before: Reading, after: Reading, seconds: float) -> list[dict[str, Any]]:
    """One row per subject seen in ``after``: rps, success %, p50/p99 (ms) over the interval.

    Differences are taken per proxy (a restarted sidecar counts from zero, the others
    are unaffected), then summed per subject. ``success``, ``p50`` and ``p99`` are
    ``None`` when no request finished in the interval.
    """
    summed: dict[Subject, Totals] = {}
    for key, subjects in after.items():
        earlier = before.get(key, {})
        for subject, now in subjects.items():
            summed.setdefault(subject, Totals()).add(_interval(now, earlier.get(subject)))
    rows = []
    for subject, totals in sorted(summed.items()):
        requests, errors = totals.requests, totals.errors
        p50 = statstext.quantile(0.5, totals.buckets)
        p99 = statstext.quantile(0.99, totals.buckets)
        rows.append(
            {
                "kind": subject.kind,
                "mesh": subject.mesh,
                "name": subject.name,
                "proxies": len(totals.proxies),
                "requests": int(requests),
                "rps": round(requests / seconds, 2) if seconds > 0 else 0.0,
                "success": round(100.0 * (requests - errors) / requests, 2) if requests else None,
                "p50": None if p50 is None else round(p50, 3),
                "p99": None if p99 is None else round(p99, 3),
            }
        )
    return rows
