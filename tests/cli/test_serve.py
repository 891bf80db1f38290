"""`meshplane serve`: what it prints on start works as printed, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from meshplane.client import Signer

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def _read_until(path: Path, pattern: str, process: subprocess.Popen[bytes]) -> re.Match[str]:
    deadline = time.monotonic() + 60
    while True:
        found = re.search(pattern, path.read_text())
        if found:
            return found
        assert process.poll() is None, path.read_text()
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.05)


def test_serve_prints_a_working_aws_line_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """The printed `aws appmesh list-meshes` line answers; SIGINT exits 0 with a goodbye."""
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [
                str(BIN / "meshplane"),
                "serve",
                "--data-dir",
                str(tmp_path / "data"),
                "--api-port",
                "0",
                "--xds-port",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        line = _read_until(log, r"try: +(aws appmesh list-meshes --endpoint-url \S+)", serve)
        xds = _read_until(log, r"xDS: +127\.0\.0\.1:(\d+) \(ADS for Envoy sidecars\)", serve)
        assert int(xds.group(1)) > 0
        endpoint = line.group(1).rsplit(" ", 1)[1]
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/healthz", timeout=5) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        # The banner's `export` line is all a user needs to run the printed `aws` line.
        export = _read_until(log, r"use: +export (\S+) (\S+)\n", serve)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(dict(item.split("=", 1) for item in export.groups()))
        env.update(AWS_DEFAULT_REGION="us-west-2", AWS_CONFIG_FILE=os.devnull)
        assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(tmp_path / "data" / "credentials")
        assert env["AWS_PROFILE"] == "meshplane"
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "data" / "credentials").stat().st_mode) == 0o600
        argv = shlex.split(line.group(1))
        done = subprocess.run(
            [str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["{", '"meshes":', "[]", "}"]
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
        assert log.read_text().rstrip().endswith("meshplane stopped")
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_serve_on_a_taken_api_port_prints_one_error_line(tmp_path: Path) -> None:
    """A taken --api-port ends `serve` with exit code 1 and one error line, not a traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        argv = [sys.executable, "-m", "meshplane.cli.main", "serve", "--api-port", str(taken)]
        argv += ["--xds-port", "0", "--data-dir", str(tmp_path)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr == (
        f"error: error while attempting to bind on address ('127.0.0.1', {taken}): "
        "address already in use\n"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        return int(probe.getsockname()[1])


def test_serve_takes_every_setting_from_the_environment(tmp_path: Path) -> None:
    """MESHPLANE_* variables set host, ports, data dir, region and account when no flag is given."""
    api_port, xds_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "MESHPLANE_HOST": "127.0.0.2",
        "MESHPLANE_API_PORT": str(api_port),
        "MESHPLANE_XDS_PORT": str(xds_port),
        "MESHPLANE_DATA_DIR": str(tmp_path / "from-env"),
        "MESHPLANE_REGION": "eu-west-3",
        "MESHPLANE_ACCOUNT_ID": "210987654321",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [str(BIN / "meshplane"), "serve"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        _read_until(log, r"stop: +Ctrl-C", serve)
        text = log.read_text()
        assert f"http://127.0.0.2:{api_port}" in text
        assert f"xDS:   127.0.0.2:{xds_port} (ADS for Envoy sidecars)" in text
        assert sorted(p.name for p in (tmp_path / "from-env").glob("*.db")) == ["meshplane.db"]
        with urllib.request.urlopen(f"http://127.0.0.2:{api_port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        url, body = f"http://127.0.0.2:{api_port}/v20190125/meshes", b'{"meshName": "m"}'
        signer = Signer.from_file(tmp_path / "from-env" / "credentials", "eu-west-3")
        headers = signer.sign("PUT", url, body, {"content-type": "application/json"})
        request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
        with urllib.request.urlopen(request, timeout=5) as answer:
            arn = json.loads(answer.read())["metadata"]["arn"]
        assert arn == "arn:aws:appmesh:eu-west-3:210987654321:mesh/m"
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_serve_flags_win_over_the_environment(tmp_path: Path) -> None:
    """--api-port beats MESHPLANE_API_PORT, so a flag still means what it says."""
    env = {**os.environ, "MESHPLANE_ACCOUNT_ID": "bad"}
    argv = [str(BIN / "meshplane"), "serve", "--account-id", "12", "--data-dir", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 2
    assert done.stderr == "error: --account-id must be 12 digits, got '12'\n"
