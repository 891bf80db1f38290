"""Store growth: size after 100,000 updates before and after compaction; write p50/p99.

In process, through the domain service (what every API write runs), on SQLite
with ``synchronous=FULL`` (each update fsynced, as ``meshplane serve`` runs):
one virtual node updated ``UPDATES`` times, each update carrying a clientToken
as boto3 always sends one. Reports the store's bytes on disk (database + WAL),
the change-feed and token rows, then one maintenance pass with the defaults
(keep 10,000 revisions, at most 100,000 tokens, expired tokens dropped) and
the bytes after it. The clock is advanced past the token TTL before the pass,
as a day of updates would.

Run: ``python -m bench.store_growth [UPDATES]``.
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from meshplane import settings
from meshplane.kit.clock import FakeClock, uuid_ids
from meshplane.model import kinds
from meshplane.service.resources import Account, MeshService
from meshplane.store.sqlite import DB_FILE, SqliteStore, Upkeep

UPDATES = 100_000
MESH, NODE = "demos", "vn-echo-backend-blue"


def _spec(port: int) -> dict[str, object]:
    return {
        "listeners": [{"portMapping": {"port": port, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": "echo-backend-blue"}},
    }


def _rows(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        changes = conn.execute("SELECT count(*) FROM changes").fetchone()[0]
        tokens = conn.execute("SELECT count(*) FROM client_tokens").fetchone()[0]
        return int(changes), int(tokens)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    """Print sizes, rows and write latency for ``UPDATES`` updates (or ``argv[0]``)."""
    args = sys.argv[1:] if argv is None else argv
    updates = int(args[0]) if args else UPDATES
    config = settings.load(environ={})
    clock = FakeClock(1_800_000_000.0)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp), clock)
        service = MeshService(
            store,
            Account(config.region, config.account_id),
            config.quotas,
            clock,
            uuid_ids,
            client_token_ttl=config.client_token_ttl,
        )
        service.create(kinds.MESH, MESH, MESH, {})
        service.create(kinds.VIRTUAL_NODE, MESH, NODE, _spec(80))
        latencies = []
        started = time.perf_counter()
        for index in range(updates):
            clock.advance(0.01)
            began = time.perf_counter()
            service.update(
                kinds.VIRTUAL_NODE, MESH, NODE, _spec(80 + index % 2), client_token=f"t-{index}"
            )
            latencies.append(time.perf_counter() - began)
        elapsed = time.perf_counter() - started
        before = store.size()
        changes_before, tokens_before = _rows(Path(tmp) / DB_FILE)
        clock.advance(config.client_token_ttl)

        def upkeep_pass() -> Upkeep:
            return store.maintain(
                keep_revisions=config.feed_keep_revisions,
                max_tokens=config.max_client_tokens,
                tokens_older_than=clock() - config.client_token_ttl,
            )

        upkeep = upkeep_pass()
        # Each pass gives back at most VACUUM_PAGES free pages; the periodic task would
        # run these over the next minutes.
        passes = 1
        while _free_pages(Path(tmp) / DB_FILE) > 0 and passes < 1000:
            upkeep_pass()
            passes += 1
        after = store.size()
        changes_after, tokens_after = _rows(Path(tmp) / DB_FILE)
        store.close()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"SQLite store, {updates} updates of one virtual node, each with a clientToken")
    print(f"  writes: {updates / elapsed:.0f}/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms (fsync on)")
    print(
        f"  before compaction: {before / 1e6:.1f} MB, {changes_before} changes, "
        f"{tokens_before} tokens"
    )
    print(
        f"  after compaction:  {after / 1e6:.1f} MB, {changes_after} changes, "
        f"{tokens_after} tokens (removed {upkeep.changes} changes, {upkeep.tokens} tokens; "
        f"feed floor {upkeep.floor}; {passes} maintenance passes)"
    )
    print(f"  ratio: {before / after:.1f}x smaller")


def _free_pages(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    finally:
        conn.close()


if __name__ == "__main__":
    main()
