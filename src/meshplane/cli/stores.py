"""``meshplane store backup FILE`` and ``meshplane store restore FILE``.

Backup works while ``meshplane serve`` runs (a consistent copy of one
revision); restore needs the data dir to itself, so it takes the data dir's
lock and names the process that holds it otherwise. Both print one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import markup
from rich.console import Console

from meshplane import settings

console = Console(stderr=True)
store_cli = typer.Typer(help="Back up and restore the control plane's store.", no_args_is_help=True)

DataDir = Annotated[
    Path | None, typer.Option(help="The data dir of the store [default: .meshplane].")
]


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {markup.escape(str(error))}", soft_wrap=True)
    return typer.Exit(1)


@store_cli.command()
def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the copy.")],
    data_dir: DataDir = None,
) -> None:
    """Copy the store to FILE, consistently, even while the control plane serves it."""
    from meshplane.store import backups, refusals  # noqa: PLC0415 - keeps `--help` fast

    where = settings.load(data_dir=data_dir).data_dir
    try:
        copied = backups.backup(where, file)
    except (refusals.StoreRefused, OSError) as error:
        raise _fail(error) from None
    typer.echo(
        f"backed up {copied.source} at revision {copied.revision} to {copied.destination} "
        f"({copied.size} bytes)"
    )


@store_cli.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A backup made by `meshplane store backup`.")],
    data_dir: DataDir = None,
) -> None:
    """Make FILE the store of the data dir (the control plane must be stopped)."""
    from meshplane.store import backups, locking, refusals  # noqa: PLC0415

    where = settings.load(data_dir=data_dir).data_dir
    try:
        with locking.acquire(where):
            copied = backups.restore(file, where)
    except (refusals.StoreRefused, OSError) as error:
        raise _fail(error) from None
    kept = f"; the previous store is kept as {copied.replaced}" if copied.replaced else ""
    typer.echo(
        f"restored {copied.source} (revision {copied.revision}) into {copied.destination}{kept}"
    )


def register(cli: typer.Typer) -> None:
    """Add the ``store`` command group."""
    cli.add_typer(store_cli, name="store")
