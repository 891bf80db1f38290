"""The Prometheus file_sd targets `up --prometheus-targets` keeps: one group per sidecar."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from meshplane.runtime import scraping
from meshplane.runtime.selecting import VIRTUAL_GATEWAY, Binding
from meshplane.runtime.sidecars import SidecarPorts
from meshplane.runtime.workloads import Workload


@dataclasses.dataclass
class Replica:
    """The three things a target is built from."""

    name: str
    workload: Workload
    binding: Binding | None
    ports: SidecarPorts | None


def _workload(name: str) -> Workload:
    return Workload(name, "demos", {}, ("{python}", "app.py"), {}, 80, 1, None, Path())


def test_targets_label_each_sidecar_and_skip_replicas_without_a_stats_port() -> None:
    """A node's and a gateway's sidecar are targets; a bare app and a port-0 sidecar are not."""
    ports = SidecarPorts(admin=0, egress=2, ingress={80: 3}, stats=4)
    replicas = [
        Replica("gw-0", _workload("gw"), Binding("demos", "vg", (80,), VIRTUAL_GATEWAY), ports),
        Replica("blue-0", _workload("blue"), Binding("demos", "vn-blue", (80,)), ports),
        Replica("bare-0", _workload("bare"), None, None),
        Replica(
            "old-0", _workload("old"), Binding("demos", "vn-old", (80,)), SidecarPorts(0, 2, {})
        ),
    ]
    assert scraping.targets(replicas) == [
        {
            "targets": ["127.0.0.1:4"],
            "labels": {
                "mesh": "demos",
                "virtual_node": "vn-blue",
                "workload": "blue",
                "replica": "blue-0",
            },
        },
        {
            "targets": ["127.0.0.1:4"],
            "labels": {
                "mesh": "demos",
                "virtual_gateway": "vg",
                "workload": "gw",
                "replica": "gw-0",
            },
        },
    ]


def test_write_replaces_the_file_only_when_the_targets_change(tmp_path: Path) -> None:
    """First write and a change write (True); the same targets again do not (False)."""
    path = tmp_path / "targets.json"
    groups = [{"targets": ["127.0.0.1:4"], "labels": {"replica": "a-0"}}]
    assert scraping.write(path, groups) is True
    assert scraping.write(path, groups) is False
    assert json.loads(path.read_text()) == groups
    assert scraping.write(path, []) is True
    assert json.loads(path.read_text()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["targets.json"]
