"""``meshplane up -f PATH``: the command's flags; the work is in :mod:`bringing_up`.

Kept apart so that ``meshplane --help`` and client commands do not import the
runtime (aiohttp's client, the supervisor) just to list this command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(cli: typer.Typer) -> None:
    """Add ``meshplane up`` to the CLI."""

    @cli.command()
    def up(
        file: Annotated[
            Path,
            typer.Option("-f", "--filename", help="Directory of manifests and workloads.yaml."),
        ],
        namespace: Annotated[
            str | None,
            typer.Option(
                "-n", "--namespace", help="Namespace for objects that name none (else default)."
            ),
        ] = None,
        server: Annotated[
            str | None, typer.Option(help="Use this running control plane (http://host:port).")
        ] = None,
        api_port: Annotated[
            int, typer.Option(help="Port of the started control plane's API.")
        ] = 9080,
        xds_port: Annotated[
            int | None,
            typer.Option(
                help="Port of its xDS server [default: 9090; with --server, the port it reports]."
            ),
        ] = None,
        data_dir: Annotated[
            Path, typer.Option(help="Its store's directory; process logs go to its logs/.")
        ] = Path(".meshplane"),
        publish: Annotated[
            list[str],
            typer.Option(
                "--publish",
                help="WORKLOAD=IP:PORT: publish that workload there instead of its `publish:`.",
            ),
        ] = [],  # noqa: B006 - typer reads the default
        isolation: Annotated[
            str,
            typer.Option(
                help="process (shared network, HTTP_PROXY) or netns (root on Linux: each "
                "replica in a network namespace behind proxy-init's iptables rules)."
            ),
        ] = "process",
        prometheus_targets: Annotated[
            Path | None,
            typer.Option(
                help="Keep a Prometheus file_sd JSON file listing every sidecar's stats port."
            ),
        ] = None,
    ) -> None:
        """Start a control plane, apply PATH's manifests, run PATH/workloads.yaml with sidecars."""
        from meshplane.cli import bringing_up  # noqa: PLC0415 - see the module docstring

        raise typer.Exit(
            bringing_up.run(
                file,
                namespace,
                server,
                api_port,
                xds_port,
                data_dir,
                publish,
                isolation,
                prometheus_targets,
            )
        )
