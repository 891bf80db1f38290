"""A boto3 ``appmesh`` client bound to a meshplane control plane.

boto3 is not a runtime dependency of meshplane (the ``dev`` extra installs it), so it is
imported when a client is asked for, not when :mod:`meshplane.client` is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshplane.client.transport import Signer

DUMMY_KEY = "meshplane"
"""Access key and secret used when none are given: enough for a server run with
``--auth none``; a server with authentication on refuses it (UnrecognizedClientException)."""


def appmesh(
    endpoint_url: str,
    region: str = "us-west-2",
    *,
    credentials_file: Path | None = None,
    **kwargs: Any,
) -> Any:
    """``boto3.client("appmesh", ...)`` for ``endpoint_url``; ``kwargs`` go to boto3.

    ``credentials_file`` (a data dir's ``credentials``) signs as its ``meshplane``
    administrator. Without it or explicit keys the client signs with a dummy key, which
    only a server run with ``--auth none`` accepts; pass ``aws_access_key_id``/
    ``aws_secret_access_key`` for another principal.
    """
    import boto3  # noqa: PLC0415 - optional: only the dev extra installs boto3

    if credentials_file is not None:
        keys = Signer.from_file(credentials_file, region).credentials
        kwargs.update(aws_access_key_id=keys.access_key, aws_secret_access_key=keys.secret_key)
    if "aws_access_key_id" not in kwargs and "aws_secret_access_key" not in kwargs:
        kwargs.update(aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY)
    return boto3.client("appmesh", endpoint_url=endpoint_url, region_name=region, **kwargs)
