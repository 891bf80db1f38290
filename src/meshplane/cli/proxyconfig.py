"""``meshplane proxy-config PROXY [SECTION]``: what the control plane sent one Envoy.

``proxy-status`` answers "did it apply?"; this answers "what exactly does it run?",
as ``istioctl proxy-config`` does: listeners with their TLS mode per filter chain,
route configurations, clusters with their upstream TLS, endpoints, and secrets with
their SANs and expiry (never a private key). PROXY is a key as ``proxy-status -o
json`` lists it, or a unique part of one (a virtual node's name).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from meshplane import client
from meshplane.cli import signing
from meshplane.cli.manifests import Server

SECTIONS = ("listeners", "routes", "clusters", "endpoints", "secrets")


def resolve(keys: list[str], wanted: str) -> str:
    """The key equal to ``wanted``, or the one key containing it; ValueError otherwise."""
    if wanted in keys:
        return wanted
    matches = [key for key in keys if wanted in key]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ValueError(f"no proxy matches {wanted!r} (known: {', '.join(keys) or 'none'})")
    raise ValueError(f"{wanted!r} matches several proxies: {', '.join(matches)}")


def _rows(section: str, items: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """A section's table: its columns and one row per item (listeners: one per chain)."""
    if section == "listeners":
        columns = ["LISTENER", "ADDRESS", "PORT", "CHAIN", "PROTOCOL", "TLS", "MODE"]
        rows = [
            [
                item["name"],
                item["address"],
                str(chain["destinationPort"] or item["port"]),
                chain["name"],
                chain["protocol"],
                chain["tls"],
                chain["mode"],
            ]
            for item in items
            for chain in item["chains"]
        ]
        return columns, rows
    if section == "routes":
        columns = ["ROUTE CONFIG", "VIRTUAL HOST", "DOMAINS", "ROUTES"]
        rows = [
            [item["name"], host["name"], ",".join(host["domains"]), str(host["routes"])]
            for item in items
            for host in item["virtualHosts"]
        ]
        return columns, rows
    if section == "clusters":
        columns = ["CLUSTER", "TYPE", "TLS", "SANS"]
        rows = []
        for item in items:
            tls = item["tls"]
            mode = "-"
            if tls is not None:
                mode = ("mTLS" if tls["clientCertificate"] else "TLS") + (
                    "" if tls["validated"] else " (unvalidated)"
                )
            rows.append([item["name"], item["type"], mode, ",".join(tls["sans"]) if tls else ""])
        return columns, rows
    if section == "endpoints":
        return ["CLUSTER", "ENDPOINTS"], [
            [item["cluster"], ",".join(item["addresses"])] for item in items
        ]
    return ["SECRET", "KIND", "SANS", "SERIAL", "NOT AFTER"], [
        [
            item["name"],
            item["kind"],
            ",".join(item["sans"]),
            str(item["serial"] or ""),
            str(item["notAfter"] or ""),
        ]
        for item in items
    ]


def _print(value: dict[str, Any], output: str) -> None:
    """``value`` as indented JSON or as YAML (keys in the server's order)."""
    if output == "yaml":
        typer.echo(yaml.safe_dump(value, sort_keys=False).rstrip())
    else:
        typer.echo(json.dumps(value, indent=2))


def register(cli: typer.Typer) -> None:
    """Add ``meshplane proxy-config`` to the CLI."""

    @cli.command("proxy-config")
    def proxy_config(
        proxy: Annotated[str, typer.Argument(help="Proxy key, or a unique part of it.")],
        section: Annotated[
            str, typer.Argument(help="listeners, routes, clusters, endpoints, secrets or all.")
        ] = "all",
        server: Server = "http://127.0.0.1:9080",
        output: Annotated[
            str, typer.Option("--output", "-o", help="table, json or yaml.")
        ] = "table",
        from_envoy: Annotated[
            bool,
            typer.Option(
                "--envoy",
                help="Envoy's own config dump (local sidecars' admin sockets), as json or yaml.",
            ),
        ] = False,
    ) -> None:
        """Show the listeners, routes, clusters, endpoints and secrets one Envoy was sent."""
        if section != "all" and section not in SECTIONS:
            typer.echo(f"error: SECTION must be one of {', '.join(SECTIONS)} or all", err=True)
            raise typer.Exit(2)
        if output not in ("table", "json", "yaml"):
            typer.echo("error: --output must be table, json or yaml", err=True)
            raise typer.Exit(2)
        try:
            plane = signing.connect(server, timeout=5)
            key = resolve([p["key"] for p in plane.proxies().proxies], proxy)
            if from_envoy:
                _print(plane.envoy_config(key), "yaml" if output == "yaml" else "json")
                return
            config = plane.proxy_config(key)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        except (OSError, client.ControlPlaneError) as exc:
            typer.echo(f"error: cannot read {proxy} from {server}: {exc}", err=True)
            raise typer.Exit(1) from exc
        chosen = SECTIONS if section == "all" else (section,)
        if output != "table":
            _print({"key": config["key"], **{name: config[name] for name in chosen}}, output)
            return
        console = Console(width=None if sys.stdout.isatty() else 200)
        for name in chosen:
            columns, rows = _rows(name, config[name])
            table = Table(title=f"{config['key']} {name}", title_justify="left")
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*row)
            console.print(table)
