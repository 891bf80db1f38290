"""Each process's output kept on disk: ``<data-dir>/logs/<workload>/<replica>/<container>.log``.

``meshplane up`` prints every line to its terminal, but an operator who asks "what did
the backend's Envoy say?" later, or from another terminal, needs it kept somewhere fixed —
as the kubelet keeps each container's output for ``kubectl logs``. The supervisor hands every
line of a replica's app (``app``) and sidecar (``envoy``) to a :class:`LogFile` as well as to
the terminal; ``meshplane logs`` reads them (:mod:`meshplane.cli.logs`).

Files are size-bounded: past ``max_bytes`` the file is renamed to ``<container>.log.1``
(replacing the previous one) and a new one begun, so a chatty Envoy never fills the disk and
at most twice the bound is kept per container. A replica's files start empty each time the
supervisor starts the replica. When its process restarts (it crashed, was killed), the run
that ended is kept as ``<container>.previous.log`` and a new file begun, as the kubelet keeps
the last terminated container's output for ``kubectl logs --previous``.

Each line is written as ``<RFC3339 UTC time, nanoseconds> <line>``, the time it reached the
writer (the kubelet's files carry one the same way): ``meshplane logs --timestamps`` prints
it, plain ``meshplane logs`` strips it. A line without that prefix (a file written by an older
``up``) is printed as it is.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

LOGS = "logs"
"""The data dir's sub-directory of process logs."""
APP, ENVOY = "app", "envoy"
CONTAINERS = (APP, ENVOY)
MAX_BYTES = 10 * 1024 * 1024
"""Default bound of one file before it is rotated (10 MiB, as the kubelet's default)."""


def path(data_dir: Path, workload: str, replica: int, container: str) -> Path:
    """Where ``container``'s output of replica number ``replica`` of ``workload`` is kept."""
    return data_dir / LOGS / workload / str(replica) / f"{container}.log"


def rotated(current: Path) -> Path:
    """The previous file kept after a rotation (``app.log.1``)."""
    return current.with_name(current.name + ".1")


def previous(current: Path) -> Path:
    """The output of the run before the last restart (``app.previous.log``)."""
    return current.with_name(current.name.removesuffix(".log") + ".previous.log")


STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")
"""The time prefix of each stored line (``2026-12-01T18:03:40.123456789Z ``)."""


def stamp(nanoseconds: int) -> str:
    """``nanoseconds`` since the epoch as RFC 3339 in UTC with nanoseconds, as kubectl prints."""
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def unstamped(line: bytes) -> bytes:
    """``line`` without its time prefix (unchanged when it has none)."""
    found = STAMP.match(line)
    return line[found.end() :] if found else line


class LogFile:
    """One container's log file, appended line by line and rotated past ``max_bytes``.

    Each line is flushed as it is written: a reader (``meshplane logs -f``) sees it at once,
    and a supervisor killed with SIGKILL loses nothing it had written.
    """

    def __init__(
        self, target: Path, max_bytes: int = MAX_BYTES, clock: Callable[[], int] = time.time_ns
    ) -> None:
        """Create the directories and begin an empty file (the replica's run starts now).

        ``clock`` gives the time each line is stamped with (nanoseconds since the epoch).
        """
        self.path = target
        self.max_bytes = max_bytes
        self._clock = clock
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in (rotated(target), previous(target)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self._file: IO[bytes] | None = target.open("wb")
        self._size = 0
        self.failed = ""
        """Why writing stopped (a full disk), else empty; the terminal still gets every line."""

    def write(self, line: str) -> None:
        """Append ``line`` stamped with the time now; rotate first if it would pass the bound."""
        if self._file is None:
            return
        data = f"{stamp(self._clock())} {line}\n".encode("utf-8", "replace")
        try:
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._file.flush()
        except OSError as error:
            self.failed = f"cannot write {self.path}: {error.strerror or error}"
            self.close()
            return
        self._size += len(data)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        os.replace(self.path, rotated(self.path))
        self._file = self.path.open("wb")
        self._size = 0

    def restarted(self) -> None:
        """The process is starting again: keep the run that ended as the previous one.

        Called before the new process's first line; a follower (``logs -f``) reads the old
        file to its end, then the new one, as after a rotation.
        """
        if self._file is None:
            return
        try:
            self._file.close()
            os.replace(self.path, previous(self.path))
            with contextlib.suppress(FileNotFoundError):
                rotated(self.path).unlink()  # the new run starts within its bound again
            self._file = self.path.open("wb")
        except OSError as error:
            self.failed = f"cannot write {self.path}: {error.strerror or error}"
            self.close()
            return
        self._size = 0

    def close(self) -> None:
        """Stop writing; the file stays for ``meshplane logs``."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def tee(sink: Callable[[str, str], None], log: LogFile) -> Callable[[str, str], None]:
    """A process sink that gives each line to ``sink`` (the terminal) and to ``log``."""

    def both(name: str, line: str) -> None:
        log.write(line)
        sink(name, line)
        if log.failed:  # said once; then the file is closed and write() does nothing
            sink(name, f"{log.failed}: its lines go only to this terminal from now on")
            log.failed = ""

    return both
