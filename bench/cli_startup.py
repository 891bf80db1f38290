"""CLI start-up: wall time of ``meshplane get``, ``apply`` and ``proxy-status`` (median of 20).

Each run is a fresh ``python -m meshplane.cli.main`` process doing real work against a real
control plane (``meshplane.testing.ControlPlane`` with the walkthrough applied): ``get
virtualrouters``, ``apply -f vr-echo-backend.yaml`` (unchanged: nothing to write) and
``proxy-status`` (no proxy connected, so it exits 1 by design). Most of the time is Python
importing modules before the first request, which is what lazy imports cut. Beside the
wall time it prints the child's CPU time (user + system), which a loaded machine inflates
far less than the wall time.

``--vs PYTHON`` times a second interpreter's meshplane (another checkout's venv, e.g. the
main branch's) in the same run, alternating runs A B A B so that both see the same load; the
``python -c pass`` row is the interpreter's own start-up, the floor of every command.

Run: ``python -m bench.cli_startup [--runs 20] [--vs OTHER/.venv/bin/python]``.
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
    "--version": ["--version"],
}


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _row(name: str, samples: list[tuple[float, float]]) -> str:
    walls = [wall * 1000 for wall, _ in samples]
    cpus = [cpu * 1000 for _, cpu in samples]
    return (
        f"{name:<24} {statistics.median(walls):>12.1f} {min(walls):>8.1f} "
        f"{max(walls):>8.1f} {statistics.median(cpus):>11.1f}"
    )


def main() -> None:
    """Print each command's median, min and max over ``--runs`` runs, in ms."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vs", help="another interpreter whose meshplane to time alongside")
    options = parser.parse_args()
    runs = options.runs
    pythons = {"": sys.executable} | ({" (vs)": options.vs} if options.vs else {})
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(Path(tmp)) as plane:
        plane.apply(ECHO)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(plane.credentials_file),
            AWS_PROFILE="meshplane",
            MESHPLANE_SERVER=plane.endpoint,
            PYTHONDONTWRITEBYTECODE="1",  # never write into the other checkout
        )
        print(
            f"{'command':<24} {'wall p50 ms':>12} {'min':>8} {'max':>8} {'CPU p50 ms':>11}"
            f"   ({runs} runs each)"
        )
        floor = {"python -c pass" + tag: [python, "-c", "pass"] for tag, python in pythons.items()}
        commands = {
            name + tag: [python, "-m", "meshplane.cli.main", *args]
            for name, args in COMMANDS.items()
            for tag, python in pythons.items()
        }
        for argv in [*floor.values(), *commands.values()]:
            _time(argv, env)  # warm the page cache
        for rows in (list(floor.items()), list(commands.items())):
            for at in range(0, len(rows), len(pythons)):
                pair = rows[at : at + len(pythons)]
                samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in pair}
                for _ in range(runs):  # A B A B: both see the same moments of load
                    for name, argv in pair:
                        samples[name].append(_time(argv, env))
                for name, _ in pair:
                    print(_row(name, samples[name]), flush=True)


if __name__ == "__main__":
    main()
