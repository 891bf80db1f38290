"""Where Prometheus finds ``up``'s sidecars: a ``file_sd`` targets file kept current.

Each sidecar's stats listener (:mod:`meshplane.envoy.statslistener`) binds a free
loopback port chosen at start, so a static scrape config cannot name it. Prometheus's
``file_sd_configs`` re-reads a JSON file whenever it changes; ``meshplane up
--prometheus-targets FILE`` writes one group per sidecar there, labelled with the mesh,
virtual node (or gateway), workload and replica (``examples/prometheus``). The file is
replaced atomically (write, then rename), so Prometheus never reads half of it, and only
when a target changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from meshplane.runtime.ports import LOOPBACK
from meshplane.runtime.selecting import Binding
from meshplane.runtime.sidecars import SidecarPorts
from meshplane.runtime.workloads import Workload

METRICS_PATH = "/stats/prometheus"


class Scraped(Protocol):
    """What a target is built from: one replica (``supervising.Replica``)."""

    @property
    def name(self) -> str:
        """The replica's name."""

    @property
    def workload(self) -> Workload:
        """The workload it is a copy of."""

    @property
    def binding(self) -> Binding | None:
        """The node its sidecar serves."""

    @property
    def ports(self) -> SidecarPorts | None:
        """Its sidecar's ports."""


def targets(replicas: Iterable[Scraped]) -> list[dict[str, Any]]:
    """One ``file_sd`` group per replica with a stats port, ordered by replica name."""
    groups = []
    for replica in replicas:
        if replica.binding is None or replica.ports is None or not replica.ports.stats:
            continue
        groups.append(
            {
                "targets": [f"{LOOPBACK}:{replica.ports.stats}"],
                "labels": {
                    "mesh": replica.binding.mesh,
                    ("virtual_gateway" if replica.binding.is_gateway else "virtual_node"): (
                        replica.binding.virtual_node
                    ),
                    "workload": replica.workload.name,
                    "replica": replica.name,
                },
            }
        )
    return sorted(groups, key=lambda group: group["labels"]["replica"])


def write(path: Path, groups: list[dict[str, Any]]) -> bool:
    """Replace ``path`` with ``groups`` unless it holds them already; whether it wrote."""
    text = json.dumps(groups, indent=2, sort_keys=True) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return True
