"""Each process's output kept in a size-bounded file under the data dir (runtime/logfiles.py)."""

from __future__ import annotations

import errno
from pathlib import Path

from meshplane.runtime import logfiles


def test_the_path_names_workload_replica_and_container(tmp_path: Path) -> None:
    """<data-dir>/logs/<workload>/<replica>/<container>.log."""
    assert logfiles.path(tmp_path, "echo-backend-blue", 1, "envoy") == (
        tmp_path / "logs" / "echo-backend-blue" / "1" / "envoy.log"
    )


def test_lines_are_written_at_once_and_a_new_run_starts_empty(tmp_path: Path) -> None:
    """Each line is on disk when write returns; opening the file again begins it empty."""
    target = logfiles.path(tmp_path, "w", 0, "app")
    log = logfiles.LogFile(target)
    log.write("one")
    log.write("twö")
    assert target.read_bytes() == "one\ntwö\n".encode()
    log.close()
    logfiles.LogFile(target).close()
    assert target.read_bytes() == b""


def test_past_the_bound_the_file_is_rotated_keeping_one_previous(tmp_path: Path) -> None:
    """A line that would pass max_bytes moves the file to .1 (replacing the older) first."""
    target = tmp_path / "app.log"
    log = logfiles.LogFile(target, max_bytes=10)
    for line in ("aaaa", "bbbb", "cccc", "dddd", "eeee"):
        log.write(line)
    log.close()
    assert target.read_bytes() == b"eeee\n"
    assert logfiles.rotated(target).read_bytes() == b"cccc\ndddd\n"


def test_tee_gives_each_line_to_the_terminal_and_the_file(tmp_path: Path) -> None:
    """The sink still receives (name, line); the file holds the line alone."""
    seen: list[tuple[str, str]] = []
    log = logfiles.LogFile(tmp_path / "app.log")
    sink = logfiles.tee(lambda name, line: seen.append((name, line)), log)
    sink("w-0", "hello")
    log.close()
    assert seen == [("w-0", "hello")]
    assert (tmp_path / "app.log").read_text() == "hello\n"


def test_a_write_that_fails_is_said_once_and_lines_still_reach_the_terminal(
    tmp_path: Path,
) -> None:
    """A file that cannot be written (a full disk) is reported once; later lines go on."""
    seen: list[str] = []
    log = logfiles.LogFile(tmp_path / "app.log")
    sink = logfiles.tee(lambda _name, line: seen.append(line), log)
    assert log._file is not None
    log._file.close()
    log._file = _FullDisk()  # type: ignore[assignment]
    sink("w-0", "first")
    sink("w-0", "second")
    assert seen == [
        "first",
        f"cannot write {tmp_path / 'app.log'}: No space left on device: its lines go only "
        "to this terminal from now on",
        "second",
    ]


class _FullDisk:
    """A file whose every write fails as on a full disk."""

    def write(self, _data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        """Nothing buffered."""

    def close(self) -> None:
        """Nothing to close."""
