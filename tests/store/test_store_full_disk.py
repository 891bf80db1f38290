"""`meshplane serve` on a 5 MB tmpfs filled to the brim, then remounted read-only.


Real processes, a real file system running out of space: writes answer
ServiceUnavailableException naming the cause, the server stays up and answers
reads, and every acknowledged write is there after a kill -9 and a restart.
Mounting needs root (CI runs as root); elsewhere the test says so and skips,
and tests/store/test_store_storage_errors.py covers the same path with
SQLite's page ceiling.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import served
from botocore.exceptions import ClientError

from meshplane import client

pytestmark = pytest.mark.integration


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A fresh 5 MB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def _serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    return served.serve(data_dir, log, {"MESHPLANE_QUOTA_MESHES": "1000000"})


def _fill(directory: Path) -> Path:
    """A file that takes every free block of ``directory``'s file system."""
    filler = directory / "filler"
    # Unbuffered: a short last write leaves nothing behind for close() to flush (and fail).
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def _create_until_refused(appmesh: Any, acknowledged: list[str]) -> dict[str, str]:
    """Create meshes until one is refused; note each acknowledged name; the refusal's error."""
    for index in range(100_000):
        try:
            appmesh.create_mesh(meshName=f"m{index:05}")
        except ClientError as refused:
            return dict(refused.response["Error"])
        acknowledged.append(f"m{index:05}")
    raise AssertionError("100,000 meshes fit on a 5 MB disk")


def test_a_full_then_read_only_disk_answers_app_mesh_errors_and_loses_nothing(
    tmpfs: Path, tmp_path: Path
) -> None:
    """Full: 503 naming the disk, reads work; read-only: one line at start; acked writes stay."""
    data = tmpfs / "data"
    log = tmp_path / "serve.log"
    serve, endpoint = _serve(data, log)
    acknowledged: list[str] = []
    try:
        appmesh = client.appmesh(endpoint, credentials_file=data / "credentials")
        appmesh.create_mesh(meshName="first")
        acknowledged.append("first")
        filler = _fill(tmpfs)
        error = _create_until_refused(appmesh, acknowledged)
        assert error["Code"] == "ServiceUnavailableException"
        assert error["Message"].startswith(f"the store's disk is full: {data}/meshplane.db (")
        assert serve.poll() is None
        listed = appmesh.list_meshes(limit=100)["meshes"]
        assert [m["meshName"] for m in listed][:1] == ["first"]
        assert client.connect(endpoint, trust_env=False).health().status == "ok"

        filler.unlink()
        appmesh.create_mesh(meshName="room-again")
        acknowledged.append("room-again")

        assert appmesh.describe_mesh(meshName="room-again")["mesh"]["meshName"] == "room-again"
    finally:
        serve.kill()
        serve.wait(timeout=30)

    # Read-only (remounted with nothing open): the server refuses to start, in one line.
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    try:
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "meshplane.cli.main",
                "serve",
                "--data-dir",
                str(data),
                "--api-port",
                "0",
                "--xds-port",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "500"},
            check=False,
        )
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"error: the data dir cannot be written: {data}/lock (Read-only file system)"
    ]

    serve, endpoint = _serve(data, tmp_path / "restarted.log")
    try:
        appmesh = client.appmesh(endpoint, credentials_file=data / "credentials")
        names: list[str] = []
        pages = appmesh.get_paginator("list_meshes").paginate()
        for page in pages:
            names += [m["meshName"] for m in page["meshes"]]
        assert sorted(names) == sorted(acknowledged)
    finally:
        serve.kill()
        serve.wait(timeout=30)
