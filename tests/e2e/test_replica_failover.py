"""Two PostgreSQL-backed replicas under 8 writers; one is SIGKILLed; the other carries on.

Two ``meshplane serve --store postgresql://…`` processes (own data dirs, own
administrators) share one real PostgreSQL database. ``meshplane up --server B``
runs the walkthrough, so its three Envoys follow replica B over xDS. Eight boto3
writers, signed, four on each replica, create meshes as fast as they are answered;
a weight change written on A reaches the Envoys on B; then A is killed with
SIGKILL mid-load. Afterwards every write either replica acknowledged is in the
store, B's writers never saw an error, traffic through the Envoys never failed,
and a weight change written on B after the kill is ACKed by every Envoy on B.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshplane.testing.postgres import TempPostgres

from .harness import Serve, Up
from .traffic import (
    BLUE,
    GREEN,
    PROXIES,
    Load,
    Plane,
    appmesh,
    poll,
    route_spec,
    sample,
    update_route,
)

pytestmark = pytest.mark.integration

WRITERS = 8
ACKED_BEFORE_KILL = 15
"""Creates every writer has acknowledged before A is killed (the load is well under way)."""
ACKED_AFTER_KILL = 15
"""Creates every writer on B acknowledges after the kill (B keeps answering)."""
MESHES = 20_000
"""The mesh quota of both replicas: far above what the writers reach."""


class Replicas:
    """Replicas A and B on one database and ``up`` following B."""

    def __init__(self, workdir: Path, url: str) -> None:
        """Nothing runs yet: :meth:`start` starts the replicas, then ``up`` on B."""
        env = {"MESHPLANE_STORE": url, "MESHPLANE_QUOTA_MESHES": str(MESHES)}
        self.a = Serve(workdir / "a", env)
        self.b = Serve(workdir / "b", env)
        for serve in (self.a, self.b):
            serve.workdir.mkdir()
        self.up = Up(workdir, self.b)

    def start(self) -> Replicas:
        """Start A, B and the walkthrough on B, and wait until every Envoy is in sync."""
        self.a.start()
        self.b.start()
        running = self.up.start().processes()
        assert list(running.values()).count("envoy") == 3, running
        Plane(self.b.url, self.b.data_dir).wait_converged()
        return self


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: TempPostgres
) -> Iterator[Replicas]:
    """Both replicas and the walkthrough, for this module; nothing left behind."""
    running = Replicas(tmp_path_factory.mktemp("failover"), postgres_server.database())
    try:
        yield running.start()
    finally:
        up_code = running.up.stop() if running.up.process is not None else 0
        for serve in (running.a, running.b):
            if serve.process is not None and serve.process.poll() is None:
                serve.stop()
    assert up_code == 0, running.up.log.read_text()
    assert running.up.leftovers() == set(), f"processes left behind: {running.up.leftovers()}"


class Writers:
    """8 boto3 writers creating meshes ``w<i>-<n>``: even ones through A, odd ones through B."""

    def __init__(self, a: Serve, b: Serve) -> None:
        """One client per writer, signed as its replica's administrator."""
        self.replicas = [a if index % 2 == 0 else b for index in range(WRITERS)]
        self.clients = [appmesh(serve.url, serve.data_dir) for serve in self.replicas]
        self.acked: list[list[str]] = [[] for _ in range(WRITERS)]
        self.failed: dict[int, BaseException] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write, args=(index,), name=f"writer-{index}")
            for index in range(WRITERS)
        ]

    def _write(self, index: int) -> None:
        while not self._stop.is_set():
            name = f"w{index}-{len(self.acked[index]):05d}"
            try:
                self.clients[index].create_mesh(meshName=name)
            except Exception as error:  # its replica died under it: this writer stops here
                self.failed[index] = error
                return
            self.acked[index].append(name)

    def on(self, serve: Serve) -> list[int]:
        """The writers that write through ``serve``."""
        return [index for index in range(WRITERS) if self.replicas[index] is serve]

    def each_acked(self, writers: list[int], at_least: int) -> bool:
        """Whether each of ``writers`` has ``at_least`` acknowledged creates."""
        return all(len(self.acked[index]) >= at_least for index in writers)

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in self._threads), "a writer hung"


def _stored_meshes(client: Any) -> set[str]:
    return {
        mesh["meshName"]
        for page in client.get_paginator("list_meshes").paginate()
        for mesh in page["meshes"]
    }


def test_kill_9_of_one_replica_under_8_writers_loses_nothing_and_the_other_keeps_envoys(
    replicas: Replicas,
) -> None:
    """SIGKILL A under 8 writers: every acked write is stored, B answers, B's Envoys follow."""
    a, b = replicas.a, replicas.b
    on_b = Plane(b.url, b.data_dir)
    load = Load(replicas.up.port)
    with load.running(), Writers(a, b) as writers:
        poll(lambda: writers.each_acked(list(range(WRITERS)), 1), 60, "every writer's first ack")
        # A write on A reaches the Envoys that follow B, under load.
        update_route(appmesh(a.url, a.data_dir), route_spec({BLUE: 50, GREEN: 50}))
        on_b.wait_converged()
        poll(
            lambda: writers.each_acked(list(range(WRITERS)), ACKED_BEFORE_KILL),
            120,
            f"{ACKED_BEFORE_KILL} acknowledged creates per writer",
        )
        a.kill()
        counted = {index: len(writers.acked[index]) for index in writers.on(b)}
        poll(
            lambda: all(
                len(writers.acked[index]) >= counted[index] + ACKED_AFTER_KILL for index in counted
            ),
            120,
            f"{ACKED_AFTER_KILL} more acknowledged creates per writer on B",
        )
        # A weight change written on B after the kill is ACKed by every Envoy on B.
        update_route(appmesh(b.url, b.data_dir), route_spec({BLUE: 0, GREEN: 100}))
        on_b.wait_converged()
        load.wait_for_more(60)
    print(
        f"replica A killed under {WRITERS} writers: "
        f"{sum(map(len, writers.acked))} creates acknowledged; traffic {load.summary()}"
    )
    assert sorted(writers.failed) == writers.on(a)  # only A's writers saw their replica go
    assert dict(load.failures) == {}, load.summary()

    stored = _stored_meshes(appmesh(b.url, b.data_dir))
    acked = {name for own in writers.acked for name in own}
    assert acked <= stored
    # What may be stored unacknowledged: the one create each of A's writers had in flight.
    in_flight = {f"w{index}-{len(writers.acked[index]):05d}" for index in writers.on(a)}
    assert stored - acked - {"demos"} <= in_flight
    assert "demos" in stored

    proxies = on_b.proxies()
    assert {key: proxies[key]["state"] for key in PROXIES} == dict.fromkeys(PROXIES, "SYNCED")
    assert set(sample(replicas.up.port, 40)) == {"2.0"}
