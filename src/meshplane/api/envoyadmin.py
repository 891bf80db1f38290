"""``proxy-config --envoy``: Envoy's own config dump, read from the sidecar's admin socket.

What the control plane sent (``/proxies/config``) and what Envoy runs can differ: a
NACKed update, a warming cluster, a secret Envoy has not received. Envoy's
``/config_dump`` says what it runs. The local runtime's sidecars serve admin on a unix
socket of mode 0600 beside the control plane and announce its path in their node
metadata; the control plane reads it only if it is a socket owned by its own user (so a
proxy cannot make it open anything else), and strips every private key Envoy's own
redaction might leave before answering.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import aiohttp

REDACTED = "[redacted]"
TIMEOUT_S = 5.0


class Unreachable(Exception):
    """The proxy's admin interface cannot be read from here; the message says why."""


def check_socket(path: str) -> None:
    """Refuse anything but a unix socket owned by this process's user."""
    try:
        found = os.stat(path)
    except OSError as error:
        raise Unreachable(f"admin socket {path}: {error.strerror}") from error
    if not stat.S_ISSOCK(found.st_mode):
        raise Unreachable(f"{path} is not a socket")
    if found.st_uid != os.getuid():
        raise Unreachable(f"admin socket {path} belongs to another user")


async def config_dump(path: str) -> dict[str, Any]:
    """Envoy's ``/config_dump`` through the admin socket at ``path``, private keys removed."""
    check_socket(path)
    connector = aiohttp.UnixConnector(path=path)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.get("http://envoy/config_dump") as answer,
        ):
            if answer.status != 200:
                raise Unreachable(f"Envoy's admin answered {answer.status}")
            dump = await answer.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise Unreachable(f"admin socket {path}: {error}") from error
    if not isinstance(dump, dict):
        raise Unreachable("Envoy's config dump is not a JSON object")
    redacted: dict[str, Any] = redact(dump)
    return redacted


def redact(value: Any) -> Any:
    """``value`` with every ``private_key`` member and every PEM private key replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if key in ("private_key", "privateKey") else redact(child)
            for key, child in value.items()
        }
    if isinstance(value, list):
        return [redact(child) for child in value]
    if isinstance(value, str) and "PRIVATE KEY" in value:
        return REDACTED
    return value
