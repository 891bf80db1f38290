"""The walkthrough as a user runs it, for end-to-end tests: real processes, real ports.

* :class:`Serve` — ``meshplane serve`` on fixed free ports and a data dir, so it
  can be SIGKILLed and restarted exactly where it was;
* :class:`Up` — ``meshplane up -f <copy of examples/echo> --server URL``: the
  walkthrough's workloads with their Envoy sidecars, the frontend published on
  a free port of its own (``publish:`` rewritten in the copy);
* :func:`session` — both running for a test module, then stopped, with no
  process of theirs left behind;
* :func:`apply_weights` — the walkthrough's edit-and-re-apply of vr-echo-backend.yaml.

Every wait polls a condition with a deadline; nothing sleeps in place of synchronisation.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .traffic import DIRECT, Plane, poll

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "echo"
STARTUP = 90.0
"""Seconds a process gets to come up on a loaded 2-core box (generous on purpose)."""


def free_port() -> int:
    """A loopback port free right now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _meshplane(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshplane.cli.main", *args]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    return _alive(pid)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` in the process tree."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and _alive(child):
                found.add(child)
                todo.append(child)
    return found


def running_in(directory: Path) -> set[int]:
    """Live processes whose working directory or command line is inside ``directory``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if (str(directory) in cmdline or cwd.startswith(str(directory))) and _alive(
                int(entry.name)
            ):
                found.add(int(entry.name))
    return found


def _stop(process: subprocess.Popen[bytes], grace: float = 30.0) -> int:
    """SIGTERM, wait ``grace`` seconds, then SIGKILL; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=grace)


class Serve:
    """``meshplane serve`` on fixed ports and a data dir, restartable in place."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        """Pick the ports now so a restart binds the same ones; ``env`` adds variables."""
        self.workdir = workdir
        self.env = {**os.environ, **(env or {})}
        self.data_dir = workdir / "data"
        self.api_port, self.xds_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """The App Mesh API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log(self) -> Path:
        """This start's combined stdout/stderr."""
        return self.workdir / f"serve-{self.starts}.log"

    def start(self) -> Serve:
        """Start and wait until ``/healthz`` answers."""
        self.starts += 1
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                _meshplane(
                    "serve",
                    "--api-port",
                    str(self.api_port),
                    "--xds-port",
                    str(self.xds_port),
                    "--data-dir",
                    str(self.data_dir),
                    "--host",
                    "127.0.0.1",
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        poll(self._healthy, STARTUP, f"meshplane serve on {self.url}")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"meshplane serve exited early:\n{self.log.read_text()}")
        return Plane(self.url, self.data_dir).reachable()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is closed politely."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        return _stop(self.process)


class Up:
    """``meshplane up -f <copy of examples/echo> --server URL``, published on a free port."""

    def __init__(self, workdir: Path, serve: Serve, extra_args: Sequence[str] = ()) -> None:
        """Copy the example into ``workdir/echo`` with ``publish:`` on a free port.

        ``extra_args`` go after ``up``'s own (``--isolation netns``).
        """
        self.extra_args = tuple(extra_args)
        self.directory = workdir / "echo"
        shutil.copytree(EXAMPLE, self.directory)
        self.port = free_port()
        workloads = self.directory / "workloads.yaml"
        text = workloads.read_text()
        assert text.count("publish: 127.0.0.1:8080") == 1, "the example's publish line moved"
        workloads.write_text(text.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}"))
        self.serve = serve
        self.log = workdir / "up.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.seen: set[int] = set()
        """Every process ever observed below ``up`` (apps and Envoys)."""

    def start(self) -> Up:
        """Start ``up`` in the example directory and wait until the frontend answers."""
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                _meshplane(
                    "up",
                    "-f",
                    str(self.directory),
                    "--server",
                    self.serve.url,
                    "--xds-port",
                    str(self.serve.xds_port),
                    *self.extra_args,
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=admin_env(self.serve),
            )
        poll(self._answering, STARTUP, f"the published frontend on port {self.port}")
        return self

    def _answering(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"meshplane up exited early:\n{self.log.read_text()}")
        try:
            with DIRECT.open(f"http://127.0.0.1:{self.port}/", timeout=10) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def processes(self) -> dict[int, str]:
        """The apps and Envoys running below ``up`` now (pid → command name)."""
        assert self.process is not None
        found = descendants(self.process.pid)
        self.seen |= found
        return {pid: _comm(pid) for pid in found}

    def sidecar_admin(self, node_id: str) -> Path:
        """The admin socket of the running Envoy of node id ``node_id`` (from its bootstrap)."""
        sockets = []
        for pid, name in self.processes().items():
            if name != "envoy":
                continue
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            config = json.loads(Path(argv[argv.index("--config-path") + 1]).read_text())
            if config["node"]["id"] == node_id:
                sockets.append(Path(config["admin"]["address"]["pipe"]["path"]))
        assert len(sockets) == 1, f"{len(sockets)} sidecars of {node_id}"
        return sockets[0]

    def stop(self) -> int:
        """SIGTERM ``up`` (it stops its workloads and sidecars) and wait; returns the exit code."""
        assert self.process is not None
        self.processes()
        return _stop(self.process, grace=60.0)

    def leftovers(self) -> set[int]:
        """Processes of this session still alive: every one ``up`` ran, or one in its directory."""
        return {pid for pid in self.seen if _alive(pid)} | running_in(self.directory)


def admin_env(serve: Serve) -> dict[str, str]:
    """The environment of a ``meshplane`` command signing as ``serve``'s administrator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(serve.data_dir / "credentials"), AWS_PROFILE="meshplane"
    )
    return env


def apply_weights(directory: Path, serve: Serve, blue: int, green: int) -> str:
    """Edit the copy's vr-echo-backend.yaml to ``blue``/``green`` and ``meshplane apply`` it."""
    manifest = directory / "vr-echo-backend.yaml"
    lines = manifest.read_text().splitlines(keepends=True)
    weights = [i for i, line in enumerate(lines) if line.strip().startswith("weight:")]
    assert len(weights) == 2, "vr-echo-backend.yaml should weight exactly blue then green"
    for index, weight in zip(weights, (blue, green), strict=True):
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
        lines[index] = f"{indent}weight: {weight}\n"
    manifest.write_text("".join(lines))
    done = subprocess.run(
        _meshplane("apply", "-f", str(manifest), "--server", serve.url),
        env=admin_env(serve),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def session(workdir: Path, extra_args: Sequence[str] = ()) -> Iterator[tuple[Serve, Up]]:
    """A control plane and ``up`` running the walkthrough; both stopped, nothing left behind."""
    serve = Serve(workdir)
    up = Up(workdir, serve, extra_args)
    try:
        serve.start()
        up.start()
        # One app and one Envoy sidecar per workload, all below ``up``. The frontend answers
        # once blue does; green may still be starting (in its own namespace, that takes a
        # while), so wait for all six.
        running = poll(
            lambda: found if len(found := up.processes()) >= 6 else None,
            STARTUP,
            "every app and sidecar of the walkthrough",
        )
        assert len(running) == 6, running
        assert list(running.values()).count("envoy") == 3, running
        Plane(serve.url, serve.data_dir).wait_converged()
        yield serve, up
    finally:
        up_code = up.stop() if up.process is not None else 0
        if serve.process is not None and serve.process.poll() is None:
            serve.stop()
    assert up_code == 0, up.log.read_text()
    assert up.leftovers() == set(), f"processes left behind: {up.leftovers()}"
