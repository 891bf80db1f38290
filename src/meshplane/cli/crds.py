"""``meshplane crds``: the v1beta2 CustomResourceDefinitions a Kubernetes API server needs.

Generated from the schema meshplane's own admission enforces
(:mod:`meshplane.manifests.definitions`), so ``kubectl apply`` and
``meshplane apply`` accept the same documents. ``make crds`` writes them into
the Helm chart's ``crds/`` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meshplane.manifests import definitions


def crds(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write one file per kind into this directory."),
    ] = None,
) -> None:
    """Print the v1beta2 CRDs as multi-document YAML, or write one file per kind with -o."""
    if output is None:
        typer.echo(definitions.render_all(), nl=False)
        return
    output.mkdir(parents=True, exist_ok=True)
    for kind in definitions.KINDS:
        path = output / definitions.file_name(kind)
        path.write_text(definitions.render(kind), encoding="utf-8")
        typer.echo(f"wrote {path}")


def register(cli: typer.Typer) -> None:
    """Add the ``crds`` command."""
    cli.command()(crds)
