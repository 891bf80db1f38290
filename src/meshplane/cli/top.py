"""``meshplane top``: live traffic per virtual node and per weighted target, from Envoy stats.

``kubectl top`` shows resource use; for a mesh the question is "where does traffic go and
how is it doing?". Every interval this reads each connected sidecar's Envoy stats through
the control plane (``GET /meshplane/v1/proxies/stats``, one fixed place per proxy) and shows
two tables (numbers from :mod:`meshplane.sync.traffic`):

* **virtual nodes** — what each node's replicas received (their ingress listeners);
* **targets** — what callers sent to each target node (their egress clusters): the
  route's weights as they really split the traffic.

Each with requests/s, success % (answers that are not 5xx) and p50/p99 latency in ms over
the last interval. ``--once`` takes two readings ``--interval`` apart, prints, and exits
(``-o json`` for scripts); it exits 1 when no connected proxy reports stats.
"""

from __future__ import annotations

import json
import sys
import time
import types
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from meshplane import client
from meshplane.cli import signing
from meshplane.cli.manifests import Server

NODE, TARGET = "node", "target"
"""Row kinds (:data:`meshplane.sync.traffic.NODE`, ``TARGET``)."""


def _traffic() -> types.ModuleType:
    """:mod:`meshplane.sync.traffic`, imported only when ``top`` runs.

    It pulls in Envoy's protos (through :mod:`meshplane.envoy`), which every other
    command's start-up would pay for.
    """
    from meshplane.sync import traffic  # noqa: PLC0415 - see the docstring

    return traffic


class NoStats(Exception):
    """No connected proxy reported stats: nothing to show."""


def read(plane: client.MeshplaneClient, mesh: str | None) -> dict[str, Any]:
    """One reading: every connected proxy's totals by subject (of ``mesh`` if given)."""
    readings: dict[str, Any] = {}
    for proxy in plane.proxies().connected:
        if not proxy.get("stats"):
            continue
        try:
            text = plane.proxy_stats(proxy["key"])
        except client.ControlPlaneError:
            continue  # went away between the two calls: the next reading tells
        observed = _traffic().observe(proxy["key"], proxy["nodeId"], text)
        readings[proxy["key"]] = {s: t for s, t in observed.items() if mesh in {None, s.mesh}}
    if not readings:
        raise NoStats("no connected proxy reports stats (sidecars started by `meshplane up` do)")
    return readings


def _cell(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:g}{suffix}"


def tables(rows: list[dict[str, Any]], seconds: float) -> Group:
    """The two tables of one interval's rows."""
    shown = []
    for kind, title, who in (
        (NODE, "virtual nodes (received)", "REPLICAS"),
        (TARGET, "targets (sent by callers)", "CALLERS"),
    ):
        table = Table(title=f"{title}, last {seconds:.1f}s", title_justify="left")
        for column in ("MESH", "NODE", who, "RPS", "SUCCESS", "P50 MS", "P99 MS"):
            table.add_column(column, justify="left" if column in {"MESH", "NODE"} else "right")
        for row in rows:
            if row["kind"] == kind:
                table.add_row(
                    row["mesh"],
                    row["name"],
                    str(row["proxies"]),
                    f"{row['rps']:g}",
                    _cell(row["success"], "%"),
                    _cell(row["p50"]),
                    _cell(row["p99"]),
                )
        shown.append(table)
    return Group(*shown)


def register(cli: typer.Typer) -> None:
    """Add ``meshplane top`` to the CLI."""

    @cli.command()
    def top(
        server: Server = "http://127.0.0.1:9080",
        interval: Annotated[float, typer.Option(min=0.1, help="Seconds between readings.")] = 2.0,
        once: Annotated[
            bool, typer.Option("--once", help="Two readings, print, exit (for scripts).")
        ] = False,
        mesh: Annotated[str | None, typer.Option(help="Only this mesh.")] = None,
        output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    ) -> None:
        """Live requests/s, success % and p50/p99 per virtual node and per weighted target."""
        try:
            plane = signing.connect(server, timeout=5)
            before, then = read(plane, mesh), time.monotonic()
            console = Console(width=None if sys.stdout.isatty() else 200)
            if once:
                time.sleep(interval)
                after, now = read(plane, mesh), time.monotonic()
                rows = _traffic().rates(before, after, now - then)
                if output == "json":
                    typer.echo(json.dumps({"seconds": round(now - then, 3), "rows": rows}))
                else:
                    console.print(tables(rows, now - then))
                return
            with Live(tables([], 0.0), console=console, auto_refresh=False) as live:
                while True:
                    time.sleep(interval)
                    after, now = read(plane, mesh), time.monotonic()
                    rows = _traffic().rates(before, after, now - then)
                    live.update(tables(rows, now - then))
                    live.refresh()
                    before, then = after, now
        except NoStats as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        except (OSError, client.ControlPlaneError) as exc:
            typer.echo(f"error: cannot read stats from {server}: {exc}", err=True)
            raise typer.Exit(1) from exc
        except KeyboardInterrupt:
            return
