"""The app's lifecycle: what ``app.running`` starts it stops, even on a failed start."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import pytest

from meshplane import app, settings


def test_a_taken_api_port_leaves_no_xds_server_sync_task_or_open_store(tmp_path: Path) -> None:
    """When the API cannot bind, the xDS server, sync task and store started first are closed."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        config = settings.load(environ={}, data_dir=tmp_path, api_port=taken, xds_port=0)
        plane = app.build(config)

        async def start() -> list[str]:
            with pytest.raises(OSError, match="address already in use"):
                async with app.running(plane):
                    pass
            others = asyncio.all_tasks() - {asyncio.current_task()}
            return [t.get_name() for t in others if not t.done()]

        tasks = asyncio.run(start())
    assert tasks == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", plane.xds_port), timeout=5).close()
    with pytest.raises(sqlite3.ProgrammingError):
        plane.store.revision()
