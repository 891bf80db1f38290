"""clientToken records are short-lived: replayed inside the window, forgotten and pruned after.

An in-process :class:`MeshService` on a real SQLite store and a :class:`FakeClock`,
so the window passes without waiting.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from meshplane import app, settings
from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import errors, kinds
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store.sqlite import SqliteStore

ACCOUNT = Account("us-west-2", "123456789012")
TTL = 3600


@pytest.fixture
def service(store: SqliteStore, clock: FakeClock) -> MeshService:
    return MeshService(store, ACCOUNT, Quotas(), clock, counting_ids(), client_token_ttl=TTL)


def _tokens(store: SqliteStore) -> list[tuple[str, str, float]]:
    # The store offers no listing of tokens: read its table through a connection of our own.
    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute("SELECT operation, token, at FROM client_tokens ORDER BY at, token")
        return [(row[0], row[1], row[2]) for row in rows]
    finally:
        conn.close()


def test_replay_inside_the_window_returns_the_first_result(
    service: MeshService, store: SqliteStore, clock: FakeClock
) -> None:
    """Up to one second before expiry a replay answers the first result and writes nothing."""
    first = service.create(kinds.MESH, "", "a", {}, client_token="t")
    revision = store.revision()
    clock.advance(TTL - 1)
    assert service.create(kinds.MESH, "", "a", {}, client_token="t") == first
    assert store.revision() == revision
    with pytest.raises(errors.ConflictException) as caught:
        service.create(kinds.MESH, "", "b", {}, client_token="t")
    assert caught.value.message == (
        "clientToken t was already used for a different CreateMesh request; "
        "use a new token for a new request"
    )


def test_an_expired_token_is_a_new_request(service: MeshService, clock: FakeClock) -> None:
    """After the window the same token no longer replays: it is an ordinary new request."""
    service.create(kinds.MESH, "", "a", {}, client_token="t")
    clock.advance(TTL)
    made = service.create(kinds.MESH, "", "b", {}, client_token="t")
    assert made["meshName"] == "b"
    clock.advance(TTL)
    with pytest.raises(errors.ConflictException) as caught:
        service.create(kinds.MESH, "", "b", {}, client_token="t")
    assert caught.value.message == "Mesh b already exists; choose another name or update it"


def test_expired_records_are_pruned_on_write(
    service: MeshService, store: SqliteStore, clock: FakeClock
) -> None:
    """A write with a token deletes the records whose window has passed, and only those."""
    start = clock()
    service.create(kinds.MESH, "", "a", {}, client_token="t1")
    clock.advance(10)
    service.update(kinds.MESH, "a", "a", {}, client_token="t2")
    assert [row[1] for row in _tokens(store)] == ["t1", "t2"]
    clock.advance(TTL - 5)
    service.create(kinds.MESH, "", "b", {}, client_token="t3")
    assert _tokens(store) == [
        ("UpdateMesh", "t2", start + 10),
        ("CreateMesh", "t3", start + TTL + 5),
    ]
    clock.advance(TTL)
    service.update(kinds.MESH, "b", "b", {}, client_token="t4")
    assert _tokens(store) == [("UpdateMesh", "t4", start + 2 * TTL + 5)]


def test_the_window_is_a_setting(tmp_path: Path) -> None:
    """MESHPLANE_CLIENT_TOKEN_TTL sets the window (default 24 h) and the app wires it in."""
    assert settings.load({}).client_token_ttl == 86400
    chosen = settings.load({"MESHPLANE_CLIENT_TOKEN_TTL": "60"}, data_dir=tmp_path / "data")
    assert chosen.client_token_ttl == 60
    clock = FakeClock()
    plane = app.build(chosen, clock, counting_ids())
    try:
        resources = plane.services.resources
        resources.create(kinds.MESH, "", "a", {}, client_token="t")
        clock.advance(59)
        with pytest.raises(errors.ConflictException):
            resources.create(kinds.MESH, "", "b", {}, client_token="t")
        clock.advance(1)
        assert resources.create(kinds.MESH, "", "b", {}, client_token="t")["meshName"] == "b"
    finally:
        plane.store.close()
