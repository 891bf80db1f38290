"""``meshplane analyze [-f PATH]``: the command.

The checks are in :mod:`analyzing` (files) and :mod:`liveanalysis` (a running control
plane's meshes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_SERVER = "http://127.0.0.1:9080"


def register(cli: typer.Typer) -> None:
    """Add ``meshplane analyze`` to the CLI."""

    @cli.command()
    def analyze(
        file: Annotated[
            Path | None,
            typer.Option(
                "-f",
                "--filename",
                help="A manifest file or a directory of them [default: the running server's "
                "meshes].",
            ),
        ] = None,
        namespace: Annotated[
            str | None, typer.Option("-n", "--namespace", help="Namespace for objects naming none.")
        ] = None,
        output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
        server: Annotated[
            str,
            typer.Option(
                "--server", "-s", envvar="MESHPLANE_SERVER", help="Without -f: this control plane."
            ),
        ] = DEFAULT_SERVER,
        mesh: Annotated[
            str | None, typer.Option("--mesh", help="Without -f: only this mesh [default: all].")
        ] = None,
    ) -> None:
        """Find shadowed routes, dangling references, zero weights, unused nodes; 1 on errors.

        With -f, the files (offline); without, the meshes of the running control plane.
        """
        if file is None:
            _report(_live(server, mesh), output)
            return
        # The checks build a throwaway control plane: its imports are paid here only.
        from meshplane import app  # noqa: PLC0415
        from meshplane.cli import analyzing, applying  # noqa: PLC0415
        from meshplane.cli.manifests import MANIFEST_SUFFIXES  # noqa: PLC0415
        from meshplane.store import snapshots  # noqa: PLC0415

        if file.is_dir():
            paths = sorted(p for p in file.iterdir() if p.suffix in MANIFEST_SUFFIXES)
        elif file.is_file():
            paths = [file]
        else:
            typer.echo(f'error: the path "{file}" does not exist', err=True)
            raise typer.Exit(2)
        sources = [{"name": str(p), "text": p.read_text(encoding="utf-8")} for p in paths]
        findings: list[analyzing.Finding] = []

        def inspect(plane: app.ControlPlane) -> None:
            with plane.store.read() as tx:
                meshes = [r.key.name for r in tx.list_records("mesh", None)]
            for name in meshes:
                snapshot = snapshots.mesh_snapshot(plane.store, name)
                if snapshot is not None:
                    findings.extend(analyzing.routes(snapshot))

        try:
            answer = applying.dry_run(sources, namespace, inspect)
        except Exception as error:  # the front door's refusals: ManifestError and others
            problems = getattr(error, "problems", None) or [str(error)]
            findings += [analyzing.Finding("error", "refused", str(file), p) for p in problems]
        else:
            findings += analyzing.from_apply(answer)
            findings += analyzing.unselected(file)
        _report(findings, output)


def _live(server: str, mesh: str | None) -> list[Any]:
    """The findings of the control plane at ``server``; one line and exit 1 if unreachable."""
    from meshplane import client  # noqa: PLC0415 - the client only for this path
    from meshplane.cli import liveanalysis, signing  # noqa: PLC0415

    try:
        return liveanalysis.read(signing.connect(server, timeout=60), mesh)
    except LookupError as error:
        typer.echo(f"error: {error.args[0]}", err=True)
    except client.ControlPlaneError as error:
        typer.echo(f"error: {server} answered {error.status}: {error.message}", err=True)
    except OSError as error:
        typer.echo(
            f"error: cannot reach the meshplane control plane at {server}: {error} "
            "(is `meshplane serve` running? set --server or MESHPLANE_SERVER, or pass -f)",
            err=True,
        )
    raise typer.Exit(1)


def _report(findings: list[Any], output: str) -> None:
    """Print the findings, errors first; exit 1 when there is an error."""
    findings.sort(key=lambda f: (f.severity != "error", f.resource, f.code))
    errors = sum(1 for f in findings if f.severity == "error")
    if output == "json":
        typer.echo(json.dumps([f.to_json() for f in findings], indent=2))
    else:
        for f in findings:
            typer.echo(f"{f.severity.upper():<8}{f.code:<17}{f.resource}: {f.message}")
        typer.echo(f"{errors} error(s), {len(findings) - errors} warning(s)", err=True)
    if errors:
        raise typer.Exit(1)
