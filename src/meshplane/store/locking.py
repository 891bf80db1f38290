"""One control plane per data dir: an exclusive ``flock`` on ``<data dir>/lock``.

Two processes serving one SQLite store is split brain: each acknowledges writes
the other's Envoys never see. The process that serves a data dir holds an
exclusive, non-blocking ``flock`` on its ``lock`` file for as long as it runs,
and writes its pid and command line into it, so a second one can say who holds
it. The kernel drops the lock when the holder exits, even on ``kill -9``: a
stale ``lock`` file never keeps anyone out.

``meshplane up`` takes the lock itself and hands the locked descriptor to the
``meshplane serve`` it starts (:data:`INHERITED_ENV` names its number): a flock
belongs to the open file, so the child holds the same lock, and no other
process can slip in while ``up`` restarts its control plane.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path

from meshplane.store.refusals import DataDirLocked, StoreUnwritable

LOCK_FILE = "lock"
INHERITED_ENV = "MESHPLANE_DATA_DIR_LOCK_FD"
"""Environment variable: the descriptor number of a lock the parent already holds."""


class DataDirLock:
    """A held lock on one data dir; :meth:`release` (or process exit) lets it go."""

    def __init__(self, path: Path, fd: int) -> None:
        """Own ``fd``, an open descriptor of ``path`` that holds the flock."""
        self.path = path
        self.fd = fd

    def release(self) -> None:
        """Unlock and close (idempotent)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> DataDirLock:
        """Hold the lock for the block."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Release it when the block ends."""
        self.release()


def holder(path: Path) -> str:
    """What the lock file says about its holder (``pid 12 (meshplane serve …)``)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "another process"
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"pid {pid} ({command})" if command else f"pid {pid}"


def acquire(data_dir: Path, environ: dict[str, str] | None = None) -> DataDirLock:
    """Take the data dir's lock or raise :class:`DataDirLocked` naming the holder.

    Creates the data dir (mode 0700) if needed. A descriptor inherited through
    :data:`INHERITED_ENV` is used when it is this data dir's lock file.
    """
    env = os.environ if environ is None else environ
    path = data_dir / LOCK_FILE
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        inherited = _inherited(path, env.get(INHERITED_ENV, ""))
        if inherited is not None:
            return DataDirLock(path, inherited)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise StoreUnwritable(
            f"the data dir cannot be written: {path} ({error.strerror or error})"
        ) from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLocked(
            f"data dir {data_dir} is in use by {holder(path)}; stop that process or use "
            "another --data-dir"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    _write_holder(fd)
    return DataDirLock(path, fd)


def _inherited(path: Path, value: str) -> int | None:
    """The inherited descriptor if it is open on ``path`` itself (same file), else None."""
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        mine, theirs = os.fstat(fd), os.stat(path)
    except OSError:
        return None
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        return None
    try:
        # The same open file already holds the lock: this succeeds at once. A descriptor
        # of another open file of the same path would block, so it is refused instead.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None
    # The parent (``up``) stays the holder on record: it keeps the lock across restarts.
    os.set_inheritable(fd, False)
    return fd


def _write_holder(fd: int) -> None:
    """Record this process as the holder: ``<pid> <command line>``."""
    command = " ".join(["meshplane", *sys.argv[1:]]) if sys.argv else "meshplane"
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
