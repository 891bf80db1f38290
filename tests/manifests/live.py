"""A live control plane (`meshplane serve` in its own process) and the clients tests use on it."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from meshplane.client import Signer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "echo"
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Server:
    """One `meshplane serve` process on free ports with its own data dir."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "meshplane.cli.main", "serve", "--data-dir"]
        command += [str(self.data_dir), "--api-port", str(self.port)]
        command += ["--xds-port", str(free_port())]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "meshplane serve exited early"
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if json.loads(answer.read())["status"] == "ok":
                        return
            except OSError:
                time.sleep(0.05)  # polling interval while the server binds, not a timing guess
        raise AssertionError("meshplane serve did not become healthy")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=DEADLINE)
        self.process = None


@dataclasses.dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


class Cli:
    """Runs `meshplane` commands against one server, as a user's terminal would."""

    def __init__(self, server: Server, cwd: Path) -> None:
        self.server = server
        self.cwd = cwd

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        # No AWS_* variables: the CLI falls back to the data dir's administrator profile.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            MESHPLANE_SERVER=self.server.url,
            MESHPLANE_DATA_DIR=str(self.server.data_dir),
            COLUMNS="400",
        )
        done = subprocess.run(
            [sys.executable, "-m", "meshplane.cli.main", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env=env,
            timeout=DEADLINE,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.code == 0, result.err
        return result.out


def appmesh(server: Server) -> Any:
    """boto3 signed with the administrator keys the server wrote to its data dir."""
    keys = Signer.from_file(server.data_dir / "credentials", "us-west-2").credentials
    return boto3.client(
        "appmesh",
        endpoint_url=server.url,
        region_name="us-west-2",
        aws_access_key_id=keys.access_key,
        aws_secret_access_key=keys.secret_key,
    )


def table(output: str) -> list[dict[str, str]]:
    """A kubectl-style table as one dict per row, cut at the header's column positions."""
    header, *rows = output.rstrip().splitlines()
    columns = [(m.group(0), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    cuts = [start for _, start in columns] + [None]
    return [
        {name: row[cuts[i] : cuts[i + 1]].strip() for i, (name, _) in enumerate(columns)}
        for row in rows
    ]
