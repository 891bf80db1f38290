"""CLI start-up: wall time of ``meshplane get``, ``apply`` and ``proxy-status`` (median of 20).

Each run is a fresh ``python -m meshplane.cli.main`` process doing real work against a real
control plane (``meshplane.testing.ControlPlane`` with the walkthrough applied): ``get
virtualrouters``, ``apply -f vr-echo-backend.yaml`` (unchanged: nothing to write) and
``proxy-status`` (no proxy connected, so it exits 1 by design). Most of the time is Python
importing modules before the first request, which is what lazy imports cut. Beside the
wall time it prints the child's CPU time (user + system), which a loaded machine inflates
far less than the wall time.

Run: ``python -m bench.cli_startup [--runs 20]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meshplane.testing import ControlPlane

ECHO = Path(__file__).resolve().parents[1] / "examples" / "echo"
COMMANDS = {
    "get": ["get", "virtualrouters"],
    "apply": ["apply", "-f", str(ECHO / "vr-echo-backend.yaml")],
    "proxy-status": ["proxy-status"],
    "--help": ["--help"],
}


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    """Print each command's median, min and max over ``--runs`` runs, in ms."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(Path(tmp)) as plane:
        plane.apply(ECHO)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(plane.credentials_file),
            AWS_PROFILE="meshplane",
            MESHPLANE_SERVER=plane.endpoint,
        )
        print(
            f"{'command':<14} {'wall p50 ms':>12} {'min':>8} {'max':>8} {'CPU p50 ms':>11}"
            f"   ({runs} runs each)"
        )
        for name, args in COMMANDS.items():
            argv = [sys.executable, "-m", "meshplane.cli.main", *args]
            _time(argv, env)  # warm the page cache
            samples = [_time(argv, env) for _ in range(runs)]
            walls = [wall * 1000 for wall, _ in samples]
            cpus = [cpu * 1000 for _, cpu in samples]
            print(
                f"{name:<14} {statistics.median(walls):>12.1f} {min(walls):>8.1f} "
                f"{max(walls):>8.1f} {statistics.median(cpus):>11.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
