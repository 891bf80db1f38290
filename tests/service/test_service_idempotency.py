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
from meshplane.store.protocols import Store
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


def _per_principal(store: Store, clock: FakeClock, cap: int) -> MeshService:
    return MeshService(
        store,
        ACCOUNT,
        Quotas(),
        clock,
        counting_ids(),
        client_token_ttl=TTL,
        tokens_per_principal=cap,
    )


def test_a_token_belongs_to_the_principal_that_sent_it(any_store: Store, clock: FakeClock) -> None:
    """alice's token replays for alice only: bob's same token is his own new request."""
    service = _per_principal(any_store, clock, cap=10)
    first = service.create(kinds.MESH, "", "a", {}, client_token="t", caller="alice")
    assert service.create(kinds.MESH, "", "a", {}, client_token="t", caller="alice") == first
    made = service.create(kinds.MESH, "", "b", {}, client_token="t", caller="bob")
    assert made["meshName"] == "b"
    with pytest.raises(errors.ConflictException, match="already used for a different"):
        service.create(kinds.MESH, "", "c", {}, client_token="t", caller="alice")
    assert any_store.revision() == 2


def test_each_principal_keeps_its_newest_tokens_and_a_busy_one_evicts_only_its_own(
    any_store: Store, clock: FakeClock
) -> None:
    """Cap 3: alice's 4th token evicts her oldest (a new request then), bob's still replays."""
    service = _per_principal(any_store, clock, cap=3)
    bobs = service.create(kinds.MESH, "", "bob-0", {}, client_token="b0", caller="bob")
    for index in range(4):
        clock.advance(1)
        service.create(
            kinds.MESH, "", f"alice-{index}", {}, client_token=f"a{index}", caller="alice"
        )
    clock.advance(1)
    assert service.create(kinds.MESH, "", "bob-0", {}, client_token="b0", caller="bob") == bobs
    for index in (1, 2, 3):  # within the cap and the window: replays, nothing written
        again = service.create(
            kinds.MESH, "", f"alice-{index}", {}, client_token=f"a{index}", caller="alice"
        )
        assert again["meshName"] == f"alice-{index}"
    assert any_store.revision() == 5
    # a0 was evicted: the same request is a new one now, and the mesh exists.
    with pytest.raises(errors.ConflictException, match="Mesh alice-0 already exists"):
        service.create(kinds.MESH, "", "alice-0", {}, client_token="a0", caller="alice")


def test_the_per_principal_cap_is_a_setting(tmp_path: Path) -> None:
    """MESHPLANE_CLIENT_TOKENS_PER_PRINCIPAL sets the cap (default 10,000) and the app wires it."""
    assert settings.load({}).client_tokens_per_principal == 10_000
    chosen = settings.load(
        {"MESHPLANE_CLIENT_TOKENS_PER_PRINCIPAL": "1"}, data_dir=tmp_path / "data"
    )
    clock = FakeClock()
    plane = app.build(chosen, clock, counting_ids())
    try:
        resources = plane.services.resources
        resources.create(kinds.MESH, "", "a", {}, client_token="t1", caller="p")
        clock.advance(1)
        resources.create(kinds.MESH, "", "b", {}, client_token="t2", caller="p")
        with pytest.raises(errors.ConflictException, match="Mesh a already exists"):
            resources.create(kinds.MESH, "", "a", {}, client_token="t1", caller="p")
    finally:
        plane.store.close()
