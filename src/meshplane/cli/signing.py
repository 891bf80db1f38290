"""How every ``meshplane`` command reaches the control plane: signed, as boto3 would sign.

The credentials are the standard AWS chain's (``AWS_PROFILE``,
``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_ACCESS_KEY_ID``…) when the user names any, else
``<data dir>/credentials`` profile ``meshplane`` — the administrator's profile that
``meshplane serve`` writes at first start (data dir from ``MESHPLANE_DATA_DIR``, default
``.meshplane``). The scope's region is ``MESHPLANE_REGION`` (default ``us-west-2``): the
region the server serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshplane import client, settings
from meshplane.auth.principals import CREDENTIALS_FILE


def credentials_file(data_dir: Path | None = None) -> Path:
    """``<data dir>/credentials``: the administrator's profile file of a local control plane."""
    return (data_dir or settings.load().data_dir) / CREDENTIALS_FILE


def connect(server: str, data_dir: Path | None = None, **options: Any) -> client.MeshplaneClient:
    """A signed client of ``server``; ``options`` go to :func:`meshplane.client.connect`."""
    config = settings.load()
    return client.connect(
        server,
        sign=True,
        region=config.region,
        fallback_credentials=credentials_file(data_dir or config.data_dir),
        **options,
    )
