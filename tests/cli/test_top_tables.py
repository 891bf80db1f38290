"""`meshplane top`'s tables: one per row kind, numbers as measured, a dash for no requests."""

from __future__ import annotations

from rich.console import Console

from meshplane.cli import top

ROWS = [
    {"kind": "node", "mesh": "demos", "name": "vn-blue", "proxies": 2, "requests": 20,
     "rps": 10.0, "success": 100.0, "p50": 1.5, "p99": 9.82},
    {"kind": "target", "mesh": "demos", "name": "vn-green", "proxies": 1, "requests": 0,
     "rps": 0.0, "success": None, "p50": None, "p99": None},
]  # fmt: skip


def test_nodes_and_targets_get_a_table_each() -> None:
    """Replicas' received traffic and callers' sent traffic, each row in its own table."""
    console = Console(width=100, record=True)
    console.print(top.tables(ROWS, 2.0))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert lines[0] == "virtual nodes (received), last 2.0s"
    assert lines[2] == "┃ MESH  ┃ NODE    ┃ REPLICAS ┃ RPS ┃ SUCCESS ┃ P50 MS ┃ P99 MS ┃"
    assert lines[4] == "│ demos │ vn-blue │        2 │  10 │    100% │    1.5 │   9.82 │"
    assert lines[6] == "targets (sent by callers), last 2.0s"
    assert lines[8] == "┃ MESH  ┃ NODE     ┃ CALLERS ┃ RPS ┃ SUCCESS ┃ P50 MS ┃ P99 MS ┃"
    assert lines[10] == "│ demos │ vn-green │       1 │   0 │       - │      - │      - │"
