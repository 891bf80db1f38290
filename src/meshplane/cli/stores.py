"""``meshplane store backup FILE`` and ``meshplane store restore FILE``.

Backup works while ``meshplane serve`` runs (a consistent copy of one
revision); restore needs the data dir to itself, so it takes the data dir's
lock and names the process that holds it otherwise. With ``--store
postgresql://…`` (or ``MESHPLANE_STORE``) both work on that database instead
(:mod:`meshplane.store.pgbackups`); a restore there refuses while a replica is
connected. Both print one line.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
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
StoreUrl = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="A postgresql://... store instead of the data dir's SQLite file "
        "[default: MESHPLANE_STORE].",
    ),
]


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {markup.escape(str(error))}", soft_wrap=True)
    return typer.Exit(1)


@store_cli.command()
def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the copy.")],
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Copy the store to FILE, consistently, even while the control plane serves it."""
    from meshplane.store import backups, refusals  # noqa: PLC0415 - keeps `--help` fast

    config = settings.load(data_dir=data_dir, store=store)
    try:
        if config.store:
            copied = _postgres(config.store).backup(config.store, file)
        else:
            copied = backups.backup(config.data_dir, file)
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
    store: StoreUrl = None,
) -> None:
    """Make FILE the store of the data dir, or of --store (the control plane must be stopped)."""
    from meshplane.store import backups, locking, refusals  # noqa: PLC0415

    config = settings.load(data_dir=data_dir, store=store)
    try:
        if config.store:
            copied = _postgres(config.store).restore(file, config.store)
        else:
            with locking.acquire(config.data_dir):
                copied = backups.restore(file, config.data_dir)
    except (refusals.StoreRefused, OSError) as error:
        raise _fail(error) from None
    kept = f"; the previous store is kept as {copied.replaced}" if copied.replaced else ""
    typer.echo(
        f"restored {copied.source} (revision {copied.revision}) into {copied.destination}{kept}"
    )


def _postgres(url: str) -> ModuleType:
    """:mod:`meshplane.store.pgbackups`, or a one-line refusal (not a URL, no psycopg)."""
    from meshplane.store import refusals  # noqa: PLC0415

    if not url.startswith(("postgresql://", "postgres://")):
        raise _fail(
            refusals.StoreRefused(
                f"--store must be empty (SQLite in the data dir) or a postgresql:// URL, "
                f"not {url!r}"
            )
        )
    try:
        from meshplane.store import pgbackups  # noqa: PLC0415 - psycopg is an optional extra
    except ImportError:
        raise _fail(
            refusals.StoreRefused(
                "--store postgresql://... needs psycopg: pip install 'meshplane[postgres]'"
            )
        ) from None
    return pgbackups


def register(cli: typer.Typer) -> None:
    """Add the ``store`` command group."""
    cli.add_typer(store_cli, name="store")
