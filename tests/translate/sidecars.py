"""Run a real Envoy on a translated, static-ized config and wait for its listeners."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf import json_format

from meshplane.translate import EnvoyResources

from . import staticconfig

DEADLINE_S = 60.0


def start(
    resources: EnvoyResources,
    node_id: str,
    ports: Iterable[int],
    path: pathlib.Path,
    secrets: Mapping[str, secret_pb2.Secret] | None = None,
) -> subprocess.Popen[bytes]:
    """Envoy running ``resources``; returns once every port in ``ports`` accepts connections."""
    path.write_text(
        json_format.MessageToJson(staticconfig.bootstrap(resources, node_id, secrets=secrets))
    )
    command = [str(staticconfig.envoy_binary()), "-c", str(path), "--concurrency", "1"]
    command += ["--disable-hot-restart", "--log-level", "warn"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    pending = set(ports)
    deadline = time.monotonic() + DEADLINE_S
    while pending and time.monotonic() < deadline:
        for port in list(pending):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pending.discard(port)
            except OSError:
                if process.poll() is not None:
                    raise AssertionError("envoy exited") from None
        time.sleep(0.05)  # polling a condition, not standing in for one
    if pending:
        process.terminate()
        raise AssertionError(f"envoy's listeners {sorted(pending)} never came up")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate and reap."""
    process.terminate()
    process.wait(timeout=30)
