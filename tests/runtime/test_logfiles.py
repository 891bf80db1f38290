"""Each process's output kept in a size-bounded file under the data dir (runtime/logfiles.py)."""

from __future__ import annotations

import errno
from pathlib import Path

from meshplane.runtime import logfiles

EPOCH = "1970-01-01T00:00:00.000000000Z "
"""The stamp of a line written at clock 0."""


def _at_zero() -> int:
    return 0


def test_the_path_names_workload_replica_and_container(tmp_path: Path) -> None:
    """<data-dir>/logs/<workload>/<replica>/<container>.log."""
    assert logfiles.path(tmp_path, "echo-backend-blue", 1, "envoy") == (
        tmp_path / "logs" / "echo-backend-blue" / "1" / "envoy.log"
    )


def test_lines_are_written_at_once_and_a_new_run_starts_empty(tmp_path: Path) -> None:
    """Each line is on disk, stamped, when write returns; opening the file again begins it
    empty."""
    target = logfiles.path(tmp_path, "w", 0, "app")
    log = logfiles.LogFile(target, clock=_at_zero)
    log.write("one")
    log.write("twö")
    assert target.read_bytes() == f"{EPOCH}one\n{EPOCH}twö\n".encode()
    log.close()
    logfiles.LogFile(target).close()
    assert target.read_bytes() == b""


def test_past_the_bound_the_file_is_rotated_keeping_one_previous(tmp_path: Path) -> None:
    """A line that would pass max_bytes moves the file to .1 (replacing the older) first."""
    target = tmp_path / "app.log"
    log = logfiles.LogFile(target, max_bytes=2 * len(f"{EPOCH}aaaa\n"), clock=_at_zero)
    for line in ("aaaa", "bbbb", "cccc", "dddd", "eeee"):
        log.write(line)
    log.close()
    assert target.read_text() == f"{EPOCH}eeee\n"
    assert logfiles.rotated(target).read_text() == f"{EPOCH}cccc\n{EPOCH}dddd\n"


def test_tee_gives_each_line_to_the_terminal_and_the_file(tmp_path: Path) -> None:
    """The sink still receives (name, line); the file holds the line alone, stamped."""
    seen: list[tuple[str, str]] = []
    log = logfiles.LogFile(tmp_path / "app.log", clock=_at_zero)
    sink = logfiles.tee(lambda name, line: seen.append((name, line)), log)
    sink("w-0", "hello")
    log.close()
    assert seen == [("w-0", "hello")]
    assert (tmp_path / "app.log").read_text() == f"{EPOCH}hello\n"


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


def test_a_line_is_stamped_with_the_writers_clock_in_rfc3339_nanoseconds(tmp_path: Path) -> None:
    """The stamp is the clock's time when the line was written, UTC with 9 digits; unstamped()
    gives the line back, and leaves a line without a stamp alone."""
    times = iter([1_764_612_220_000_000_001, 1_764_612_221_500_000_000])
    log = logfiles.LogFile(tmp_path / "app.log", clock=lambda: next(times))
    log.write("first")
    log.write("second")
    log.close()
    lines = (tmp_path / "app.log").read_bytes().splitlines()
    assert lines == [
        b"2025-12-01T18:03:40.000000001Z first",
        b"2025-12-01T18:03:41.500000000Z second",
    ]
    assert [logfiles.unstamped(line) for line in lines] == [b"first", b"second"]
    assert logfiles.unstamped(b"2025-12-01 not a stamp") == b"2025-12-01 not a stamp"


def test_a_restart_keeps_the_run_that_ended_as_the_previous_one(tmp_path: Path) -> None:
    """restarted() moves the file to app.previous.log (replacing an older one) and begins an
    empty one; a new replica start (a new LogFile) forgets the previous run."""
    target = tmp_path / "app.log"
    log = logfiles.LogFile(target, clock=_at_zero)
    log.write("run 1")
    log.restarted()
    log.write("run 2")
    log.restarted()
    log.write("run 3")
    log.close()
    assert logfiles.previous(target) == tmp_path / "app.previous.log"
    assert logfiles.previous(target).read_text() == f"{EPOCH}run 2\n"
    assert target.read_text() == f"{EPOCH}run 3\n"
    logfiles.LogFile(target).close()
    assert (target.read_text(), logfiles.previous(target).exists()) == ("", False)
