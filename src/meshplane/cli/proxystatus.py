"""``meshplane proxy-status``: whether a change reached every Envoy, and if not, why.

App Mesh never showed this (its users asked "did my change apply?" for years); Istio's
``istioctl proxy-status`` is the model. A proxy is *synced* when its snapshot was
built from the store's current revision and Envoy ACKed all of that snapshot;
a NACK shows Envoy's own message.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from meshplane.cli.manifests import Server

PROXIES_PATH = "/meshplane/v1/proxies"


def fetch(server: str) -> tuple[int, list[dict[str, Any]]]:
    """The store revision and the proxies report of the control plane at ``server``."""
    with urllib.request.urlopen(f"{server}/healthz", timeout=5) as answer:
        revision = int(json.loads(answer.read())["revision"])
    with urllib.request.urlopen(f"{server}{PROXIES_PATH}", timeout=5) as answer:
        proxies: list[dict[str, Any]] = json.loads(answer.read())["proxies"]
    return revision, proxies


def state(proxy: dict[str, Any], revision: int) -> str:
    """``SYNCED``, ``NACKED``, ``STALE`` (not yet rebuilt or ACKed) or ``DISCONNECTED``."""
    if not proxy["connected"]:
        return "DISCONNECTED"
    types = proxy["types"].values()
    if any(t["lastNack"] and t["acked"] != t["sent"] for t in types):
        return "NACKED"
    # "synced" means Envoy ACKed the whole snapshot last published for it; sent == acked per
    # type is not enough, since a snapshot is walked over in ACK-gated steps.
    rebuilt = proxy["revision"] is not None and proxy["revision"] >= revision
    return "SYNCED" if rebuilt and proxy["synced"] else "STALE"


def converged(server: str) -> bool:
    """Whether at least one proxy is connected and every connected proxy is synced."""
    revision, proxies = fetch(server)
    live = [p for p in proxies if p["connected"]]
    return bool(live) and all(state(p, revision) == "SYNCED" for p in live)


def wait_converged(server: str, timeout: float = 30.0, interval: float = 0.005) -> float:
    """Poll until :func:`converged`; return the seconds it took (TimeoutError after timeout)."""
    started = time.monotonic()
    while not converged(server):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"proxies did not sync within {timeout:.0f} s")
        time.sleep(interval)
    return time.monotonic() - started


def register(cli: typer.Typer) -> None:
    """Add ``meshplane proxy-status`` to the CLI."""

    @cli.command("proxy-status")
    def proxy_status(
        server: Server = "http://127.0.0.1:9080",
        output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    ) -> None:
        """Show every Envoy's sync state: revision, ACKed versions, NACK messages, warnings."""
        try:
            revision, proxies = fetch(server)
        except OSError as exc:
            typer.echo(
                f"error: cannot reach the control plane at {server}: {exc} "
                "(is `meshplane serve` running? set --server or MESHPLANE_SERVER)",
                err=True,
            )
            raise typer.Exit(1) from exc
        if output == "json":
            typer.echo(json.dumps({"revision": revision, "proxies": proxies}, indent=2))
            return
        table = Table(title=f"store revision {revision}", title_justify="left")
        for column in ("PROXY", "STATE", "REVISION", "CDS", "LDS", "EDS", "RDS", "NOTES"):
            table.add_column(column)
        names = {"Cluster": "CDS", "Listener": "LDS", "ClusterLoadAssignment": "EDS"}
        names["RouteConfiguration"] = "RDS"
        for proxy in proxies:
            by_column = {names.get(k, k): v for k, v in proxy["types"].items()}
            cells = []
            for column in ("CDS", "LDS", "EDS", "RDS"):
                t = by_column.get(column)
                cells.append(
                    "-"
                    if t is None
                    else (t["acked"] or "")[:8] + ("" if t["acked"] == t["sent"] else "*")
                )
            notes = [t["lastNack"] for t in proxy["types"].values() if t["lastNack"]]
            notes += proxy["warnings"]
            table.add_row(
                proxy["key"],
                state(proxy, revision),
                str(proxy["revision"]),
                *cells,
                "; ".join(notes),
            )
        Console(width=None if sys.stdout.isatty() else 200).print(table)
