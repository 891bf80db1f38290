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


def locate(data_dir: Path, workload: str, replica: int, container: str | None) -> Path:
    """The file of ``container`` (None: app, or envoy for a gateway) of a workload's replica."""
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
    return path


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
) -> None:
    """Print the file (its last ``tail`` lines); with ``follow``, then every line added."""
    sink = out or sys.stdout.buffer
    handle: IO[bytes] = path.open("rb")
    try:
        sink.write(_last_lines(handle, tail))
        sink.flush()
        while follow:
            handle = _follow_once(path, handle, sink)
            sleep(interval)
    finally:
        handle.close()


def _follow_once(path: Path, handle: IO[bytes], sink: IO[bytes]) -> IO[bytes]:
    """Print what was added since the last look; the handle to go on with.

    A rotated file (renamed away, a new one at ``path``) is read to its end, then the new
    one from its start; a file begun again in place (the replica restarted) from its start.
    """
    if _copy(handle, sink):
        return handle
    try:
        now = os.stat(path)
    except FileNotFoundError:  # between the rename and the new file: look again later
        return handle
    mine = os.fstat(handle.fileno())
    if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
        _copy(handle, sink)  # whatever was written before the rename
        handle.close()
        return path.open("rb")
    if now.st_size < handle.tell():
        handle.seek(0)
    return handle


def _copy(handle: IO[bytes], sink: IO[bytes]) -> bool:
    """Copy what is readable now; whether there was anything."""
    copied = False
    while chunk := handle.read(_CHUNK):
        sink.write(chunk)
        copied = True
    if copied:
        with contextlib.suppress(BrokenPipeError):
            sink.flush()
    return copied
