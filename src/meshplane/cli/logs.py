"""``meshplane logs WORKLOAD``: the output of ``meshplane up``'s processes, as ``kubectl logs``.

``up`` keeps every replica's app and Envoy output under
``<data-dir>/logs/<workload>/<replica>/<container>.log`` (:mod:`meshplane.runtime.logfiles`);
this command prints one of them (``--tail N`` lines, ``-c app|envoy``, ``--replica N``) and
with ``-f`` follows it until Ctrl-C, across rotations and restarts. ``--previous`` prints the
run before the process's last restart (kept as ``<container>.previous.log``), and
``--timestamps`` each line's RFC 3339 time, recorded by ``up`` as the line reached it. It
reads files only: it works the same while ``up`` runs, after it stopped, and without any
control plane.

Following is a short poll of the file's size and identity, as ``tail -f`` does when it
cannot use inotify: the writer is another process and a file offers no portable
"data arrived" primitive; the interval (0.2 s) bounds the delay, not correctness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

FOLLOW_INTERVAL = 0.2
"""Seconds between looks at a followed file (``tail -f`` uses 1 s)."""


def register(cli: typer.Typer) -> None:
    """Add ``meshplane logs`` to the CLI."""

    @cli.command()
    def logs(
        workload: Annotated[str, typer.Argument(help="The workload's name (workloads.yaml).")],
        container: Annotated[
            str | None,
            typer.Option(
                "-c", "--container", help="app or envoy [default: app; envoy for a gateway]."
            ),
        ] = None,
        follow: Annotated[
            bool, typer.Option("-f", "--follow", help="Keep printing new lines until Ctrl-C.")
        ] = False,
        replica: Annotated[
            int, typer.Option("--replica", help="Which replica (0 is the first).")
        ] = 0,
        tail: Annotated[
            int, typer.Option("--tail", help="Print only the last N lines (-1: all).")
        ] = -1,
        previous: Annotated[
            bool,
            typer.Option(
                "-p", "--previous", help="The run before the last restart (after a crash)."
            ),
        ] = False,
        timestamps: Annotated[
            bool,
            typer.Option("--timestamps", help="Begin each line with its RFC 3339 time."),
        ] = False,
        data_dir: Annotated[
            Path, typer.Option(help="The data dir `meshplane up` ran with.")
        ] = Path(".meshplane"),
    ) -> None:
        """Print the output of a workload's app or Envoy sidecar run by `meshplane up`."""
        from meshplane.cli import following  # noqa: PLC0415 - keeps `--help` fast

        try:
            path = following.locate(data_dir, workload, replica, container, previous=previous)
        except following.NotFound as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        try:
            following.show(path, tail, follow, FOLLOW_INTERVAL, timestamps=timestamps)
        except KeyboardInterrupt:  # Ctrl-C ends -f, as it ends kubectl logs -f
            raise typer.Exit(0) from None
