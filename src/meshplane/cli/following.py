"""Finding and printing a process's log file for ``meshplane logs`` (:mod:`meshplane.cli.logs`).

Kept out of the command module so ``meshplane --help`` imports none of it. Errors say what
exists instead (the workloads, replicas and containers that have logs), as kubectl names a
pod's containers when ``-c`` is wrong.
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from meshplane.runtime import logfiles

_CHUNK = 64 * 1024


class NotFound(Exception):
    """No such log file; the message says what there is."""


def _names(directory: Path) -> str:
    found = sorted(p.name for p in directory.iterdir() if p.is_dir())
    return ", ".join(found) or "none"


def locate(
    data_dir: Path, workload: str, replica: int, container: str | None, *, previous: bool = False
) -> Path:
    """The file of ``container`` (None: app, or envoy for a gateway) of a workload's replica.

    With ``previous``, the file of its run before the last restart (``--previous``).
    """
    if container is not None and container not in logfiles.CONTAINERS:
        raise NotFound(f"-c must be app or envoy, got {container!r}")
    root = data_dir / logfiles.LOGS
    if not root.is_dir():
        raise NotFound(
            f"no logs in {root}: `meshplane up` keeps them there (pass the --data-dir it ran with)"
        )
    if not (root / workload).is_dir():
        raise NotFound(f'workload "{workload}" has no logs in {root}; workloads: {_names(root)}')
    if not (root / workload / str(replica)).is_dir():
        replicas = _names(root / workload)
        raise NotFound(f'workload "{workload}" has no replica {replica}; replicas: {replicas}')
    chosen = container or logfiles.APP
    path = logfiles.path(data_dir, workload, replica, chosen)
    if container is None and not path.exists():  # a gateway replica is its Envoy alone
        path = logfiles.path(data_dir, workload, replica, logfiles.ENVOY)
    if not path.exists():
        why = (
            "no VirtualNode selects it, so it runs without a sidecar"
            if chosen == logfiles.ENVOY
            else "a gateway has only its Envoy: use -c envoy"
        )
        raise NotFound(f'replica {replica} of "{workload}" has no {chosen} container ({why})')
    if previous:
        if not logfiles.previous(path).exists():
            raise NotFound(
                f'previous terminated {path.stem} container of replica {replica} of "{workload}" '
                "not found (it has not restarted since `up` started it)"
            )
        return logfiles.previous(path)
    return path


class Lines:
    """Whole lines out of chunks of a log file, each with its time prefix kept or stripped."""

    def __init__(self, timestamps: bool) -> None:
        """``timestamps``: print each line's stored time (``--timestamps``), else strip it."""
        self.timestamps = timestamps
        self._partial = b""

    def feed(self, chunk: bytes) -> bytes:
        """What to print of ``chunk``: its complete lines (a line cut short waits for more)."""
        data = self._partial + chunk
        complete, newline, self._partial = data.rpartition(b"\n")
        return self._shown(complete + newline)

    def rest(self) -> bytes:
        """A last line without a newline (printed when not following)."""
        data, self._partial = self._partial, b""
        return self._shown(data)

    def _shown(self, data: bytes) -> bytes:
        if self.timestamps or not data:
            return data
        return b"".join(logfiles.unstamped(line) for line in data.splitlines(keepends=True))


def _last_lines(handle: IO[bytes], count: int) -> bytes:
    """The file's last ``count`` lines (all of it for a negative count); handle at its end."""
    if count < 0:
        return handle.read()
    kept: collections.deque[bytes] = collections.deque(maxlen=count)
    for line in handle:
        kept.append(line)
    return b"".join(kept)


def show(
    path: Path,
    tail: int,
    follow: bool,
    interval: float,
    out: IO[bytes] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    *,
    timestamps: bool = False,
) -> None:
    """Print the file (its last ``tail`` lines); with ``follow``, then every line added.

    Each line's stored time is printed first with ``timestamps``, else left out.
    """
    sink = out or sys.stdout.buffer
    lines = Lines(timestamps)
    handle: IO[bytes] = path.open("rb")
    try:
        sink.write(lines.feed(_last_lines(handle, tail)))
        if not follow:
            sink.write(lines.rest())
        sink.flush()
        while follow:
            handle = _follow_once(path, handle, sink, lines)
            sleep(interval)
    finally:
        handle.close()


def _follow_once(path: Path, handle: IO[bytes], sink: IO[bytes], lines: Lines) -> IO[bytes]:
    """Print what was added since the last look; the handle to go on with.

    A rotated file (renamed away, a new one at ``path``) is read to its end, then the new
    one from its start; a file begun again in place (the replica restarted) from its start.
    """
    if _copy(handle, sink, lines):
        return handle
    try:
        now = os.stat(path)
    except FileNotFoundError:  # between the rename and the new file: look again later
        return handle
    mine = os.fstat(handle.fileno())
    if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
        _copy(handle, sink, lines)  # whatever was written before the rename
        handle.close()
        return path.open("rb")
    if now.st_size < handle.tell():
        handle.seek(0)
    return handle


def _copy(handle: IO[bytes], sink: IO[bytes], lines: Lines) -> bool:
    """Copy what is readable now; whether there was anything."""
    copied = False
    while chunk := handle.read(_CHUNK):
        sink.write(lines.feed(chunk))
        copied = True
    if copied:
        with contextlib.suppress(BrokenPipeError):
            sink.flush()
    return copied
