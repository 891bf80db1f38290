"""`meshplane store backup` while serving, `restore` only when stopped; both one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import served

from meshplane import client
from meshplane.store.sqlite import DB_FILE

pytestmark = pytest.mark.integration


def _meshplane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "500"},
        check=False,
    )


def _serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    return served.serve(data_dir, log)


def _stop(process: subprocess.Popen[bytes]) -> None:
    served.stop(process)


def _meshes(endpoint: str, data: Path) -> list[str]:
    appmesh = client.appmesh(endpoint, credentials_file=data / "credentials")
    return sorted(m["meshName"] for m in appmesh.list_meshes()["meshes"])


def test_backup_online_then_restore_after_stopping_brings_that_revision_back(
    tmp_path: Path,
) -> None:
    """Backup while serving at revision 2; restore refused while served, then restored: 2 meshes."""
    data = tmp_path / "data"
    copy = tmp_path / "backup.db"
    serve, endpoint = _serve(data, tmp_path / "a.log")
    try:
        appmesh = client.appmesh(endpoint, credentials_file=data / "credentials")
        appmesh.create_mesh(meshName="one")
        appmesh.create_mesh(meshName="two")
        done = _meshplane("store", "backup", str(copy), "--data-dir", str(data))
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"backed up {data / DB_FILE} at revision 2 to {copy} ({copy.stat().st_size} bytes)\n"
        )
        assert copy.stat().st_mode & 0o777 == 0o600
        assert not Path(f"{copy}-wal").exists()
        appmesh.create_mesh(meshName="three")
        refused = _meshplane("store", "restore", str(copy), "--data-dir", str(data))
        assert refused.returncode == 1
        assert refused.stderr.splitlines() == [
            f"error: data dir {data} is in use by pid {serve.pid} (meshplane serve --data-dir "
            f"{data} --api-port 0 --xds-port 0); stop that process or use another --data-dir"
        ]
    finally:
        _stop(serve)
    done = _meshplane("store", "restore", str(copy), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    replaced = data / f"{DB_FILE}.replaced"
    assert done.stdout == (
        f"restored {copy} (revision 2) into {data / DB_FILE}; the previous store is kept as "
        f"{replaced}\n"
    )
    serve, endpoint = _serve(data, tmp_path / "b.log")
    try:
        assert _meshes(endpoint, data) == ["one", "two"]
        assert client.connect(endpoint, trust_env=False).health().revision == 2
    finally:
        _stop(serve)


def test_restore_refuses_a_damaged_backup_and_keeps_the_store(tmp_path: Path) -> None:
    """A truncated backup is refused in one line; the data dir's store is untouched."""
    data = tmp_path / "data"
    serve, endpoint = _serve(data, tmp_path / "a.log")
    try:
        client.appmesh(endpoint, credentials_file=data / "credentials").create_mesh(meshName="kept")
    finally:
        _stop(serve)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"")
    done = _meshplane("store", "restore", str(bad), "--data-dir", str(data))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {bad} is empty (0 bytes), not a meshplane store; restore a backup (meshplane "
        "store restore FILE) or move it away to start empty"
    ]
    serve, endpoint = _serve(data, tmp_path / "b.log")
    try:
        assert _meshes(endpoint, data) == ["kept"]
    finally:
        _stop(serve)
