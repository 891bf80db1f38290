"""How every ``meshplane`` command reaches the control plane: signed, as boto3 would sign.

The credentials are the standard AWS chain's (``AWS_PROFILE``,
``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_ACCESS_KEY_ID``…) when the user names any, else
``<data dir>/credentials`` profile ``meshplane`` — the administrator's profile that
``meshplane serve`` writes at first start (data dir from ``MESHPLANE_DATA_DIR``, default
``.meshplane``). The scope's region is ``MESHPLANE_REGION`` (default ``us-west-2``): the
region the server serves.

Those two settings and the file's name are read here, from the variables
:mod:`meshplane.settings` declares, rather than by importing the settings and the auth
layer: every client command connects, and those imports (every setting's dataclass, the
policy engine) were a fifth of its start-up. ``tests/cli/test_fastpath.py`` checks the
names, defaults and file name against the declarations.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from meshplane import client

CREDENTIALS_FILE = "credentials"
""":data:`meshplane.auth.principals.CREDENTIALS_FILE`."""
REGION = ("MESHPLANE_REGION", "us-west-2")
"""``Settings.region``: its environment variable and default."""
DATA_DIR = ("MESHPLANE_DATA_DIR", ".meshplane")
"""``Settings.data_dir``: its environment variable and default."""


def _setting(declared: tuple[str, str]) -> str:
    env, default = declared
    return os.environ.get(env, default)


def credentials_file(data_dir: Path | None = None) -> Path:
    """``<data dir>/credentials``: the administrator's profile file of a local control plane."""
    return (data_dir or Path(_setting(DATA_DIR))) / CREDENTIALS_FILE


def connect(server: str, data_dir: Path | None = None, **options: Any) -> client.MeshplaneClient:
    """A signed client of ``server``; ``options`` go to :func:`meshplane.client.connect`."""
    return client.MeshplaneClient(transport(server, data_dir, **options))


def transport(server: str, data_dir: Path | None = None, **options: Any) -> client.Transport:
    """:func:`connect`'s transport: its ``.call()`` skips the typed client's module (fast path)."""
    return client.open_transport(
        server,
        sign=True,
        region=_setting(REGION),
        fallback_credentials=credentials_file(data_dir),
        **options,
    )
