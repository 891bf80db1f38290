"""What a call to the control plane can fail with.

::

    Exception
    ├── ControlPlaneError      the server answered, but not 2xx (status and parsed body kept)
    └── UnreachableError       no answer: refused, reset, timed out (an OSError)

Each caller renders them in its own words (kubectl's for the CLI, one line for the runtime).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ControlPlaneError(Exception):
    """The control plane answered ``status`` with ``body`` (JSON when it parsed, else text)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        """Keep the request and the answer; the message says both."""
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        super().__init__(f"{method} {path}: {status} {self.message}".rstrip())

    @property
    def phrase(self) -> str:
        """The status's reason phrase (``Bad Gateway``), or ``""`` for an unknown code."""
        import http  # noqa: PLC0415 - its status enum: only an error's message needs it

        try:
            return http.HTTPStatus(self.status).phrase
        except ValueError:
            return ""

    @property
    def message(self) -> str:
        """The server's own words: App Mesh's ``message`` or the front door's ``errors``."""
        body = self.body
        if isinstance(body, Mapping):
            return str(body.get("message") or "; ".join(map(str, body.get("errors") or [])))
        return str(body or "")


class UnreachableError(OSError):
    """The control plane could not be reached (the reason is the message)."""
