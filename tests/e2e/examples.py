"""One of our examples run as a user runs it: `meshplane up -f <copy>` with its own control plane.

The example's files are used as published (a copy, so the session's processes can be told
apart by directory); only ``--publish`` moves published workloads to free ports. Edits are
re-applied with ``meshplane apply`` signed as the data dir's administrator.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from meshplane import client

from .harness import alive, descendants, free_port, running_in
from .traffic import DIRECT

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STARTUP = 90.0
"""Seconds a session gets to come up on a loaded 2-core box (generous on purpose)."""


class ExampleSession:
    """`meshplane up -f <copy of examples/NAME> --publish W=127.0.0.1:<free>` for each W."""

    def __init__(self, workdir: Path, name: str, published: tuple[str, ...]) -> None:
        """Copy the example, pick the ports, start `up`."""
        self.workdir = workdir / name
        shutil.copytree(EXAMPLES / name, self.workdir)
        self.ports = {workload: free_port() for workload in published}
        self.api_port = free_port()
        argv = [sys.executable, "-m", "meshplane.cli.main", "up", "-f", str(self.workdir)]
        argv += ["--api-port", str(self.api_port), "--xds-port", str(free_port())]
        argv += ["--data-dir", str(self.data_dir)]
        for workload, port in self.ports.items():
            argv += ["--publish", f"{workload}=127.0.0.1:{port}"]
        self.log = workdir / f"{name}-up.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.seen: set[int] = set()

    @property
    def data_dir(self) -> Path:
        """The control plane's data dir (inside the copy)."""
        return self.workdir / "data"

    @property
    def url(self) -> str:
        """The control plane's API."""
        return f"http://127.0.0.1:{self.api_port}"

    def get(
        self, workload: str, path: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, str]:
        """GET ``path`` at a published workload; (status, body); never through a proxy."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.ports[workload]}{path}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with DIRECT.open(request, timeout=60) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def answers(self, workload: str, path: str) -> str | None:
        """The body of a 200 at ``path``, None while it does not answer 200 (for polling)."""
        if self.process.poll() is not None:
            raise AssertionError(f"meshplane up exited early:\n{self.log.read_text()}")
        try:
            status, body = self.get(workload, path)
        except OSError:
            return None
        return body if status == 200 else None

    def apply(self, *files: Path) -> str:
        """``meshplane apply -f FILE…`` against the session's control plane; its output."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "credentials"),
            AWS_PROFILE="meshplane",
        )
        argv = [sys.executable, "-m", "meshplane.cli.main", "apply", "--server", self.url]
        for file in files:
            argv += ["-f", str(file)]
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def proxies(self) -> list[dict[str, object]]:
        """The control plane's proxy read model."""
        signer = client.Signer.from_file(self.data_dir / "credentials", "us-west-2")
        transport = client.Transport(self.url, trust_env=False, signer=signer)
        return list(client.MeshplaneClient(transport).proxies().proxies)

    def running(self) -> set[int]:
        """Every process below `up` now (remembered, to check none outlives the session)."""
        found = descendants(self.process.pid)
        self.seen |= found
        return found

    def stop(self) -> int:
        """SIGTERM, wait; the exit code."""
        self.running()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=30)

    def leftovers(self) -> set[int]:
        """Processes of this session still alive after stop()."""
        return {pid for pid in self.seen if alive(pid)} | running_in(self.workdir)
