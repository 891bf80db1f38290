"""``meshplane``: the entry point and its table of commands.

Start-up is part of every command's latency, so this module imports typer and the command
table only; each command's module is imported when that command runs
(:mod:`meshplane.cli.registry`). To add a command, write a module with
``register(cli: typer.Typer)`` and add one row to :data:`COMMANDS`; keep the module's heavy
imports (rich, yaml, botocore, the server's layers) inside the functions that need them
(docs/architecture.md, "CLI start-up"). ``tests/cli/test_startup_imports.py`` checks both.
"""

from __future__ import annotations

from typing import Annotated

import typer
import typer.main

from meshplane import __version__
from meshplane.cli import registry
from meshplane.cli.registry import Command

COMMANDS = (
    # In the order `meshplane --help` lists them; `help` is the first paragraph of each
    # command's own help (tests/cli/test_startup_imports.py checks they agree).
    Command("serve", "meshplane.cli.serving", "Run the control plane until Ctrl-C or SIGTERM."),
    Command(
        "demo",
        "meshplane.cli.demo",
        "Run the blue-green walkthrough end to end and check every step.",
    ),
    Command(
        "apply",
        "meshplane.cli.manifests",
        "Create or update objects from manifests (all documents are checked before any is "
        "applied).",
    ),
    Command(
        "get",
        "meshplane.cli.manifests",
        "List objects, or show one, with the columns users expect (ARN, ACTIVE, AGE).",
    ),
    Command(
        "describe",
        "meshplane.cli.manifests",
        "Show an object's spec, status, conditions and recent events (why it is not Active).",
    ),
    Command(
        "delete",
        "meshplane.cli.manifests",
        "Delete objects named by manifests or by KIND NAME; a Mesh waits for its members.",
    ),
    Command(
        "label",
        "meshplane.cli.manifests",
        "Label a namespace (``mesh=demos`` joins it to the mesh selecting that label).",
    ),
    Command(
        "up",
        "meshplane.cli.up",
        "Start a control plane, apply PATH's manifests, run PATH/workloads.yaml with sidecars.",
    ),
    Command(
        "proxy-status",
        "meshplane.cli.proxystatus",
        "Show every Envoy's sync state: revision, ACKed versions, NACK messages, warnings.",
    ),
    Command(
        "proxy-config",
        "meshplane.cli.proxyconfig",
        "Show the listeners, routes, clusters, endpoints and secrets one Envoy was sent.",
    ),
    Command(
        "crds",
        "meshplane.cli.crds",
        "Print the v1beta2 CRDs as multi-document YAML, or write one file per kind with -o.",
    ),
    Command(
        "proxy-init",
        "meshplane.cli.proxyinit",
        "Install App Mesh's iptables interception from the APPMESH_* environment, then exit.",
    ),
    Command(
        "k8s",
        "meshplane.cli.k8s",
        "Reconcile appmesh.k8s.aws resources, inject sidecars and serve xDS.",
    ),
    Command(
        "top",
        "meshplane.cli.top",
        "Live requests/s, success % and p50/p99 per virtual node and per weighted target.",
    ),
    Command(
        "analyze",
        "meshplane.cli.analyze",
        "Find shadowed routes, dangling references, zero weights, unused nodes; 1 on errors.",
    ),
    Command(
        "credentials",
        "meshplane.cli.credentials",
        "Create, list and delete principals (access keys with an IAM-style policy).",
    ),
    Command(
        "logs",
        "meshplane.cli.logs",
        "Print the output of a workload's app or Envoy sidecar run by `meshplane up`.",
    ),
    Command("store", "meshplane.cli.stores", "Back up and restore the control plane's store."),
    Command(
        "ca",
        "meshplane.cli.authorities",
        "Give ACM Private CA ARNs CAs of their own (import or create).",
    ),
)
"""Every ``meshplane`` command: its name, the module that registers it, its one-line help."""

cli = typer.Typer(
    name="meshplane",
    help="A self-hosted AWS App Mesh: the App Mesh API, v1beta2 manifests and Envoy.",
    no_args_is_help=True,
    add_completion=True,
    cls=registry.group(COMMANDS),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meshplane {__version__}")
        raise typer.Exit


@cli.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """A self-hosted AWS App Mesh: the App Mesh API, v1beta2 manifests and Envoy."""


def main() -> None:
    """Typer's CLI; a bad option value is one line (cli/usage.py, from the group's ``main``).

    The console script (cli/fastpath.py) runs the common ``get``, ``apply`` and
    ``proxy-status`` without typer and calls this for everything else.
    """
    typer.main.get_command(cli).main(prog_name="meshplane")


if __name__ == "__main__":
    main()
