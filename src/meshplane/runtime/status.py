"""What ``meshplane up`` shows: prefixed process logs and a live table of replicas.

The table answers the operator's questions at a glance: is every replica up,
is its sidecar ready and in sync with the control plane — ``SYNCED r12``, the control
plane's own verdict at the proxy's mesh's revision, or ``STALE``/``NACKED`` — where its
stats listener is, how much traffic went through it, and how often it restarted. It fits
the terminal as kubectl's and k9s's tables do, abbreviating before it drops anything: first
shorter headers (:data:`SHORT`), then counts as ``123k``, then long names cut in the middle
with an ellipsis (``echo-…green-0`` keeps the replica's number); only when all of that is
not enough do columns go, least needed first (:data:`DROPPED_FIRST`), and each time the
abbreviations are tried again on what is left. Columns keep their order.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping, Sequence

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
DROPPED_FIRST = ("workload", "pid", "out", "5xx", "app port", "node", "in", "stats", "restarts")
"""What a terminal too narrow for every column abbreviated loses, in this order (the
replica's name starts with its workload's; ``proxy-status`` names each proxy's node; the
stats port and the restarts go last). ``replica``, ``sidecar`` and ``sync`` always stay."""
SHORT = {"workload": "wkld", "app port": "port", "sidecar": "envoy", "restarts": "rst"}
"""Shorter headers, the first abbreviation (``sidecar`` shows its Envoy's state)."""
NAMES = ("workload", "node", "replica")
"""Columns of names, cut when still too wide, in this order: the workload is the start of
the replica's name, the node is in ``proxy-status``, the replica is the row's key."""
NAME_MIN = 9
"""The narrowest a name is cut to: ``ech…een-0`` still tells replicas apart."""
_NUMBERS = frozenset({"in", "out", "5xx", "restarts"})
_COUNTS = ("in", "out", "5xx")
"""Request counts, shown as ``123k`` in the second abbreviation."""
_CELL = 3
"""Columns a cell adds to its text: a border and one space each side."""
ELLIPSIS = "…"


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


def count(text: str) -> str:
    """A request count in at most 5 characters: ``9999``, ``12.3k``, ``654k``, ``1.2M``."""
    if not text.isdigit() or int(text) < 10_000:
        return text
    value = int(text)
    for limit, suffix in ((1_000_000, "k"), (1_000_000_000, "M"), (10**12, "G")):
        scaled = value / (limit // 1000)
        if value < limit:
            # 99,960 is 100k, not 100.0k: decide on the rounded figure.
            return f"{scaled:.1f}{suffix}" if round(scaled, 1) < 100 else f"{scaled:.0f}{suffix}"
    return text


def middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by an ellipsis, keeping two thirds of its end.

    The end tells names apart (``…green-0``, ``…blue-1``); the start says whose they are.
    """
    if len(text) <= width:
        return text
    tail = (width - 1) * 2 // 3
    return text[: width - 1 - tail] + ELLIPSIS + text[len(text) - tail :]


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which columns show, under which headers, at which widths, with counts compacted."""

    columns: list[str]
    headers: dict[str, str]
    widths: dict[str, int]
    compact: bool

    @property
    def width(self) -> int:
        """The table's width in characters, borders included."""
        return sum(self.widths[c] for c in self.columns) + _CELL * len(self.columns) + 1


def _attempts(rows: Sequence[Mapping[str, Text | str]], shown: list[str]) -> Iterator[Layout]:
    """The layouts of ``shown``, each more abbreviated than the one before."""

    def measured(headers: dict[str, str], compact: bool) -> Layout:
        def cell(column: str, row: Mapping[str, Text | str]) -> int:
            text = str(row[column])
            return len(count(text) if compact and column in _COUNTS else text)

        widths = {c: max([len(headers[c]), *(cell(c, row) for row in rows)]) for c in shown}
        return Layout(shown, headers, widths, compact)

    full = {c: c for c in shown}
    yield measured(full, compact=False)
    short = {c: SHORT.get(c, c) for c in shown}
    yield measured(short, compact=False)
    yield measured(short, compact=True)


def _cut_names(layout: Layout, width: int) -> Layout:
    """``layout`` with its name columns narrowed until it fits (:data:`NAMES`, NAME_MIN)."""
    widths = dict(layout.widths)
    excess = layout.width - width
    for column in (c for c in NAMES if c in layout.columns):
        least = max(NAME_MIN, len(layout.headers[column]))
        cut = max(0, min(excess, widths[column] - least))
        widths[column] -= cut
        excess -= cut
    return dataclasses.replace(layout, widths=widths)


def layout_for(rows: Sequence[Mapping[str, Text | str]], width: int | None) -> Layout:
    """The layout at ``width`` characters (None: every column, nothing abbreviated)."""
    shown = list(COLUMNS)
    best = next(_attempts(rows, shown))
    if width is None:
        return best
    for dropped in range(len(DROPPED_FIRST) + 1):
        shown = [c for c in COLUMNS if c not in DROPPED_FIRST[:dropped]]
        for attempt in _attempts(rows, shown):
            best = attempt
            if attempt.width <= width:
                return attempt
        best = _cut_names(best, width)
        if best.width <= width:
            return best
    return best  # narrower than replica, sidecar and sync: the terminal cuts the rest


def columns_for(rows: list[dict[str, Text | str]], width: int | None) -> list[str]:
    """The columns shown at ``width`` characters (None: all), in :data:`COLUMNS` order."""
    return layout_for(rows, width).columns


def _cell(layout: Layout, column: str, value: Text | str) -> Text | str:
    """``value`` as ``layout`` shows it: a count compacted, a name cut to its column."""
    if isinstance(value, Text):
        return value
    if layout.compact and column in _COUNTS:
        return count(value)
    return middle(value, layout.widths[column])


def table(supervisor: Supervisor, width: int | None = None) -> Table:
    """One row per replica (and one per workload still waiting for its VirtualNode).

    At ``width`` (the terminal's) headers, counts and names are abbreviated until the table
    fits, and only then are columns dropped, in :data:`DROPPED_FIRST` order
    (:func:`layout_for`); why a workload waits, and where to find each sidecar's stats, go
    in the caption below it, which wraps.
    """
    rows = _rows(supervisor)
    layout = layout_for(rows, width)
    grid = Table(title="meshplane up", title_justify="left", expand=False)
    for column in layout.columns:
        grid.add_column(
            layout.headers[column],
            justify="right" if column in _NUMBERS else "left",
            no_wrap=True,
        )
    for row in rows:
        grid.add_row(*(_cell(layout, c, row[c]) for c in layout.columns))
    notes = [f"{name} waits: {reason}" for name, reason in sorted(supervisor.waiting.items())]
    notes += [
        f"{name}: http://{forwarder.host}:{forwarder.port}"
        for name, forwarder in sorted(supervisor.forwarders.items())
    ]
    notes.append(f"stats: http://{LOOPBACK}:<stats>/stats/prometheus")
    grid.caption = "   ".join(notes)
    grid.caption_justify = "left"
    return grid
