"""Store fixtures: a real PostgreSQL server for the session, and a store of either backend.

``any_store`` runs a protocol-level test once on SQLite and once on PostgreSQL;
the PostgreSQL case starts a real server, so it counts as an integration test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock
from meshplane.store.protocols import Store
from meshplane.store.sqlite import SqliteStore
from meshplane.testing.postgres import TempPostgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    """One PostgreSQL cluster (initdb in a temp dir, a free loopback port) for the session."""
    server = TempPostgres().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: TempPostgres) -> str:
    """The URL of a new, empty database for one test."""
    return postgres_server.database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def any_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[Store]:
    """A fresh store of each backend in turn, closed afterwards."""
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "data", clock)
    else:
        from meshplane.store.postgres import PostgresStore  # noqa: PLC0415

        opened = PostgresStore(request.getfixturevalue("postgres_url"), clock)
    yield opened
    opened.close()
