"""CLI start-up: wall and CPU time of `meshplane get`, `apply` and `proxy-status` (p50, p99).

Each run is a fresh ``meshplane`` process (the console script users run, from the venv
of the interpreter given) doing real work against a real control plane
(``meshplane.testing.ControlPlane`` with the walkthrough applied): ``get virtualservices
-n demos`` (a one-row table), ``apply -f vr-echo-backend.yaml`` (unchanged: nothing to
write) and ``proxy-status`` (no proxy connected: an empty table), then ``--help`` and
``--version``. Most of the time is Python importing modules before the first request. The
child's CPU time (user + system) is printed beside the wall time: a loaded machine
inflates it far less.

``--vs PYTHON`` times a second interpreter's meshplane (another checkout's venv, e.g. the
main branch's) in the same run, alternating runs A B A B so that both see the same load;
that checkout is run with ``PYTHONDONTWRITEBYTECODE`` so nothing is written into it.
``--vs-tree DIR`` times this venv's meshplane with ``PYTHONPATH=DIR/src`` instead (a
checkout without a venv of its own, e.g. ``git archive main src | tar -x -C DIR``, whose
``.pyc`` files it writes): the same interpreter and packages, only meshplane's code differs. The
``python -c pass`` row is the interpreter's own start-up, the floor of every command.
The load average is printed before and after.

Run: ``python -m bench.cli_startup [--runs 20] [--vs OTHER/.venv/bin/python | --vs-tree DIR]``.
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
    "get": ["get", "virtualservices", "-n", "demos"],
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


def _p99(values: list[float]) -> float:
    """The 99th percentile (the largest of fewer than 100 runs, interpolated above)."""
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _row(name: str, samples: list[tuple[float, float]]) -> str:
    walls = [wall * 1000 for wall, _ in samples]
    cpus = [cpu * 1000 for _, cpu in samples]
    return (
        f"{name:<24} {statistics.median(walls):>9.1f} {_p99(walls):>9.1f} "
        f"{statistics.median(cpus):>9.1f} {_p99(cpus):>9.1f}"
    )


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    """Print each command's wall and CPU median and p99 over ``--runs`` runs, in ms."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vs", help="another interpreter whose meshplane to time alongside")
    parser.add_argument("--vs-tree", help="a checkout whose src/ to time with this interpreter")
    options = parser.parse_args()
    runs = options.runs
    other = options.vs or (sys.executable if options.vs_tree else None)
    pythons = {"": sys.executable} | ({" (vs)": other} if other else {})
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(Path(tmp)) as plane:
        plane.apply(ECHO)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(plane.credentials_file),
            AWS_PROFILE="meshplane",
            MESHPLANE_SERVER=plane.endpoint,
        )
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        envs = {tag: env if not tag else env | {"PYTHONDONTWRITEBYTECODE": "1"} for tag in pythons}
        if options.vs_tree:  # a scratch copy: its .pyc files are written, as this tree's are
            envs[" (vs)"] = env | {"PYTHONPATH": str(Path(options.vs_tree).resolve() / "src")}
        print(f"load average before: {_load()}")
        print(
            f"{'command':<24} {'wall p50':>9} {'wall p99':>9} {'CPU p50':>9} {'CPU p99':>9}"
            f"   (ms, {runs} runs each)"
        )
        floor = {
            "python -c pass" + tag: (tag, [python, "-c", "pass"]) for tag, python in pythons.items()
        }
        commands = {
            name + tag: (tag, [str(Path(python).parent / "meshplane"), *args])
            for name, args in COMMANDS.items()
            for tag, python in pythons.items()
        }
        for tag, argv in [*floor.values(), *commands.values()]:
            _time(argv, envs[tag])  # warm the page cache (and write this tree's .pyc files)
        for rows in (list(floor.items()), list(commands.items())):
            for at in range(0, len(rows), len(pythons)):
                pair = rows[at : at + len(pythons)]
                samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in pair}
                for _ in range(runs):  # A B A B: both see the same moments of load
                    for name, (tag, argv) in pair:
                        samples[name].append(_time(argv, envs[tag]))
                for name, _ in pair:
                    print(_row(name, samples[name]), flush=True)
        print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
