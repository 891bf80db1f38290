"""What ``meshplane up`` shows: prefixed process logs and a live table of replicas.

The table answers the operator's questions at a glance: is every replica up,
is its sidecar ready and in sync with the control plane (or did Envoy NACK the
last config), how much traffic went through it, and how often it restarted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from rich.console import Console
from rich.table import Table
from rich.text import Text

from meshplane.runtime.ports import LOOPBACK
from meshplane.runtime.processes import LogSink
from meshplane.runtime.supervising import Supervisor

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


def table(supervisor: Supervisor) -> Table:
    """One row per replica (and one per workload still waiting for its VirtualNode)."""
    grid = Table(title="meshplane up", title_justify="left", expand=False)
    for header in ("workload", "replica", "pid", "app port", "node", "sidecar", "sync", "stats"):
        grid.add_column(header)
    for header in ("in", "out", "5xx", "restarts"):
        grid.add_column(header, justify="right")
    for replica in supervisor.replicas:
        sidecar = replica.sidecar
        if sidecar is None:
            state, sync, node = "none", "-", "-"
        else:
            state = "ready" if replica.health.ready else sidecar.state.value
            sync = replica.health.sync
            node = replica.binding.virtual_node if replica.binding else "-"
        app = replica.app  # None for a gateway: its Envoy is the whole replica
        restarts = (app.restarts if app else 0) + (sidecar.restarts if sidecar else 0)
        grid.add_row(
            replica.workload.name,
            replica.name,
            str((app.pid if app else None) or "-"),
            str(replica.app_port) if app else "-",
            node,
            Text(state, style="green" if state in {"ready", "none"} else "yellow"),
            Text(sync, style="red" if sync.startswith("NACK") else ""),
            # The read-only stats listener: http://127.0.0.1:<port>/stats/prometheus.
            f":{replica.ports.stats}" if replica.ports and replica.ports.stats else "-",
            str(replica.health.ingress_requests),
            str(replica.health.egress_requests),
            str(replica.health.errors_5xx),
            str(restarts),
        )
    for workload, reason in sorted(supervisor.waiting.items()):
        grid.add_row(
            workload, "-", "-", "-", "-", Text("waiting", style="yellow"), reason[:60], "-"
        )
    published = [
        f"{name}: http://{forwarder.host}:{forwarder.port}"
        for name, forwarder in sorted(supervisor.forwarders.items())
    ]
    published.append(f"stats: http://{LOOPBACK}:<stats>/stats/prometheus")
    grid.caption = "   ".join(published)
    return grid
