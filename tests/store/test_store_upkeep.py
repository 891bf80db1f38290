"""Bounded growth: the feed is compacted to a floor, clientTokens are capped, free pages go back."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock
from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Resource
from meshplane.store.protocols import FeedCompacted
from meshplane.store.sqlite import SqliteStore


def _mesh(name: str) -> Resource:
    key = ResourceKey("mesh", name, "", name)
    return Resource(key, kinds.arn("us-west-2", "123456789012", key), name, 1, 1.0, 1.0, {}, "o")


def test_compaction_keeps_the_newest_revisions_and_readers_below_the_floor_are_told(
    store: SqliteStore,
) -> None:
    """Keep 3 of 10 changes: since 7 reads on, since 6 raises FeedCompacted; revisions go on."""
    for index in range(10):
        with store.transaction() as tx:
            tx.insert(_mesh(f"m{index}"), [])
    upkeep = store.maintain(keep_revisions=3, max_tokens=100, tokens_older_than=0.0)
    assert (upkeep.changes, upkeep.tokens, upkeep.floor) == (7, 0, 7)
    assert store.revision() == 10
    assert [c.revision for c in store.feed.changes_since(7)] == [8, 9, 10]
    with pytest.raises(FeedCompacted) as behind:
        store.feed.changes_since(6)
    assert (behind.value.asked, behind.value.floor) == (6, 7)
    assert str(behind.value) == "changes after revision 6 were compacted (floor 7)"
    with store.transaction() as tx:
        tx.insert(_mesh("next"), [])
    assert store.revision() == 11


def test_compaction_never_drops_the_row_that_carries_the_revision(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Keeping 0 still keeps the newest change, so a reopened store has its revision."""
    store = SqliteStore(tmp_path / "d", clock)
    for index in range(4):
        with store.transaction() as tx:
            tx.insert(_mesh(f"m{index}"), [])
    assert store.maintain(keep_revisions=0, max_tokens=0, tokens_older_than=0.0).floor == 3
    store.close()
    reopened = SqliteStore(tmp_path / "d", clock)
    try:
        assert reopened.revision() == 4
        assert reopened.feed.changes_since(3)[0].revision == 4
    finally:
        reopened.close()


def test_tokens_are_pruned_by_age_and_capped_to_the_newest(store: SqliteStore) -> None:
    """Tokens at or before the cutoff go; of the rest only the newest ``max_tokens`` stay."""
    with store.transaction() as tx:
        for index in range(10):
            tx.remember_token("", "CreateMesh", f"t{index}", "d", {"n": index}, at=float(index))
    upkeep = store.maintain(keep_revisions=10, max_tokens=4, tokens_older_than=2.0)
    assert upkeep.tokens == 6  # t0..t2 by age, then t3..t5 beyond the newest four
    with store.read() as tx:
        kept = [t for t in (f"t{i}" for i in range(10)) if tx.token("", "CreateMesh", t, -1.0)]
    assert kept == ["t6", "t7", "t8", "t9"]


def test_maintenance_gives_free_pages_back_to_the_file_system(store: SqliteStore) -> None:
    """After deleting bulky rows, a pass shrinks the file (incremental auto-vacuum)."""
    with store.transaction() as tx:
        for index in range(2000):
            tx.remember_token("", "CreateMesh", f"t{index}", "d", {"pad": "x" * 500}, at=1.0)
    store.maintain(keep_revisions=10, max_tokens=100_000, tokens_older_than=0.0)
    full = store.path.stat().st_size
    store.maintain(keep_revisions=10, max_tokens=0, tokens_older_than=0.0)
    store.maintain(keep_revisions=10, max_tokens=0, tokens_older_than=0.0)
    assert store.path.stat().st_size < full // 4
