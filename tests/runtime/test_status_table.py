"""`up`'s live table fits the terminal: 80 columns keep replica, sidecar, sync, stats, restarts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
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


AT_80 = """\
meshplane up
┏━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━┳━━━━━┓
┃ replica     ┃ port  ┃ node      ┃ envoy   ┃ sync       ┃ stats  ┃   in ┃ rst ┃
┡━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━╇━━━━━┩
│ echo…reen-0 │ 41000 │ vn-…green │ ready   │ SYNCED r12 │ :44000 │ 123k │   0 │
│ echo…blue-0 │ 41001 │ vn-…-blue │ ready   │ STALE r11  │ :44001 │ 123k │   0 │
│ echo-canary │ -     │ -         │ waiting │ -          │ -      │    - │   - │
└─────────────┴───────┴───────────┴─────────┴────────────┴────────┴──────┴─────┘
echo-canary waits: no VirtualNode in namespace demos selects app=canary   stats:
http://127.0.0.1:<stats>/stats/prometheus"""

AT_60 = """\
meshplane up
┏━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━┳━━━━━┓
┃ replica     ┃ envoy   ┃ sync       ┃ stats  ┃   in ┃ rst ┃
┡━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━╇━━━━━┩
│ echo…reen-0 │ ready   │ SYNCED r12 │ :44000 │ 123k │   0 │
│ echo…blue-0 │ ready   │ STALE r11  │ :44001 │ 123k │   0 │
│ echo-canary │ waiting │ -          │ -      │    - │   - │
└─────────────┴─────────┴────────────┴────────┴──────┴─────┘
echo-canary waits: no VirtualNode in namespace demos selects
app=canary   stats:
http://127.0.0.1:<stats>/stats/prometheus"""

AT_40 = """\
meshplane up
┏━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━┓
┃ replica       ┃ envoy   ┃ sync       ┃
┡━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━┩
│ echo…-green-0 │ ready   │ SYNCED r12 │
│ echo…d-blue-0 │ ready   │ STALE r11  │
│ echo-canary   │ waiting │ -          │
└───────────────┴─────────┴────────────┘
echo-canary waits: no VirtualNode in
namespace demos selects app=canary
stats:
http://127.0.0.1:<stats>/stats/prometheu
s"""


@pytest.mark.parametrize(("width", "expected"), [(80, AT_80), (60, AT_60), (40, AT_40)])
def test_a_narrower_terminal_abbreviates_headers_counts_and_names_before_dropping_columns(
    tmp_path: Path, width: int, expected: str
) -> None:
    """Exact tables: at 80 columns short headers, counts as 123k, names cut in the middle
    keeping their ends, and only workload, pid, out and 5xx gone; at 60 port and node go
    too; at 40 only replica, envoy (the sidecar) and sync stay; order kept throughout."""
    lines = [line.rstrip() for line in _render(_supervisor(tmp_path), width)]
    assert "\n".join(lines) == expected
    assert max(len(line) for line in lines) <= width


def test_a_wide_terminal_shows_every_column_and_narrower_ones_drop_in_order(
    tmp_path: Path,
) -> None:
    """No width: all 12 columns, nothing cut; at 140 and 120 all 12 still, abbreviated; below,
    what goes goes in DROPPED_FIRST order, and every table fits its width."""
    supervisor = _supervisor(tmp_path)
    rows = status._rows(supervisor)
    assert status.columns_for(rows, None) == list(status.COLUMNS)
    assert status.columns_for(rows, 200) == list(status.COLUMNS)
    full = _render(supervisor, None)
    assert "│ echo-backend-green │ echo-backend-green-0 │ -   │ 41000    │" in full[4]
    assert full[4].endswith("│ 123456 │ 654321 │  12 │        0 │")
    dropped = []
    for width in (140, 120, 100, 80, 60, 40):
        shown = status.columns_for(rows, width)
        gone = [c for c in status.COLUMNS if c not in shown]
        assert gone == sorted(status.DROPPED_FIRST[: len(gone)], key=status.COLUMNS.index)
        dropped.append(len(gone))
        assert max(len(line) for line in _render(supervisor, width)) <= width
    assert dropped == [0, 0, 1, 4, 6, 9]


def test_counts_take_at_most_five_characters_and_names_keep_their_ends() -> None:
    """count(): as is below 10,000, then k/M with one decimal below 100; middle(): the end
    keeps two thirds of what is left, an ellipsis joins it to the start."""
    counts = ("-", "0", "9999", "12345", "99960", "654321", "1234567")
    assert [status.count(n) for n in counts] == [
        "-",
        "0",
        "9999",
        "12.3k",
        "100k",
        "654k",
        "1.2M",
    ]
    assert status.middle("echo-backend-green-0", 20) == "echo-backend-green-0"
    assert status.middle("echo-backend-green-0", 11) == "echo…reen-0"
    assert status.middle("echo-backend-green-0", 9) == "ech…een-0"
