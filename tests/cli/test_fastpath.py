"""The console script's fast path: typer's options and typer's output, without importing typer."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import typer.main

from meshplane import settings
from meshplane.auth import principals
from meshplane.cli import calling, events, fastpath, main, proxystatus, registry, signing
from meshplane.testing import ControlPlane

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
DECLINED = {
    "get": {"selector", "sort_by", "watch", "for_object"},
    "apply": {"dry_run", "wait", "timeout"},
    "proxy-status": set(),
}
"""The options each command leaves to typer (rare, or they need typer's coercion)."""


@pytest.mark.parametrize("name", sorted(fastpath.COMMANDS))
def test_the_table_spells_each_option_as_typer_does(name: str) -> None:
    """Every option run here has typer's spellings, kind, env var and default; the rest declined."""
    group = typer.main.get_command(main.cli)
    assert isinstance(group, registry.LazyGroup)
    command = group.load(name)
    options, arguments, required = fastpath.COMMANDS[name]
    by_param: dict[str, tuple[set[str], str]] = {}
    for spelling, (param, kind) in options.items():
        by_param.setdefault(param, (set(), kind))[0].add(spelling)
    typer_options = [p for p in command.params if p.param_type_name == "option"]
    typer_arguments = [p for p in command.params if p.param_type_name == "argument"]
    assert {p.name for p in typer_options} == set(by_param) | DECLINED[name]
    for param in typer_options:
        if param.name in DECLINED[name]:
            continue
        spellings, kind = by_param[str(param.name)]
        assert set(param.opts) | set(param.secondary_opts) == spellings
        assert (param.is_flag, param.multiple) == (kind == fastpath.FLAG, kind == fastpath.VALUES)  # type: ignore[attr-defined]
        if param.name == "server":
            assert (param.envvar, param.default) == (fastpath.SERVER_ENV, fastpath.DEFAULT_SERVER)
    assert tuple(p.name for p in typer_arguments) == arguments
    assert sum(p.required for p in typer_arguments) == required


def test_get_events_is_left_to_typer() -> None:
    """The words for `get events` are the events module's."""
    assert fastpath.EVENT_WORDS == events.WORDS


def test_signing_reads_the_settings_and_file_name_the_declarations_name() -> None:
    """signing's region, data dir and credentials file name are settings' and auth's."""
    fields = {f.name: f for f in dataclasses.fields(settings.Settings)}
    for declared, field in ((signing.REGION, "region"), (signing.DATA_DIR, "data_dir")):
        assert declared == (fields[field].metadata["env"], str(fields[field].default))
    assert signing.CREDENTIALS_FILE == principals.CREDENTIALS_FILE


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["vs"], {"kind": "vs"}),
        (["vs", "a", "-n", "demos"], {"kind": "vs", "name": "a", "namespace": "demos"}),
        (["-A", "vs", "--output=wide"], {"kind": "vs", "all_namespaces": True, "output": "wide"}),
        (["vs", "-n", "a", "--namespace", "b"], {"kind": "vs", "namespace": "b"}),  # last wins
        (["vs", "--server="], {"kind": "vs", "server": ""}),
        ([], None),  # a missing argument: typer's error
        (["vs", "a", "b"], None),  # an extra argument
        (["vs", "--help"], None),
        (["vs", "-w"], None),  # declined: typer runs it
        (["vs", "-n"], None),  # a missing value
        (["vs", "-n", "-A"], None),  # a value that looks like an option
        (["vs", "-ndemos"], None),  # an attached short value: typer's to parse
        (["vs", "-A=x"], None),
        (["vs", "--all-namespaces=1"], None),
        (["--", "vs"], None),
        (["-", "vs"], None),
    ],
)
def test_get_parses_as_typer_or_declines(
    argv: list[str], expected: dict[str, object] | None
) -> None:
    """What the fast path takes for `get` and what it hands to typer."""
    options, arguments, required = fastpath.COMMANDS["get"]
    assert fastpath.parse(argv, options, arguments, required) == expected


def test_apply_collects_every_file_and_reads_stdin_as_a_value() -> None:
    """`-f` repeats; `-f -` is stdin (a value, not an option)."""
    options, arguments, required = fastpath.COMMANDS["apply"]
    parsed = fastpath.parse(["-f", "a.yaml", "--filename=b", "-f", "-", "-R"], options, (), 0)
    assert parsed == {"files": ["a.yaml", "b", "-"], "recursive": True}
    assert fastpath.parse(["-f", "a", "--wait"], options, arguments, required) is None


def test_shell_completion_and_other_commands_go_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Completion requests and every other command are typer's: run() answers None."""
    assert fastpath.run(["serve"]) is None
    assert fastpath.run(["--help"]) is None
    monkeypatch.setenv("_MESHPLANE_COMPLETE", "complete_bash")
    assert fastpath.run(["get", "vs"]) is None


FAST = (
    "import sys\nfrom meshplane.cli import fastpath\ncode = fastpath.run(sys.argv[1:])\n"
    "assert code is not None, 'declined'\n"
    "assert not [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'pydantic')]\n"
    "slow = ('dataclasses', 'inspect', 'http', 'encodings.idna', 'meshplane.client.meshplane')\n"
    "assert not [m for m in slow if m in sys.modules], [m for m in slow if m in sys.modules]\n"
    "sys.exit(code)"
)
TYPER = "from meshplane.cli.main import main\nmain()"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane with the walkthrough applied."""
    with ControlPlane(tmp_path_factory.mktemp("fastpath")) as started:
        started.apply(ECHO)
        yield started


def _run(code: str, argv: list[str], plane: ControlPlane) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MESHPLANE_"))}
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(plane.credentials_file),
        "AWS_PROFILE": "meshplane",
        "MESHPLANE_SERVER": plane.endpoint,
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    def ageless(text: str) -> str:  # the two runs may see an object one second older
        return re.sub(r" +", " ", re.sub(r"\b\d+[smhd]\b", "AGE", text))

    return done.returncode, ageless(done.stdout), ageless(done.stderr)


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "virtualservices", "-n", "demos"],
        ["get", "vs", "-A"],
        ["get", "virtualrouters", "--namespace=demos", "-o", "wide"],
        ["get", "vn", "-n", "demos", "-o", "name"],
        ["get", "vn", "vn-echo-backend-blue", "-n", "demos", "-o", "json"],
        ["get", "vs", "-n", "demos", "-o", "yaml"],
        ["get", "mesh"],
        ["get", "namespaces"],
        ["get", "virtualrouters"],  # none in default: stderr only
        ["get", "vn", "nosuch", "-n", "demos"],  # the server's 404 in kubectl's words
        ["get", "vs", "--server", "http://127.0.0.1:1"],  # unreachable
        ["apply", "-f", str(ECHO / "vr-echo-backend.yaml")],
        ["apply", "-f", str(ECHO), "--strict"],
        ["apply", "-f", "/nonexistent/x.yaml"],
        ["apply"],  # no -f: the command's own error, exit 1
        ["proxy-status"],
        ["proxy-status", "-o", "json"],
        ["proxy-status", "-s", "http://127.0.0.1:1"],
        ["--version"],
    ],
)
def test_the_fast_path_prints_what_typer_prints(argv: list[str], plane: ControlPlane) -> None:
    """Same exit code, stdout and stderr as through typer, and neither typer nor rich loaded."""
    fast = _run(FAST, argv, plane)
    assert fast == _run(TYPER, argv, plane)
    assert "declined" not in fast[2]


@pytest.mark.parametrize("message", ["plain", "\x1b[31mred\x1b[0m and \x1b[1;2mbold", ""])
def test_echo_writes_what_typer_echo_writes(
    message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fast path's echo: the same text as typer.echo to a pipe, escape sequences dropped."""
    calling.echo(message)
    calling.echo(message, err=True)
    ours = capsys.readouterr()
    typer.echo(message)
    typer.echo(message, err=True)
    assert ours == capsys.readouterr()


def test_proxy_status_reads_what_the_typed_client_reads(plane: ControlPlane) -> None:
    """proxy-status's own read of GET /proxies is ProxiesReport.to_json(), field for field."""
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(plane.credentials_file), "AWS_PROFILE": "meshplane"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        read = proxystatus.answer(plane.endpoint)
        typed = proxystatus.fetch(plane.endpoint)
    assert read._asdict() == typed.to_json()
    assert list(read._asdict()) == list(typed.to_json()) == ["revision", "converged", "proxies"]
