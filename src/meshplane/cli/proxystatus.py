"""``meshplane proxy-status``: whether a change reached every Envoy, and if not, why.

App Mesh never showed this (its users asked "did my change apply?" for years); Istio's
``istioctl proxy-status`` is the model. The control plane's read model decides each
proxy's state (``SYNCED``, ``NACKED``, ``STALE``, ``HELD``, ``DISCONNECTED``); this command
only shows it, and a NACK shows Envoy's own message. It exits 1 when any proxy is not
``SYNCED`` (after printing the report), so a script or CI job can gate on it. ``STATS``
is the sidecar's read-only stats listener (``GET /stats/prometheus`` there; through the
control plane: ``GET /meshplane/v1/proxies/stats?key=<PROXY>``).
"""

# No `from __future__ import annotations`: register()'s command is declared inside it, with
# typer imported there, so that importing this module (the fast path does) never loads typer.
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

from meshplane import client
from meshplane.cli import calling, signing

if TYPE_CHECKING:
    import typer


def fetch(server: str, plane: "client.MeshplaneClient | None" = None) -> "client.ProxiesReport":
    """The proxies report of the control plane at ``server`` (or through ``plane``)."""
    return (plane or signing.connect(server, timeout=5)).proxies()


class Answer(NamedTuple):
    """:class:`~meshplane.client.ProxiesReport`'s fields, as ``proxy-status`` reads them.

    ``proxy-status`` reads ``GET /proxies`` through the transport alone: the typed client's
    module (its dataclasses import :mod:`inspect`) was a fifth of the command's start-up.
    ``_asdict()`` is ``ProxiesReport.to_json()`` (``tests/cli/test_fastpath.py``).
    """

    revision: int
    converged: bool
    proxies: list[dict[str, Any]]


def answer(server: str) -> Answer:
    """The proxies report of the control plane at ``server``, as :func:`fetch` reads it."""
    got = signing.transport(server, timeout=5).call("GET", f"{calling.PREFIX}/proxies")
    return Answer(int(got["revision"]), bool(got["converged"]), list(got["proxies"]))


def converged(server: str, plane: "client.MeshplaneClient | None" = None) -> bool:
    """Whether at least one proxy is connected and the server says every one is synced."""
    report = fetch(server, plane)
    return bool(report.connected) and report.converged


def wait_converged(
    server: str, timeout: float = 30.0, plane: "client.MeshplaneClient | None" = None
) -> None:
    """Wait until every connected proxy is synced at the store's current revision."""
    plane = plane or signing.connect(server, timeout=5)
    plane.wait_for_revision(plane.health().revision, timeout)


def register(cli: "typer.Typer") -> None:
    """Add ``meshplane proxy-status`` to the CLI."""
    import typer  # noqa: PLC0415 - see the top of the module

    from meshplane.cli.manifests import Server  # noqa: PLC0415

    @cli.command("proxy-status")
    def proxy_status(
        server: Server = "http://127.0.0.1:9080",
        output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    ) -> None:
        """Show every Envoy's sync state: revision, ACKed versions, NACK messages, warnings."""
        code = run(server, output)
        if code:
            raise typer.Exit(code)


def run(server: str, output: str) -> int:
    """Print the report of the control plane at ``server``; 1 when a proxy is not SYNCED."""
    try:
        report = answer(server)
    except (OSError, client.ControlPlaneError) as exc:
        calling.err(
            f"error: cannot reach the control plane at {server}: {exc} "
            "(is `meshplane serve` running? set --server or MESHPLANE_SERVER)"
        )
        return 1
    if output == "json":
        calling.echo(json.dumps(report._asdict(), indent=2))
    else:
        _table(report)
    lagging = [p for p in report.proxies if p["state"] != "SYNCED"]
    if lagging:
        listed = ", ".join(f"{p['key']} ({p['state']})" for p in lagging)
        calling.err(f"{len(lagging)} of {len(report.proxies)} proxies not SYNCED: {listed}")
        return 1
    return 0


def _table(report: "client.ProxiesReport | Answer") -> None:
    """The report as a table on stdout (rich's, or the same text without rich for a pipe)."""
    from meshplane.cli import plaintables  # noqa: PLC0415

    title, rows = f"store revision {report.revision}", _rows(report)
    plain = plaintables.boxed(title, COLUMNS, rows, width=PIPE_WIDTH)
    if plain is not None:
        calling.echo(plain)
        return
    from rich.console import Console  # noqa: PLC0415 - the CLI's start-up: only a terminal's table
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title, title_justify="left")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else PIPE_WIDTH).print(table)


COLUMNS = ("PROXY", "STATE", "REVISION", "STATS", "CDS", "LDS", "EDS", "RDS", "NOTES")
PIPE_WIDTH = 200
"""The table's width when the output is not a terminal."""


def _rows(report: "client.ProxiesReport | Answer") -> list[list[str]]:
    """One row of :data:`COLUMNS` per proxy."""
    rows = []
    names = {"Cluster": "CDS", "Listener": "LDS", "ClusterLoadAssignment": "EDS"}
    names["RouteConfiguration"] = "RDS"
    for proxy in report.proxies:
        by_column = {names.get(k, k): v for k, v in proxy["types"].items()}
        cells = []
        for column in ("CDS", "LDS", "EDS", "RDS"):
            t = by_column.get(column)
            cells.append(
                "-"
                if t is None
                else (t["acked"] or "")[:8] + ("" if t["acked"] == t["sent"] else "*")
            )
        notes = [proxy["held"]] if proxy.get("held") else []
        notes += [t["lastNack"] for t in proxy["types"].values() if t["lastNack"]]
        notes += proxy["warnings"]
        rows.append(
            [
                proxy["key"],
                proxy["state"],
                str(proxy["revision"]),
                proxy.get("stats") or "-",
                *cells,
                "; ".join(notes),
            ]
        )
    return rows
