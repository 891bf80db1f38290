"""Hear other replicas' commits: ``LISTEN`` on its own connection, in its own thread.

Each write transaction of :class:`~meshplane.store.postgres.PostgresStore` sends
``NOTIFY`` with its newest revision; PostgreSQL delivers it after the commit to
every listening replica (the writer's own included). The listener hands the
number to the :class:`~meshplane.store.waking.Waker`, which wakes the sync stage;
the sync stage reads the durable ``changes`` table, so the payload is only a hint.
When the connection drops, the listener reconnects and notifies the current
revision: whatever was committed meanwhile is read then.

A commit that wrote manifest objects (their status and labels have no revision) also
sends ``NOTIFY`` on :data:`OBJECTS_CHANNEL` with its transaction id; the listener hands
it to the feed's objects waker, which ``GET /meshplane/v1/changes`` waits on. Writers
run one at a time under the write lock, so those ids grow in commit order, and every
replica numbers the commits alike. After a (re)connect the listener notifies the newest
transaction id assigned: any commit missed meanwhile is not newer (a watcher then lists
once, perhaps for nothing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from meshplane.store.waking import Waker

CHANNEL = "meshplane_changes"
OBJECTS_CHANNEL = "meshplane_objects"
APPLICATION_NAME = "meshplane serve"
"""What a replica's connections call themselves (``pg_stat_activity``): a restore refuses
to run while a connection of that name is in the database."""
POLL_S = 0.2
"""How often the thread looks up from waiting for notifications to see if it must stop."""
RETRY_S = 1.0
"""Pause before reconnecting after the listening connection failed."""

log = logging.getLogger(__name__)


def horizon(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The newest transaction id assigned so far (every later transaction gets a larger one)."""
    row = conn.execute("SELECT txid_snapshot_xmax(txid_current_snapshot()) - 1").fetchone()
    return int(str(row[0])) if row else 0


class Listener:
    """A daemon thread that turns ``NOTIFY`` on :data:`CHANNEL` into :meth:`Waker.notify`."""

    def __init__(
        self, url: str, waker: Waker, current: Callable[[], int], objects: Waker | None = None
    ) -> None:
        """Hand notifications to ``waker`` and ``objects`` (manifest-object commits).

        ``current`` reads the committed revision (used after every (re)connect).
        """
        self._url = url
        self._waker = waker
        self._objects = objects or Waker()
        self._current = current
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meshplane-pg-listen", daemon=True)
        self.listening = threading.Event()
        """Set once ``LISTEN`` is in place and the positions were read (tests and benches wait
        on it)."""

    def start(self) -> None:
        """Start listening."""
        self._thread.start()
        self.listening.wait(10)

    def stop(self) -> None:
        """Stop the thread and close its connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._url, autocommit=True, application_name=APPLICATION_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {OBJECTS_CHANNEL}")
                    # Commits made while not listening: read the positions once.
                    self._waker.notify(self._current())
                    self._objects.notify(horizon(conn))
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=POLL_S):
                            waker = (
                                self._objects if note.channel == OBJECTS_CHANNEL else self._waker
                            )
                            waker.notify(int(note.payload))
            except (psycopg.Error, ValueError) as error:
                log.warning("store: listening for other replicas' commits failed: %s", error)
                self._stop.wait(RETRY_S)
