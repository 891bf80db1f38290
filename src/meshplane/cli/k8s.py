"""``meshplane k8s``: run as the cluster's App Mesh controller, injector and xDS server.

In a pod it finds the API server through its service account; out of cluster
``--kubeconfig`` names it, and ``--register-webhooks`` makes the API server call
this process's webhooks on ``--webhook-host``. The flags follow the
appmesh-controller chart's values (``--region``, ``--account-id``,
``--sidecar-image``, ``--init-image``), so status ARNs stay those the old
controller wrote.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from meshplane import __version__, settings
from meshplane.auth import hosts

if TYPE_CHECKING:
    from meshplane import app
    from meshplane.k8s import operating

console = Console(stderr=True)


def register(cli: typer.Typer) -> None:
    """Add the ``k8s`` command to ``cli``."""
    cli.command("k8s")(k8s)


def k8s(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="Kubeconfig of the cluster (default: the pod's service account)."),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Scratch directory of this replica's store (rebuilt at start).")
    ] = Path(".meshplane-k8s"),
    host: Annotated[str, typer.Option(help="Address the API and xDS servers bind.")] = "0.0.0.0",
    api_port: Annotated[int, typer.Option(help="Port of the read-only App Mesh API.")] = 9080,
    xds_port: Annotated[int, typer.Option(help="Port of the xDS (ADS) server.")] = 15010,
    webhook_host: Annotated[
        str, typer.Option(help="Address the HTTPS webhook server binds (and registers).")
    ] = "0.0.0.0",
    webhook_port: Annotated[int, typer.Option(help="Port of the admission webhooks.")] = 9443,
    register_webhooks: Annotated[
        bool,
        typer.Option(help="Register the webhook configurations at https://WEBHOOK_HOST:PORT."),
    ] = False,
    webhook_cert_dir: Annotated[
        Path | None,
        typer.Option(help="Serve the webhooks with tls.crt/tls.key from here (in cluster)."),
    ] = None,
    namespace: Annotated[
        str, typer.Option(help="Namespace of the leader Lease.")
    ] = "appmesh-system",
    region: Annotated[str, typer.Option(help="Region written into ARNs.")] = "us-west-2",
    account_id: Annotated[
        str, typer.Option(help="12-digit account id written into ARNs.")
    ] = "123456789012",
    xds_address: Annotated[
        str,
        typer.Option(help="host:port injected Envoys dial for xDS."),
    ] = "meshplane-xds.appmesh-system.svc:15010",
    sidecar_image: Annotated[
        str, typer.Option(help="Image of the injected envoy container.")
    ] = "envoyproxy/envoy:v1.40.0",
    sidecar_log_level: Annotated[str, typer.Option(help="ENVOY_LOG_LEVEL and --log-level.")] = (
        "info"
    ),
    sidecar_cpu_request: Annotated[str, typer.Option(help="Envoy's cpu request.")] = "10m",
    sidecar_memory_request: Annotated[str, typer.Option(help="Envoy's memory request.")] = "32Mi",
    sidecar_cpu_limit: Annotated[str, typer.Option(help="Envoy's cpu limit (none: '').")] = "",
    sidecar_memory_limit: Annotated[str, typer.Option(help="Envoy's memory limit.")] = "",
    init_image: Annotated[str | None, typer.Option(help="Image of proxyinit.")] = None,
    auth: Annotated[
        str,
        typer.Option(help="API authentication: sigv4 (the default), or none (loopback only)."),
    ] = "sigv4",
    xds_identity: Annotated[
        bool,
        typer.Option(
            help="Admit ADS streams only with their pod's service-account token (TokenReview, "
            "audience meshplane) for the node the pod was injected for. --no-xds-identity "
            "serves any stream that asks: only for a cluster whose network you trust."
        ),
    ] = True,
    xds_tls_port: Annotated[
        int, typer.Option(help="Port of ADS over TLS (the built-in CA's certificate).")
    ] = 15012,
    sidecar_layout: Annotated[
        str,
        typer.Option(
            help="auto (native sidecars on Kubernetes >= 1.29), native, or classic "
            "(envoy as an app container)."
        ),
    ] = "auto",
    resync: Annotated[
        float,
        typer.Option(help="Seconds between resyncs (status requeues, sidecar token re-checks)."),
    ] = 60.0,
    lease_duration: Annotated[
        float, typer.Option(help="Seconds a leader's Lease lasts unrenewed.")
    ] = 15.0,
    log_level: Annotated[str, typer.Option(help="Log level: debug, info, warning.")] = "info",
) -> None:
    """Reconcile appmesh.k8s.aws resources, inject sidecars and serve xDS."""
    from meshplane import app  # noqa: PLC0415 - keeps the other commands fast
    from meshplane.k8s import injecting, operating  # noqa: PLC0415

    if len(account_id) != 12 or not account_id.isdigit():
        console.print(f"[red]error:[/] --account-id must be 12 digits, got {account_id!r}")
        raise typer.Exit(2)
    xds_host, _, xds_port_text = xds_address.rpartition(":")
    if not xds_host or not xds_port_text.isdigit():
        console.print(f"[red]error:[/] --xds-address must be host:port, got {xds_address!r}")
        raise typer.Exit(2)
    if auth not in settings.AUTH_MODES:
        console.print(f"[red]error:[/] --auth must be sigv4 or none, got {auth!r}")
        raise typer.Exit(2)
    if auth == "none" and not hosts.is_loopback(host):
        console.print(f"[red]error:[/] --auth none is for loopback only, not {host}")
        raise typer.Exit(2)
    from meshplane.k8s.operating import LAYOUTS  # noqa: PLC0415

    if sidecar_layout not in LAYOUTS:
        console.print(f"[red]error:[/] --sidecar-layout must be one of {', '.join(LAYOUTS)}")
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    if not xds_identity:
        console.print(
            "[bold red]warning:[/] --no-xds-identity: any client that reaches the xDS port "
            "can claim any node and read its configuration (certificates included)"
        )
    config = settings.load(
        data_dir=data_dir,
        api_port=api_port,
        xds_port=xds_port,
        host=host,
        region=region,
        account_id=account_id,
        auth=auth,
        # Local mode's proxy credentials are not issued here: pod tokens replace them.
        xds_auth=False,
    )
    injector = injecting.InjectorConfig(
        sidecar_image=sidecar_image,
        init_image=init_image or injecting.InjectorConfig.init_image,
        region=region,
        log_level=sidecar_log_level,
        cpu_request=sidecar_cpu_request,
        memory_request=sidecar_memory_request,
        cpu_limit=sidecar_cpu_limit,
        memory_limit=sidecar_memory_limit,
        xds_host=xds_host,
        xds_port=int(xds_port_text),
        xds_identity=xds_identity,
        xds_tls_port=xds_tls_port,
    )
    options = operating.Options(
        kubeconfig=kubeconfig,
        namespace=namespace,
        webhook_host=webhook_host,
        webhook_port=webhook_port,
        register_webhooks=register_webhooks,
        webhook_cert_dir=webhook_cert_dir,
        lease_duration=lease_duration,
        lease_retry=max(0.2, lease_duration / 5),
        injector=injector,
        xds_identity=xds_identity,
        xds_tls_port=xds_tls_port,
        sidecar_layout=sidecar_layout,
        resync=resync,
    )

    def ready(plane: app.ControlPlane, replica: operating.Replica) -> None:
        endpoint = f"http://{config.host}:{plane.api_port}"
        console.print(
            f"meshplane {__version__} k8s: App Mesh API (read-only) at [bold]{endpoint}[/]"
        )
        console.print(f"  xDS:      {config.host}:{plane.xds_port}")
        if plane.ads.tls_port is not None:
            console.print(f"  xDS TLS:  {config.host}:{plane.ads.tls_port}")
        identity = "pod service-account tokens" if replica.identities else "OFF (any stream)"
        layout = "native" if replica.injector.native_sidecars else "classic"
        console.print(f"  identity: {identity}; sidecar layout: {layout}")
        console.print(f"  webhooks: https://{options.webhook_host}:{replica.webhook_port}")
        console.print(
            f"  lease:    {options.namespace}/meshplane-leader as {replica.leader.identity}"
        )

    try:
        asyncio.run(app.serve_k8s(config, options, ready))
    except OSError as error:
        console.print(f"[red]error:[/] {error.strerror or error}", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print("meshplane k8s stopped")
