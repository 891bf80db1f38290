"""A user's mistake is one line naming what is wrong, a non-zero exit, and no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

MESHPLANE = [sys.executable, "-m", "meshplane.cli.main"]


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MESHPLANE, *argv], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port a plain socket listens on for the test's length."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize("flag", ["--api-port", "--xds-port"])
@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_refuses_a_port_out_of_range_in_one_line(
    tmp_path: Path, flag: str, port: str
) -> None:
    """`serve --api-port 70000` (or --xds-port, or -1) exits 2 with one line naming the port."""
    other = "--xds-port" if flag == "--api-port" else "--api-port"
    done = _run("serve", flag, port, other, "0", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: {flag} must be a port from 0 to 65535, got {port}\n"
    assert not (tmp_path / "data").exists()


def test_serve_on_a_taken_xds_port_prints_one_error_line(tmp_path: Path, taken_port: int) -> None:
    """A taken --xds-port ends `serve` with exit code 1 and one line naming the port."""
    argv = ["--xds-port", str(taken_port), "--api-port", "0", "--data-dir", str(tmp_path)]
    done = _run("serve", *argv)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"error: cannot listen on 127.0.0.1:{taken_port} for xDS: Address already in use\n"
    )


def test_serve_with_a_data_dir_that_is_a_file_names_the_path(tmp_path: Path) -> None:
    """--data-dir naming a file: exit 1 and one line naming it."""
    (tmp_path / "afile").write_text("", encoding="utf-8")
    done = _run("serve", "--api-port", "0", "--xds-port", "0", "--data-dir", "afile", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr == "error: the data dir cannot be written: afile/lock (File exists)\n"


def test_serve_with_a_data_dir_that_cannot_be_created_names_the_path(tmp_path: Path) -> None:
    """--data-dir that cannot be made (/proc takes no new directory): exit 1, one line naming it."""
    done = _run("serve", "--api-port", "0", "--xds-port", "0", "--data-dir", "/proc/meshplane-x")
    assert done.returncode == 1, done.stderr
    missing = "/proc/meshplane-x/lock (No such file or directory)"
    assert done.stderr == f"error: the data dir cannot be written: {missing}\n"


def test_apply_of_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    """`apply -f` of a Latin-1 file exits 1 with one line naming the file; nothing is sent."""
    bad = tmp_path / "mesh.yaml"
    bad.write_bytes(b"kind: Mesh\nmetadata: {name: caf\xe9}\n")
    env_server = "http://127.0.0.1:1"  # nothing listens: reading must fail before any request
    done = _run("apply", "-f", str(bad), "--server", env_server)
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"error: {bad}: not UTF-8 text (invalid continuation byte at byte 31)\n"
    assert done.stdout == ""


def test_apply_of_a_directory_with_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    """`apply -f DIR` names the one file in DIR that is not UTF-8."""
    (tmp_path / "a.yaml").write_text("kind: Mesh\nmetadata: {name: a}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe")
    done = _run("apply", "-f", str(tmp_path), "--server", "http://127.0.0.1:1")
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"error: {tmp_path / 'b.yaml'}: not UTF-8 text (invalid start byte at byte 0)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("serve", "--api-port", "abc"),
            "error: --api-port must be an integer, got 'abc' (see 'meshplane serve --help')",
        ),
        (
            ("up", "-f", ".", "--xds-port", "9o90"),
            "error: --xds-port must be an integer, got '9o90' (see 'meshplane up --help')",
        ),
        (
            ("logs", "web", "--tail", "ten"),
            "error: --tail must be an integer, got 'ten' (see 'meshplane logs --help')",
        ),
        (
            ("top", "--interval", "soon"),
            "error: --interval must be a number, got 'soon' (see 'meshplane top --help')",
        ),
        (
            ("apply", "-f", "x.yaml", "--wait", "--timeout", "1m"),
            "error: --timeout must be a number, got '1m' (see 'meshplane apply --help')",
        ),
        (("get",), "error: missing argument KIND (see 'meshplane get --help')"),
    ],
)
def test_a_bad_option_value_is_one_line_naming_the_option_and_the_rule(
    argv: tuple[str, ...], message: str
) -> None:
    """Every command answers a value of the wrong type with exit 2 and one line, no usage box."""
    done = _run(*argv)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == message + "\n"


def test_other_usage_errors_keep_typers_rendering() -> None:
    """An unknown command still gets typer's usage block (only values are one line)."""
    done = _run("nosuch")
    assert done.returncode == 2
    assert "No such command 'nosuch'." in done.stderr
    assert done.stderr.startswith("Usage: meshplane [OPTIONS] COMMAND [ARGS]...\n")


def test_clirunner_sees_the_one_line_usage_error_too() -> None:
    """typer's CliRunner (what most CLI tests use) gets the same one line and exit 2, no box."""
    from typer.testing import CliRunner  # noqa: PLC0415 - this test alone runs in-process

    from meshplane.cli.main import cli  # noqa: PLC0415

    result = CliRunner().invoke(cli, ["serve", "--api-port", "abc"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: --api-port must be an integer, got 'abc' (see 'meshplane serve --help')\n"
    )
