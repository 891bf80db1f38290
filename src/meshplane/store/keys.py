"""Secret keys kept beside the store, in the data dir: made once, read at every start.

A key lives in ``<data dir>/<name>.key`` with mode 0600, so it survives restarts
(a ``nextToken`` handed out before a restart still works after it) and no other
local user can read it and mint values the server would trust.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def load_or_create(data_dir: Path, name: str) -> bytes:
    """The key ``name`` of ``data_dir``, created (random, mode 0600) on first use."""
    path = data_dir / f"{name}.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting on one data dir never both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"{path} holds {len(key)} bytes, not a {KEY_BYTES}-byte key; delete it to make "
                "a new one (outstanding nextTokens become invalid)"
            ) from None
        return key
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key
