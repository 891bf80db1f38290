"""A throwaway PostgreSQL server for tests and benches: ``initdb`` in a temp dir, a free port.

Uses the Debian packages' binaries (``make postgres-tools`` installs them). PostgreSQL
refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(``runuser``); otherwise to the caller. ``fsync=off`` unless ``durable`` (benches
compare it with SQLite's fsync on every commit): the data is thrown away anyway.
Each test gets its own database from :meth:`TempPostgres.database`.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

SUPERUSER = "meshplane"


def binaries() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``, or ``None`` when PostgreSQL is missing."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TempPostgres:
    """One PostgreSQL cluster on 127.0.0.1, started by :meth:`start`, removed by :meth:`stop`."""

    def __init__(self, *, durable: bool = False) -> None:
        """Choose the binaries; nothing runs yet."""
        self._durable = durable
        bindir = binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: make postgres-tools")
        self._bin = bindir
        self._root = Path(tempfile.mkdtemp(prefix="meshplane-pg-"))
        self._data = self._root / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self._root, "postgres")
            self._root.chmod(0o700)

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self._root)

    def start(self) -> TempPostgres:
        """Create the cluster and start the server; returns itself."""
        self._run(
            str(self._bin / "initdb"),
            "-D",
            str(self._data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self._root} -c max_connections=200"
        )
        if not self._durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(self._data),
            "-o",
            options,
            "-l",
            str(self._root / "log"),
            "-w",
            "start",
        )
        return self

    def url(self, database: str = "postgres") -> str:
        """A URL of one database on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """Create a new empty database; returns its URL."""
        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove its files."""
        if self._data.exists():
            subprocess.run(
                [*self._as, str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "fast", "stop"],
                check=False,
                capture_output=True,
                cwd=self._root,
            )
        shutil.rmtree(self._root, ignore_errors=True)
