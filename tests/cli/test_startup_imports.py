"""CLI start-up stays small: `meshplane.cli.main` imports no command module and no heavy library.

These assert on ``sys.modules`` in fresh interpreters, not on time: a heavy import creeping
back into the entry point or a client command's path fails here on any machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer import _click

from meshplane.cli import main, registry
from meshplane.testing import ControlPlane

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"

HEAVY = (
    "rich",
    "typer",  # the fast path's commands (cli/fastpath.py) never import it
    "urllib.request",  # nor urllib's HTTP stack: plain http:// goes over a socket
    "http.client",
    "ssl",
    "email",
    "meshplane.settings",  # nor the settings' dataclasses and the auth layer (cli/signing.py)
    "meshplane.auth",
    "meshplane.cli.jsonpath",
    "yaml",
    "botocore",
    "boto3",
    "pydantic",
    "asyncio",
    "aiohttp",
    "grpc",
    "google.protobuf",
    "envoy",
    "meshplane.app",
    "meshplane.manifests",
    "meshplane.model.specs_generated",
    "meshplane.runtime",
    "meshplane.store",
    "meshplane.translate",
    "meshplane.xds",
)
"""Libraries and layers no client command needs before it has an answer to print."""


def _loaded(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


TYPER = ("typer", "meshplane.cli.jsonpath")
"""What the typer commands' modules may load (not the fast path)."""


def _heavy(loaded: list[str], allowed: tuple[str, ...] = TYPER) -> list[str]:
    heavy = tuple(h for h in HEAVY if h not in allowed)
    return [
        name for name in loaded if name in heavy or name.startswith(tuple(h + "." for h in heavy))
    ]


def test_the_entry_point_imports_only_itself_and_the_table() -> None:
    """`import meshplane.cli.main` loads main, registry and nothing heavy."""
    loaded = _loaded("import meshplane.cli.main")
    assert [name for name in loaded if name.startswith("meshplane")] == [
        "meshplane",
        "meshplane.cli",
        "meshplane.cli.main",
        "meshplane.cli.registry",
    ]
    assert _heavy(loaded) == []


@pytest.mark.parametrize("module", ["meshplane.cli.manifests", "meshplane.cli.proxystatus"])
def test_the_hot_commands_modules_import_nothing_heavy(module: str) -> None:
    """get, apply and proxy-status's modules import rich, yaml, botocore only where used."""
    assert _heavy(_loaded(f"import {module}")) == []


def test_a_signed_get_with_plain_keys_never_imports_botocore(tmp_path: Path) -> None:
    """`get` signs with a profile of plain keys (then finds no server): botocore never loads."""
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[meshplane]\naws_access_key_id = AKIDTEST\naws_secret_access_key = secret\n",
        encoding="utf-8",
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_PROFILE="meshplane",
        MESHPLANE_SERVER="http://127.0.0.1:1",
    )
    code = (
        "import sys\nfrom meshplane.cli.main import cli\n"
        "try:\n    cli(['get', 'virtualrouters'])\nexcept SystemExit as done:\n"
        "    assert done.code == 1, done.code"
    )
    loaded = _loaded(code, env)
    assert "meshplane.client.sigv4" in loaded
    assert [
        name
        for name in loaded
        if name.startswith(("botocore", "boto3", "yaml", "meshplane.translate"))
    ] == []


def test_the_console_script_imports_nothing_before_the_command() -> None:
    """`import meshplane.cli.fastpath` (the console script) loads only itself and its package."""
    loaded = _loaded("import meshplane.cli.fastpath")
    assert [name for name in loaded if name.startswith("meshplane")] == [
        "meshplane",
        "meshplane.cli",
        "meshplane.cli.fastpath",
    ]
    assert _heavy(loaded, allowed=()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "virtualservices", "-n", "demos"],  # a table
        ["apply", "-f", str(ECHO / "vr-echo-backend.yaml")],
        ["proxy-status"],  # an empty table
        ["proxy-status", "-o", "json"],
    ],
)
def test_the_hot_commands_through_the_console_script_import_nothing_heavy(
    argv: list[str], tmp_path: Path
) -> None:
    """get, apply and proxy-status against a server: no typer, pydantic, rich, urllib, settings."""
    with ControlPlane(tmp_path) as plane:
        plane.apply(ECHO)
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(plane.credentials_file),
            AWS_PROFILE="meshplane",
            MESHPLANE_SERVER=plane.endpoint,
        )
        code = (
            "import sys\nfrom meshplane.cli import fastpath\n"
            f"assert fastpath.run({argv!r}) == 0\n"
            "sys.stdout.flush()"
        )
        loaded = _loaded(code, env)
    assert "meshplane.client.plainhttp" in loaded
    assert _heavy(loaded, allowed=()) == []


def test_every_rows_help_is_its_commands_own_first_paragraph() -> None:
    """The table's one-line help equals what typer reads from the command once imported."""
    group = typer.main.get_command(main.cli)
    assert isinstance(group, registry.LazyGroup)
    found = {}
    for row in main.COMMANDS:
        command = group.load(row.name)
        found[row.name] = (command.help or "").split("\n\n")[0]
    assert found == {row.name: row.help for row in main.COMMANDS}


def test_meshplane_help_is_the_same_before_and_after_every_command_is_imported(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`meshplane --help` from placeholders reads exactly as from the real commands."""
    monkeypatch.setenv("COLUMNS", "100")
    group = typer.main.get_command(main.cli)
    assert isinstance(group, registry.LazyGroup)
    group.get_help(_click.Context(group, info_name="meshplane"))
    lazy = capsys.readouterr().out
    for row in main.COMMANDS:
        group.load(row.name)
    group.get_help(_click.Context(group, info_name="meshplane"))
    assert capsys.readouterr().out == lazy
    assert "│ proxy-status  Show every Envoy's sync state" in lazy
