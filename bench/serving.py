"""A ``meshplane serve`` subprocess for benchmarks: start on a free port, read RSS, stop.

Benchmarks measure the real server process, as users run it, so client and server
costs are not mixed up in one interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from meshplane.client import Signer

_ENDPOINT = re.compile(r"http://127\.0\.0\.1:(\d+)")


class Server:
    """A running server: its URL and process id."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        data_dir: Path,
        stalls_file: Path | None = None,
    ) -> None:
        self.process = process
        self.url = url
        self.data_dir = data_dir
        self.stalls_file = stalls_file
        """Where :mod:`bench.loopprobe` records the loop's stalls (None: not probed)."""

    def rss_mib(self) -> float:
        """Resident set size of the server process, in MiB (from /proc)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
        return kib / 1024

    def revision(self) -> int:
        """The store revision from /healthz."""
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=10) as response:
            return int(json.loads(response.read())["revision"])

    def signer(self) -> Signer | None:
        """The administrator's signer (None for a server run with ``--auth none``)."""
        credentials = self.data_dir / "credentials"
        return Signer.from_file(credentials, "us-west-2") if credentials.exists() else None

    def client(self, pool: int = 10) -> Any:
        """A boto3 App Mesh client for this server, signed as its administrator, no retries."""
        signer = self.signer()
        key_id, secret = (
            (signer.credentials.access_key, signer.credentials.secret_key) if signer else ("x", "x")
        )
        return boto3.client(
            "appmesh",
            endpoint_url=self.url,
            region_name="us-west-2",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=pool),
        )


def _wait(condition: Any, deadline: float, what: str) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def _command(stalls_file: Path | None) -> tuple[list[str], dict[str, str]]:
    """The ``meshplane`` console script, or :mod:`bench.loopprobe` running it probed.

    The probe runs with this interpreter, so ``PYTHONPATH=<other tree>/src`` measures
    another tree's server with this tree's probe (this tree's ``bench`` is appended).
    """
    if stalls_file is None:
        return [str(Path(sys.executable).parent / "meshplane")], {}
    here = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), here) if p)
    return [sys.executable, "-m", "bench.loopprobe", str(stalls_file)], {"PYTHONPATH": path}


@contextlib.contextmanager
def running(env: Mapping[str, str] | None = None, *, probed: bool = False) -> Iterator[Server]:
    """Start ``meshplane serve`` on a fresh data dir; SIGTERM it when the block ends.

    ``probed``: the server's event loop records its stalls (:mod:`bench.loopprobe`) in
    :attr:`Server.stalls_file`.
    """
    with tempfile.TemporaryDirectory(prefix="meshplane-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        log_path = Path(tmp) / "serve.log"
        stalls_file = Path(tmp) / "stalls" if probed else None
        command, probe_env = _command(stalls_file)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *command,
                    "serve",
                    *("--data-dir", str(data_dir), "--api-port", "0", "--xds-port", "0"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **probe_env, **(env or {})},
            )
        try:
            match = _wait(lambda: _ENDPOINT.search(log_path.read_text()), 60, "the endpoint")
            server = Server(process, f"http://127.0.0.1:{match.group(1)}", data_dir, stalls_file)
            _wait(lambda: _healthy(server), 60, "/healthz")
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _healthy(server: Server) -> bool:
    try:
        server.revision()
    except OSError:
        return False
    return True


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def median(samples: Sequence[float]) -> float:
    """The median of ``samples``."""
    return statistics.median(samples)
