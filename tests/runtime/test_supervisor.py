"""The supervisor with real app processes: start, publish, restart, stop leaving nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

from meshplane.runtime import processes, publishing, status
from meshplane.runtime.supervising import RuntimeOptions, Supervisor
from meshplane.runtime.workloads import Address, Workload

from .conftest import APPS, alive, eventually, free_port

pytestmark = pytest.mark.integration

BARE = RuntimeOptions(sidecars=False, poll_interval=0.05, backoff=processes.Backoff(0.2, 0.4, 60))
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _backend(
    name: str, version: str, replicas: int = 1, publish: Address | None = None
) -> Workload:
    return Workload(
        name=name,
        namespace="demos",
        labels={"app": name},
        command=("{python}", "echo_backend.py"),
        env={"VERSION": version},
        port=80,
        replicas=replicas,
        publish=publish,
        workdir=APPS,
    )


async def _get_json(port: int) -> dict[str, str]:
    def fetch() -> dict[str, str]:
        with DIRECT.open(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            return dict(json.loads(answer.read()))

    return await asyncio.to_thread(fetch)


def test_replicas_start_publish_and_stop_leaving_no_process() -> None:
    """Two workloads, three replicas: each serves its version; the published port round-robins."""
    lines: list[tuple[str, str]] = []
    published = Address("127.0.0.1", free_port())
    blue = _backend("echo-backend-blue", "1.0", replicas=2, publish=published)
    green = _backend("echo-backend-green", "2.0")
    supervisor = Supervisor([blue, green], BARE, lambda n, line: lines.append((n, line)))
    pids: list[int] = []

    async def scenario() -> None:
        await supervisor.start()
        await eventually(
            lambda: len(supervisor.replicas) == 3 and all(r.ready for r in supervisor.replicas),
            what="three ready replicas",
        )
        by_name = {r.name: r for r in supervisor.replicas}
        assert sorted(by_name) == [
            "echo-backend-blue-0",
            "echo-backend-blue-1",
            "echo-backend-green-0",
        ]
        assert len({r.app_port for r in supervisor.replicas}) == 3
        assert await _get_json(by_name["echo-backend-green-0"].app_port) == {"version": "2.0"}
        assert [await _get_json(published.port) for _ in range(4)] == [{"version": "1.0"}] * 4
        assert supervisor.forwarders["echo-backend-blue"].connections == 4
        pids.extend(r.app.pid or 0 for r in supervisor.replicas)
        assert all(alive(pid) for pid in pids)
        rendered = status.table(supervisor)
        assert rendered.row_count == 3
        await supervisor.stop()

    asyncio.run(scenario())
    assert [alive(pid) for pid in pids] == [False, False, False]
    banners = sorted(line for _, line in lines if "listening" in line)
    assert len(banners) == 3
    assert banners[0].startswith("echo-backend 1.0 listening on 127.0.0.1:")
    assert {name for name, _ in lines} == {
        "echo-backend-blue-0",
        "echo-backend-blue-1",
        "echo-backend-green-0",
    }


def test_apps_get_port_hostname_and_no_proxy_without_a_sidecar(tmp_path: Path) -> None:
    """PORT and HOSTNAME are set; a workload outside the mesh gets no HTTP_PROXY."""
    script = tmp_path / "env.py"
    script.write_text(
        "import os, time\n"
        "print(os.environ['PORT'], os.environ['HOSTNAME'], os.environ.get('HTTP_PROXY'), "
        "os.environ['GREETING'], flush=True)\n"
        "time.sleep(60)\n"
    )
    workload = Workload(
        "env", "default", {}, ("{python}", "env.py"), {"GREETING": "hi"}, 80, 1, None, tmp_path
    )
    lines: list[str] = []
    environ = {k: v for k, v in os.environ.items() if k not in {"HTTP_PROXY", "http_proxy"}}
    supervisor = Supervisor([workload], BARE, lambda n, line: lines.append(line), environ=environ)

    async def scenario() -> int:
        await supervisor.start()
        await eventually(lambda: bool(lines), what="the app's line")
        port = supervisor.replicas[0].app_port
        await supervisor.stop()
        return port

    port = asyncio.run(scenario())
    assert lines[0] == f"{port} env-0 None hi"


def test_a_crashed_app_is_restarted_and_serves_again() -> None:
    """Killing a replica's app brings it back on the same port."""
    supervisor = Supervisor([_backend("b", "1.0")], BARE, lambda n, line: None)

    async def scenario() -> tuple[int, int]:
        await supervisor.start()
        await eventually(lambda: bool(supervisor.replicas) and supervisor.replicas[0].ready)
        replica = supervisor.replicas[0]
        first = replica.app.pid or 0
        os.kill(first, 9)
        await eventually(lambda: replica.app.restarts == 1 and replica.ready, what="restart")
        assert await _get_json(replica.app_port) == {"version": "1.0"}
        second = replica.app.pid or 0
        await supervisor.stop()
        return first, second

    first, second = asyncio.run(scenario())
    assert first != second
    assert [alive(first), alive(second)] == [False, False]


def test_the_forwarder_refuses_when_no_replica_is_ready() -> None:
    """With no ready target a connection is closed at once and counted as refused."""

    async def scenario() -> int:
        forwarder = publishing.Forwarder("127.0.0.1", 0, lambda: [])
        await forwarder.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.port)
        assert await reader.read() == b""
        writer.close()
        await forwarder.stop()
        return forwarder.refused

    assert asyncio.run(scenario()) == 1


def test_a_taken_publish_address_fails_start() -> None:
    """Publishing on a port already bound is an OSError from start(), before any app runs."""

    async def scenario() -> None:
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = blocker.sockets[0].getsockname()[1]
        supervisor = Supervisor(
            [_backend("b", "1.0", publish=Address("127.0.0.1", port))], BARE, lambda n, line: None
        )
        try:
            with pytest.raises(OSError, match="the address is in use"):
                await supervisor.start()
            assert supervisor.replicas == []
        finally:
            await supervisor.stop()
            blocker.close()
            await blocker.wait_closed()

    asyncio.run(scenario())
    assert sys.platform  # the scenario ran to completion
