"""``meshplane credentials create|list|delete``: principals and their IAM-style policies.

Run against a live control plane and signed like every command (see
:mod:`meshplane.cli.signing`), so only a caller allowed ``meshplane:*Credentials`` — the
administrator, by default — can use them. ``create`` prints a shared-credentials profile
section; append it to a credentials file and the key works at once::

    meshplane credentials create reader --policy reader.json >> ~/.aws/credentials
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from meshplane import client
from meshplane.cli import signing
from meshplane.cli.manifests import DEFAULT_SERVER, Server

credentials = typer.Typer(
    name="credentials",
    help="Create, list and delete principals (access keys with an IAM-style policy).",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _call(server: str, method: str, *args: Any) -> Any:
    plane = signing.connect(server, timeout=30)
    try:
        return getattr(plane, method)(*args)
    except client.ControlPlaneError as error:
        body = error.body if isinstance(error.body, dict) else {}
        code = body.get("__type", error.phrase)
        raise _fail(f"{code}: {error.message}") from error
    except OSError as error:
        raise _fail(f"cannot reach the meshplane control plane at {server}: {error}") from error


@credentials.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The principal's name (and profile name).")],
    policy: Annotated[Path, typer.Option("--policy", help="An IAM-style policy document (JSON).")],
    server: Server = DEFAULT_SERVER,
) -> None:
    """Create a principal with POLICY and print its shared-credentials profile section."""
    try:
        document = json.loads(policy.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise _fail(f"{policy}: {error}") from error
    answer = _call(server, "create_credentials", name, document)
    typer.echo(answer["profile"], nl=False)


def _actions(value: str | list[str]) -> str:
    return value if isinstance(value, str) else ",".join(value)


@credentials.command("list")
def list_(server: Server = DEFAULT_SERVER) -> None:
    """List principals: name, access key id and the actions their policy names."""
    typer.echo(f"{'NAME':<24} {'ACCESS KEY ID':<22} STATEMENTS")
    for item in _call(server, "credentials"):
        statements = item["policy"]["Statement"]
        statements = statements if isinstance(statements, list) else [statements]
        summary = "; ".join(f"{s['Effect']} {_actions(s['Action'])}" for s in statements)
        typer.echo(f"{item['name']:<24} {item['accessKeyId']:<22} {summary}")


@credentials.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The principal to delete.")],
    server: Server = DEFAULT_SERVER,
) -> None:
    """Delete a principal; its key is refused from the next request on."""
    answer = _call(server, "delete_credentials", name)
    typer.echo(f'principal "{answer["name"]}" deleted ({answer["accessKeyId"]})')


def register(cli: typer.Typer) -> None:
    """Add ``meshplane credentials`` to the CLI."""
    cli.add_typer(credentials)
