"""``meshplane ca import|create|list``: one CA per ACM Private CA ARN, off AWS.

An ``acm`` trust names Private CA ARNs that meshplane cannot reach. Until an ARN
has a CA of its own, the built-in CA serves it; ``import`` gives it the PCA's real
certificate and key (or any EC CA), ``create`` a new root, so two ARNs are two trust
roots. ``--certificate`` lists the ACM certificate ARNs that CA issues (a listener's
``acm.certificateArn``). These write ``<data-dir>/ca/pca/`` (layout in
:mod:`meshplane.pki.authorities`); restart ``meshplane serve`` to use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import markup
from rich.console import Console

from meshplane import settings
from meshplane.cli.stores import DataDir

console = Console(stderr=True)
ca_cli = typer.Typer(
    help="Give ACM Private CA ARNs CAs of their own (import or create).", no_args_is_help=True
)
Certificates = Annotated[
    list[str] | None,
    typer.Option("--certificate", help="An ACM certificate ARN this CA issues (repeatable)."),
]
Arn = Annotated[str, typer.Argument(help="The ACM Private CA ARN (certificateAuthorityArns).")]


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {markup.escape(str(error))}", soft_wrap=True)
    return typer.Exit(1)


def _install(
    arn: str,
    data_dir: Path | None,
    certificates: list[str] | None,
    pair: tuple[Path, Path] | None,
) -> None:
    from meshplane.kit.clock import system_clock  # noqa: PLC0415 - keeps `--help` fast
    from meshplane.pki import authorities  # noqa: PLC0415

    if not arn.startswith("arn:") or ":acm-pca:" not in arn:
        raise _fail(ValueError(f"{arn!r} is not an ACM Private CA ARN (arn:aws:acm-pca:…)"))
    where = settings.load(data_dir=data_dir).data_dir / "ca"
    try:
        target = authorities.install(
            where,
            arn,
            system_clock,
            certificate_pem=pair[0].read_bytes() if pair else None,
            key_pem=pair[1].read_bytes() if pair else None,
            certificates=certificates or (),
        )
    except (OSError, ValueError) as error:
        raise _fail(error) from None
    typer.echo(f"{arn}: CA in {target} (restart meshplane serve to use it)")


@ca_cli.command("import")
def import_ca(
    arn: Arn,
    cert: Annotated[Path, typer.Option("--cert", help="The CA certificate (PEM, then issuers).")],
    key: Annotated[Path, typer.Option("--key", help="Its EC private key (PEM).")],
    certificate: Certificates = None,
    data_dir: DataDir = None,
) -> None:
    """Serve ARN's trust and certificates from this CA certificate and key."""
    _install(arn, data_dir, certificate, (cert, key))


@ca_cli.command("create")
def create_ca(arn: Arn, certificate: Certificates = None, data_dir: DataDir = None) -> None:
    """Give ARN a new meshplane-managed root of its own."""
    _install(arn, data_dir, certificate, None)


@ca_cli.command("list")
def list_cas(data_dir: DataDir = None) -> None:
    """The ARNs with a CA of their own, and the certificate ARNs each issues."""
    from meshplane.pki import authorities  # noqa: PLC0415

    root = settings.load(data_dir=data_dir).data_dir / "ca" / authorities.PCA_DIRECTORY
    entries = sorted(p for p in root.iterdir() if (p / "arn").is_file()) if root.is_dir() else []
    if not entries:
        typer.echo("no ARN has a CA of its own; the built-in CA serves every ACM reference")
        return
    for entry in entries:
        arn = (entry / "arn").read_text(encoding="utf-8").strip()
        listed = entry / "certificates"
        issued = listed.read_text(encoding="utf-8").split() if listed.is_file() else []
        typer.echo(f"{arn}  {entry}  issues: {', '.join(issued) or '-'}")


def register(cli: typer.Typer) -> None:
    """Add the ``ca`` command group."""
    cli.add_typer(ca_cli, name="ca")
