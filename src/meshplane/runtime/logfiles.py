"""Each process's output kept on disk: ``<data-dir>/logs/<workload>/<replica>/<container>.log``.

``meshplane up`` prints every line to its terminal, but an operator who asks "what did
the backend's Envoy say?" later, or from another terminal, needs it kept somewhere fixed —
as the kubelet keeps each container's output for ``kubectl logs``. The supervisor hands every
line of a replica's app (``app``) and sidecar (``envoy``) to a :class:`LogFile` as well as to
the terminal; ``meshplane logs`` reads them (:mod:`meshplane.cli.logs`).

Files are size-bounded: past ``max_bytes`` the file is renamed to ``<container>.log.1``
(replacing the previous one) and a new one begun, so a chatty Envoy never fills the disk and
at most twice the bound is kept per container. A replica's files start empty each time the
supervisor starts the replica; a restart of its process within the same run appends, so the
lines before a crash stay readable.
"""

from __future__ import annotations

import contextlib
import os
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


class LogFile:
    """One container's log file, appended line by line and rotated past ``max_bytes``.

    Each line is flushed as it is written: a reader (``meshplane logs -f``) sees it at once,
    and a supervisor killed with SIGKILL loses nothing it had written.
    """

    def __init__(self, target: Path, max_bytes: int = MAX_BYTES) -> None:
        """Create the directories and begin an empty file (the replica's run starts now)."""
        self.path = target
        self.max_bytes = max_bytes
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            rotated(target).unlink()
        self._file: IO[bytes] | None = target.open("wb")
        self._size = 0
        self.failed = ""
        """Why writing stopped (a full disk), else empty; the terminal still gets every line."""

    def write(self, line: str) -> None:
        """Append ``line`` and a newline; rotate first if it would pass the bound."""
        if self._file is None:
            return
        data = line.encode("utf-8", "replace") + b"\n"
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
