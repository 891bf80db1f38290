"""``meshplane demo``: the blue-green walkthrough, end to end, non-interactive, with narration.

The story App Mesh users know, on real parts: ``meshplane up`` starts a control
plane, applies ``examples/echo`` and runs echo-backend 1.0 and 2.0 and
echo-frontend 2.0, each with a real Envoy sidecar. The demo then calls the
published frontend the way the walkthrough's curl loop did, edits the router's
weights 100/0 → 50/50 → 0/100 in a copy of ``vr-echo-backend.yaml`` and re-applies
it with ``meshplane apply``, and after each step prints the split it observed and
how long the change took to reach every Envoy. No workload is restarted. It exits
non-zero if any step misbehaves.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from meshplane import client, settings
from meshplane.cli import proxystatus

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "echo"
ROUTE_PATH = "/v20190125/meshes/demos/virtualRouter/vr-echo-backend/routes/vrr-echo-backend"
STARTUP_TIMEOUT = 90.0


class DemoFailed(Exception):
    """A step of the walkthrough did not do what it should."""


_FAILURES = (
    DemoFailed,
    TimeoutError,
    OSError,
    ValueError,
    subprocess.SubprocessError,
    client.ControlPlaneError,
)
"""What ends a walk as a failed demo: a misbehaving step, an unreachable server, a bad answer."""


def _free_port(preferred: int | None = None) -> int:
    # The port is released before `meshplane up` binds it, so another process could take it
    # in between; `up` then fails with a clear message and the demo reports it.
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred or 0))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _meshplane(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshplane.cli.main", *args]


class _Walkthrough:
    """One run: a copy of the example, the ``meshplane up`` process, the published frontend."""

    def __init__(self, workdir: Path, say: Console) -> None:
        self.say = say
        self.files = workdir / "echo"
        shutil.copytree(EXAMPLE, self.files)
        self.frontend_port = _free_port(8080)
        workloads = self.files / "workloads.yaml"
        text = re.sub(
            r"publish: 127\.0\.0\.1:\d+",
            f"publish: 127.0.0.1:{self.frontend_port}",
            workloads.read_text(encoding="utf-8"),
        )
        workloads.write_text(text, encoding="utf-8")
        self.api_port = _free_port()
        self.server = f"http://127.0.0.1:{self.api_port}"
        self.log_path = workdir / "up.log"
        self.data_dir = workdir / "data"
        self.process: subprocess.Popen[bytes] | None = None

    # -- the processes -----------------------------------------------------------------------

    def start(self) -> None:
        argv = _meshplane(
            "up",
            "-f",
            str(self.files),
            "--api-port",
            str(self.api_port),
            "--xds-port",
            str(_free_port()),
            "--data-dir",
            str(self.data_dir),
        )
        self.say.print(f"$ meshplane up -f examples/echo   [dim](logs: {self.log_path})[/]")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise DemoFailed(
                    f"meshplane up exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                if proxystatus.converged(self.server, self.plane()) and self._answers():
                    break
            except (OSError, client.ControlPlaneError):
                pass
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"the mesh did not come up within {STARTUP_TIMEOUT:.0f} s; see {self.log_path}"
                )
            time.sleep(0.1)
        proxies = proxystatus.fetch(self.server, self.plane()).proxies
        self.say.print(
            f"control plane {self.server}; {len(proxies)} Envoy sidecars synced; "
            f"echo-frontend published on http://127.0.0.1:{self.frontend_port}"
        )

    def plane(self) -> client.MeshplaneClient:
        """A client signed as the administrator of the demo's own control plane."""
        credentials = self.data_dir / "credentials"
        signer = (
            client.Signer.from_file(credentials, settings.load().region)
            if credentials.exists()
            else None
        )
        return client.MeshplaneClient(client.Transport(self.server, timeout=5, signer=signer))

    def signed_env(self) -> dict[str, str]:
        """The environment of the demo's ``meshplane`` commands: its administrator profile."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.data_dir / "credentials")
        env["AWS_PROFILE"] = "meshplane"
        return env

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise DemoFailed("meshplane up did not stop within 30 s of SIGTERM") from None

    # -- the steps ---------------------------------------------------------------------------

    def _answers(self) -> bool:
        try:
            return self._call_frontend() is not None
        except OSError:
            return False

    def _call_frontend(self) -> str | None:
        # Traffic through the published frontend (the data plane), not a control-plane call.
        url = f"http://127.0.0.1:{self.frontend_port}/"
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = json.loads(answer.read())
        backend = body.get("backend")
        return backend if isinstance(backend, str) else None

    def observe(self, requests: int) -> collections.Counter[str]:
        """The walkthrough's curl loop: which backend version answered each request."""
        seen: collections.Counter[str] = collections.Counter()
        for _ in range(requests):
            try:
                seen[self._call_frontend() or "no backend"] += 1
            except OSError as exc:
                seen[f"error: {exc}"] += 1
        return seen

    def shift(self, blue: int, green: int) -> tuple[float, int]:
        """Edit the router's weights and re-apply; return (seconds to sync, route version).

        The sync time runs from the moment ``meshplane apply`` returned (the write is
        acknowledged) to the moment every Envoy has ACKed the new configuration.
        """
        router = self.files / "vr-echo-backend.yaml"
        text = router.read_text(encoding="utf-8")
        weights = iter((blue, green))
        text = re.sub(r"weight: \d+", lambda _: f"weight: {next(weights)}", text)
        router.write_text(text, encoding="utf-8")
        self.say.print(f"$ sed -i … vr-echo-backend.yaml   # weights {blue}/{green}")
        done = subprocess.run(
            _meshplane("apply", "-f", str(router), "--server", self.server),
            env=self.signed_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise DemoFailed(f"meshplane apply failed: {done.stderr.strip()}")
        self.say.print(f"$ meshplane apply -f vr-echo-backend.yaml\n{done.stdout.strip()}")
        started = time.monotonic()
        proxystatus.wait_converged(self.server, plane=self.plane())
        synced = time.monotonic() - started
        route = self.plane().call("GET", ROUTE_PATH)
        return synced, int(route["metadata"]["version"])


def _check_split(seen: collections.Counter[str], blue: int, green: int, requests: int) -> None:
    errors = {k: v for k, v in seen.items() if k not in ("1.0", "2.0")}
    if errors:
        raise DemoFailed(f"failed requests: {errors}")
    expected_green = requests * green / (blue + green)
    # A binomial count stays within 5 standard deviations of its mean but for ~1 in 1.7 million.
    sigma = math.sqrt(requests * (green / (blue + green)) * (blue / (blue + green)))
    if abs(seen["2.0"] - expected_green) > 5 * sigma + 1e-9:
        raise DemoFailed(
            f"expected about {expected_green:.0f} answers from 2.0 (±{5 * sigma:.0f}), "
            f"got {seen['2.0']}"
        )


def _walk(run: _Walkthrough, say: Console) -> Table:
    summary = Table(title="what the demo observed")
    for column in ("weights blue/green", "route version", "sync to every Envoy", "1.0", "2.0"):
        summary.add_column(column, justify="right")
    run.start()
    for step, (blue, green) in enumerate(((100, 0), (50, 50), (0, 100))):
        say.rule(f"weights {blue}/{green}")
        if step == 0:
            synced, version = float("nan"), 1
        else:
            synced, version = run.shift(blue, green)
            say.print(f"every Envoy ACKed the change {synced * 1000:.0f} ms after `apply` returned")
        requests = 200 if blue and green else 100
        seen = run.observe(requests)
        say.print(
            f"$ for i in $(seq {requests}); do curl -s 127.0.0.1:{run.frontend_port}; done"
            f"  →  backend 1.0: {seen['1.0']}, backend 2.0: {seen['2.0']}"
        )
        _check_split(seen, blue, green, requests)
        summary.add_row(
            f"{blue}/{green}",
            str(version),
            "-" if step == 0 else f"{synced * 1000:.0f} ms",
            str(seen["1.0"]),
            str(seen["2.0"]),
        )
    return summary


def run() -> int:
    """Run the walkthrough; 0 when every step behaved, 1 otherwise."""
    say = Console(highlight=False)
    say.print("[bold]meshplane demo[/]: App Mesh's blue-green walkthrough, here, with real Envoy")
    with tempfile.TemporaryDirectory(prefix="meshplane-demo-") as workdir:
        walkthrough = _Walkthrough(Path(workdir), say)
        failure: Exception | None = None
        try:
            summary = _walk(walkthrough, say)
            say.rule("stopping")
        except _FAILURES as error:
            failure = error
        finally:
            # `meshplane up` runs in a session of its own, out of reach of the demo's
            # Ctrl-C: whatever ended the walk, stop it here or it outlives the demo.
            try:
                walkthrough.stop()
            except DemoFailed as error:
                failure = failure or error
        if failure is not None:
            say.print(f"[red]demo failed:[/] {failure}")
            say.print(walkthrough.log_path.read_text(errors="replace")[-4000:])
            return 1
        say.print("meshplane up stopped: every app and sidecar exited")
    say.print(summary)
    say.print("[green]demo passed:[/] traffic followed every weight change, no workload restarted")
    return 0


def demo() -> None:
    """Run the blue-green walkthrough end to end and check every step."""
    raise typer.Exit(run())


def register(cli: typer.Typer) -> None:
    """Add ``meshplane demo`` to the CLI."""
    cli.command()(demo)
