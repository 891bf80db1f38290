"""What ``meshplane up`` shows: prefixed process logs and a live table of replicas.

The table answers the operator's questions at a glance: is every replica up,
is its sidecar ready and in sync with the control plane — ``SYNCED r12``, the control
plane's own verdict at the proxy's mesh's revision, or ``STALE``/``NACKED`` — where its
stats listener is, how much traffic went through it, and how often it restarted. It fits
the terminal: at 80 columns the least needed columns go first (:data:`DROPPED_FIRST`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from rich.console import Console
from rich.table import Table
from rich.text import Text

from meshplane.runtime.ports import LOOPBACK
from meshplane.runtime.processes import LogSink
from meshplane.runtime.supervising import Replica, Supervisor

_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan")


def console_sink(console: Console) -> LogSink:
    """A sink printing ``name | line``, each process name in a stable colour."""
    colours: dict[str, str] = {}
    palette: Iterator[str] = itertools.cycle(_COLOURS)

    def sink(name: str, line: str) -> None:
        owner = name.split(" ", 1)[0]
        colour = colours.setdefault(owner, next(palette))
        console.print(Text(f"{name} | ", style=colour) + Text(line), soft_wrap=True)

    return sink


def prefixed(name: str, line: str) -> str:
    """The plain-text form of a log line: ``name | line``."""
    return f"{name} | {line}"


COLUMNS = (
    "workload",
    "replica",
    "pid",
    "app port",
    "node",
    "sidecar",
    "sync",
    "stats",
    "in",
    "out",
    "5xx",
    "restarts",
)
"""Every column, left to right, at a width that holds them all."""
DROPPED_FIRST = ("workload", "pid", "out", "5xx", "app port", "node", "in")
"""What a narrower terminal loses, in this order (the replica's name starts with its
workload's; ``proxy-status`` names each proxy's node). ``replica``, ``sidecar``, ``sync``,
``stats`` and ``restarts`` always stay."""
_NUMBERS = frozenset({"in", "out", "5xx", "restarts"})
_CELL = 3
"""Columns a cell adds to its text: a border and one space each side."""


def sync_state(replica: Replica, states: Mapping[str, tuple[str, int | None]]) -> str:
    """The sidecar's sync state: ``SYNCED r12`` as the control plane judges it.

    The revision is the one its snapshot was built at (judged against its mesh's); before
    the control plane has a view, what its own admin interface says (``down``, ``waiting``).
    """
    key = replica.proxy_key
    if key is not None and key in states:
        state, revision = states[key]
        return state if revision is None else f"{state} r{revision}"
    return replica.health.sync


def _rows(supervisor: Supervisor) -> list[dict[str, Text | str]]:
    rows: list[dict[str, Text | str]] = []
    for replica in supervisor.replicas:
        sidecar = replica.sidecar
        if sidecar is None:
            state, sync, node = "none", "-", "-"
        else:
            state = "ready" if replica.health.ready else sidecar.state.value
            sync = sync_state(replica, supervisor.proxy_states)
            node = replica.binding.virtual_node if replica.binding else "-"
        app = replica.app  # None for a gateway: its Envoy is the whole replica
        restarts = (app.restarts if app else 0) + (sidecar.restarts if sidecar else 0)
        healthy = sync.startswith("SYNCED") or sync.startswith("synced") or sync == "-"
        rows.append(
            {
                "workload": replica.workload.name,
                "replica": replica.name,
                "pid": str((app.pid if app else None) or "-"),
                "app port": str(replica.app_port) if app else "-",
                "node": node,
                "sidecar": Text(state, style="green" if state in {"ready", "none"} else "yellow"),
                "sync": Text(
                    sync, style="" if healthy else ("red" if "NACK" in sync else "yellow")
                ),
                # The read-only stats listener: http://127.0.0.1:<port>/stats/prometheus.
                "stats": f":{replica.ports.stats}"
                if replica.ports and replica.ports.stats
                else "-",
                "in": str(replica.health.ingress_requests),
                "out": str(replica.health.egress_requests),
                "5xx": str(replica.health.errors_5xx),
                "restarts": str(restarts),
            }
        )
    for workload in sorted(supervisor.waiting):
        rows.append(
            {
                **dict.fromkeys(COLUMNS, "-"),
                "workload": workload,
                "replica": workload,
                "sidecar": Text("waiting", style="yellow"),
            }
        )
    return rows


def columns_for(rows: list[dict[str, Text | str]], width: int | None) -> list[str]:
    """The columns shown at ``width`` characters (None: all): dropped in DROPPED_FIRST order."""
    shown = list(COLUMNS)
    if width is None:
        return shown
    need = {c: max([len(c), *(len(str(row[c])) for row in rows)]) + _CELL for c in COLUMNS}
    for column in DROPPED_FIRST:
        if sum(need[c] for c in shown) + 1 <= width:
            break
        shown.remove(column)
    return shown


def table(supervisor: Supervisor, width: int | None = None) -> Table:
    """One row per replica (and one per workload still waiting for its VirtualNode).

    At ``width`` (the terminal's) columns are dropped in :data:`DROPPED_FIRST` order until
    the table fits; why a workload waits, and where to find each sidecar's stats, go in
    the caption below it, which wraps.
    """
    rows = _rows(supervisor)
    shown = columns_for(rows, width)
    grid = Table(title="meshplane up", title_justify="left", expand=False)
    for header in shown:
        grid.add_column(header, justify="right" if header in _NUMBERS else "left", no_wrap=True)
    for row in rows:
        grid.add_row(*(row[c] for c in shown))
    notes = [f"{name} waits: {reason}" for name, reason in sorted(supervisor.waiting.items())]
    notes += [
        f"{name}: http://{forwarder.host}:{forwarder.port}"
        for name, forwarder in sorted(supervisor.forwarders.items())
    ]
    notes.append(f"stats: http://{LOOPBACK}:<stats>/stats/prometheus")
    grid.caption = "   ".join(notes)
    grid.caption_justify = "left"
    return grid
