"""``meshplane serve``: the control plane as a long-running process.

The flags live here and the server's modules (aiohttp, grpc, botocore's model) are imported
inside :func:`serve`, so that only ``serve`` pays for them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich import markup
from rich.console import Console

from meshplane import __version__, settings
from meshplane.auth import hosts

console = Console(stderr=True)


def _check_flags(
    api_port: int | None, xds_port: int | None, ca_cert: Path | None, ca_key: Path | None
) -> None:
    """Exit 2 with one line for flags ``serve`` cannot use.

    A port out of range would otherwise end in bind's traceback.
    """
    for flag, port in (("--api-port", api_port), ("--xds-port", xds_port)):
        if port is not None and not 0 <= port <= 65535:
            console.print(f"[red]error:[/] {flag} must be a port from 0 to 65535, got {port}")
            raise typer.Exit(2)
    if (ca_cert is None) != (ca_key is None):
        console.print("[red]error:[/] --ca-cert and --ca-key go together")
        raise typer.Exit(2)


def serve(
    # Every option defaults to None: `settings.load` owns the defaults, so a MESHPLANE_*
    # environment variable applies unless the flag is given.
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory of the SQLite store, credentials and keys [default: .meshplane]."
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="A postgresql://user@host/db URL: replicas (each with its own data dir) share "
            "one database [default: the SQLite file in the data dir]."
        ),
    ] = None,
    api_port: Annotated[
        int | None, typer.Option(help="Port of the App Mesh REST API [default: 9080].")
    ] = None,
    xds_port: Annotated[
        int | None, typer.Option(help="Port of the xDS (ADS) server for Envoy [default: 9090].")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind [default: 127.0.0.1].")] = None,
    region: Annotated[
        str | None, typer.Option(help="Region written into ARNs [default: us-west-2].")
    ] = None,
    account_id: Annotated[
        str | None,
        typer.Option(
            help="12-digit account id written into ARNs and owners [default: 123456789012]."
        ),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            help="Intermediate CA certificate (then its issuers up to the root) that signs "
            "workload certificates, instead of the built-in root in <data-dir>/ca."
        ),
    ] = None,
    ca_key: Annotated[Path | None, typer.Option(help="The EC private key of --ca-cert.")] = None,
    trust_domain: Annotated[
        str | None,
        typer.Option(
            help="SPIFFE trust domain of automatic mTLS's identities [default: meshplane.local]."
        ),
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option(
            help="sigv4: every request must be SigV4-signed by a known principal; none: "
            "no authentication (throwaway use, loopback only) [default: sigv4]."
        ),
    ] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="A browser Origin whose requests are accepted (repeatable; none by default)."
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="A Host name accepted besides the bound address (repeatable)."),
    ] = None,
) -> None:
    """Run the control plane until Ctrl-C or SIGTERM."""
    # The control plane's imports (aiohttp, grpc, botocore's model) cost ~0.8 s; only
    # `serve` pays them, so client commands such as `apply` start fast.
    from meshplane import app  # noqa: PLC0415
    from meshplane import console as web  # noqa: PLC0415 - aiohttp, like app
    from meshplane.store import refusals  # noqa: PLC0415

    _check_flags(api_port, xds_port, ca_cert, ca_key)
    config = settings.load(
        data_dir=data_dir,
        store=store,
        api_port=api_port,
        xds_port=xds_port,
        host=host,
        region=region,
        account_id=account_id,
        ca_cert=str(ca_cert) if ca_cert else None,
        ca_key=str(ca_key) if ca_key else None,
        trust_domain=trust_domain,
        auth=auth,
        allow_origins=tuple(allow_origin) if allow_origin else None,
        allow_hosts=tuple(allow_host) if allow_host else None,
    )
    if len(config.account_id) != 12 or not config.account_id.isdigit():
        console.print(f"[red]error:[/] --account-id must be 12 digits, got {config.account_id!r}")
        raise typer.Exit(2)
    if config.auth not in settings.AUTH_MODES:
        console.print(f"[red]error:[/] --auth must be sigv4 or none, got {config.auth!r}")
        raise typer.Exit(2)
    if config.auth == "none" and not hosts.is_loopback(config.host):
        console.print(
            f"[red]error:[/] --auth none is for loopback only; refusing to serve {config.host} "
            "unauthenticated",
            soft_wrap=True,
        )
        raise typer.Exit(2)

    lookup, generated = web.load_credentials(config.data_dir)
    web_console = web.Console(lookup)

    def ready(plane: app.ControlPlane) -> None:
        endpoint = f"http://{config.host}:{plane.api_port}"
        console.print(f"meshplane {__version__} serving the App Mesh API at [bold]{endpoint}[/]")
        console.print(f"  xDS:   {config.host}:{plane.xds_port} (ADS for Envoy sidecars)")
        console.print(f"  store: {plane.store.location} (schema v{plane.store.schema_version})")
        console.print(f"  CA:    {config.ca_cert or config.data_dir / 'ca' / 'ca.pem'}")
        if plane.principals is None:
            console.print(
                "[yellow]warning:[/] --auth none: any local process or user can change this "
                "mesh; use only for throwaway work",
                soft_wrap=True,
            )
        else:
            state = "created" if plane.principals.created else "kept"
            credentials = plane.principals.credentials_path.resolve()
            console.print(
                f"  auth:  SigV4; administrator profile {state} in {credentials}", soft_wrap=True
            )
            console.print(
                f"  use:   export AWS_SHARED_CREDENTIALS_FILE={credentials} AWS_PROFILE=meshplane",
                soft_wrap=True,
            )
        console.print(f"  try:   aws appmesh list-meshes --endpoint-url {endpoint}")
        console.print(f"  web:   {endpoint}/console/", soft_wrap=True)
        console.print(f"  stats: {endpoint}/metrics (Prometheus)", soft_wrap=True)
        if generated is not None:
            console.print(
                f"  login: {generated.access_key_id} / {generated.secret_access_key}"
                " (console only, until this process stops)",
                soft_wrap=True,
                highlight=False,
            )
        else:
            console.print(f"  login: a key of {config.data_dir / 'credentials'}")
        console.print("  stop:  Ctrl-C")

    try:
        asyncio.run(app.serve(config, ready, [web_console.mount]))
    except OSError as error:  # a taken port, an unwritable data dir: one line, no traceback
        console.print(f"[red]error:[/] {error.strerror or error}", soft_wrap=True)
        raise typer.Exit(1) from None
    except refusals.StoreRefused as error:  # a locked data dir, a damaged or newer store
        console.print(f"[red]error:[/] {markup.escape(str(error))}", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print("meshplane stopped")


def register(cli: typer.Typer) -> None:
    """Add ``meshplane serve`` to the CLI."""
    cli.command()(serve)
