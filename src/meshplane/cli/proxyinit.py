"""``meshplane proxy-init``: the pod's init step that steers its TCP through the sidecar.

The drop-in for App Mesh's ``proxyinit`` container (the route-manager image):
it reads the same ``APPMESH_*`` environment (:mod:`meshplane.interception.contract`)
and installs the same nat rules, then exits. Run twice, it leaves the same
rules; ``--clean`` removes them; ``--dry-run`` prints them without touching
the kernel. Without NET_ADMIN it exits with one line saying so.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from meshplane import interception
from meshplane.interception import installing, rules


def proxy_init(
    clean: Annotated[
        bool, typer.Option("--clean", help="Remove the chains and hooks proxy-init installed.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the rules (iptables-restore input); change nothing."),
    ] = False,
) -> None:
    """Install App Mesh's iptables interception from the APPMESH_* environment, then exit."""
    try:
        contract = interception.Contract.from_env(os.environ)
    except interception.ContractError as error:
        typer.echo(f"proxy-init: {error}", err=True)
        raise typer.Exit(2) from None
    if dry_run:
        families = [rules.IPV4] + ([rules.IPV6] if contract.enable_ipv6 else [])
        for family in families:
            ruleset = rules.build(contract, family)
            typer.echo(f"# {family.tool}")
            typer.echo(ruleset.restore_script(), nl=False)
            for chain, rule in ruleset.hooks:
                typer.echo(" ".join(("-A", chain, *rule)))
        return
    if not clean and not contract.start_enabled:
        typer.echo("proxy-init: APPMESH_START_ENABLED is not 1; no rules installed", err=True)
        return
    if not installing.has_net_admin():
        typer.echo(f"proxy-init: {installing.NO_NET_ADMIN}", err=True)
        raise typer.Exit(1)
    try:
        done = interception.clean() if clean else interception.install(contract)
    except interception.InterceptionError as error:
        typer.echo(f"proxy-init: {error}", err=True)
        raise typer.Exit(1) from None
    for line in done:
        typer.echo(f"proxy-init: {line}")


def register(cli: typer.Typer) -> None:
    """Add the ``proxy-init`` command."""
    cli.command(name="proxy-init")(proxy_init)
