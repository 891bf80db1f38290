"""`up`'s live table fits the terminal: 80 columns keep replica, sidecar, sync, stats, restarts."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from meshplane.runtime import admin, processes, selecting, sidecars, status
from meshplane.runtime.supervising import Replica, RuntimeOptions, Supervisor
from meshplane.runtime.workloads import Workload


def _supervisor(tmp_path: Path) -> Supervisor:
    """Two replicas of the walkthrough's longest names (never started: the table reads state)."""
    supervisor = Supervisor([], RuntimeOptions(), lambda _name, _line: None)
    for index, (workload, node) in enumerate(
        (
            ("echo-backend-green", "vn-echo-backend-green"),
            ("echo-frontend-blue", "vn-echo-frontend-blue"),
        )
    ):
        declared = Workload(workload, "demos", {}, ("app",), {}, 80, 1, None, tmp_path)
        spec = processes.ProcessSpec(f"{workload}-0", ["app"], {})
        replica = Replica(
            declared,
            0,
            41000 + index,
            processes.ManagedProcess(spec, lambda _name, _line: None),
            selecting.Binding("demos", node, (80,)),
            sidecars.SidecarPorts(0, 42000, {80: 43000}, stats=44000 + index),
            processes.ManagedProcess(spec, lambda _name, _line: None),
            health=admin.SidecarHealth(
                reachable=True,
                ready=True,
                versions={"lds": "0123456789abcdef"},
                ingress_requests=123456,
                egress_requests=654321,
                errors_5xx=12,
            ),
        )
        supervisor.replicas.append(replica)
    supervisor.proxy_states = {
        "mesh/demos/virtualNode/vn-echo-backend-green#echo-backend-green-0": ("SYNCED", 12),
        "mesh/demos/virtualNode/vn-echo-frontend-blue#echo-frontend-blue-0": ("STALE", 11),
    }
    supervisor.waiting["echo-canary"] = "no VirtualNode in namespace demos selects app=canary"
    return supervisor


def _render(supervisor: Supervisor, width: int | None) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width or 200, color_system=None, legacy_windows=False)
    console.print(status.table(supervisor, width))
    return out.getvalue().splitlines()


def test_at_80_columns_the_table_fits_and_keeps_sync_by_revision_and_stats(
    tmp_path: Path,
) -> None:
    """Every line ≤ 80 characters; the headers are the kept ones, in order; each sidecar's
    row shows its stats port and the control plane's verdict with the revision."""
    supervisor = _supervisor(tmp_path)
    lines = _render(supervisor, 80)
    assert max(len(line) for line in lines) <= 80
    shown = status.columns_for(status._rows(supervisor), 80)
    assert shown == ["replica", "sidecar", "sync", "stats", "in", "restarts"]
    green = next(line for line in lines if "echo-backend-green-0" in line)
    assert green.split("│")[1:-1] == [
        " echo-backend-green-0 ",
        " ready   ",
        " SYNCED r12 ",
        " :44000 ",
        " 123456 ",
        "        0 ",
    ]
    assert any(" STALE r11 " in line and ":44001" in line for line in lines)
    caption = " ".join(lines[lines.index(green) :])
    assert "echo-canary waits: no VirtualNode in namespace demos selects app=canary" in " ".join(
        caption.split()
    )


def test_a_wide_terminal_shows_every_column_and_narrower_ones_drop_in_order(
    tmp_path: Path,
) -> None:
    """No width: all 12 columns; each narrower width drops the next of DROPPED_FIRST only."""
    supervisor = _supervisor(tmp_path)
    rows = status._rows(supervisor)
    assert status.columns_for(rows, None) == list(status.COLUMNS)
    assert status.columns_for(rows, 200) == list(status.COLUMNS)
    dropped = []
    for width in (140, 120, 100, 80, 60):
        shown = status.columns_for(rows, width)
        gone = [c for c in status.COLUMNS if c not in shown]
        assert gone == sorted(status.DROPPED_FIRST[: len(gone)], key=status.COLUMNS.index)
        dropped.append(len(gone))
    assert dropped == [1, 3, 5, 6, 7]
    for width in (140, 120, 100, 80):
        assert max(len(line) for line in _render(supervisor, width)) <= width
