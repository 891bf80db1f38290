"""Console sessions: a short-lived cookie that proves a login, signed with HMAC-SHA256.

The cookie holds ``<access key id>.<expiry epoch seconds>.<signature>``; the signing key is
random per process, so a restart logs everybody out and nothing secret is stored. It is
``HttpOnly`` (scripts cannot read it) and ``SameSite=Strict`` (no other site's page can make
the browser send it); the access key is looked up again on every request, so removing it
ends its sessions too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

COOKIE = "meshplane_console"
DEFAULT_TTL = 15 * 60
"""Seconds a session lasts; short, because the console has no idle tracking."""


class Sessions:
    """Issues and verifies session cookie values."""

    def __init__(
        self, clock: Callable[[], float], ttl: float = DEFAULT_TTL, key: bytes | None = None
    ) -> None:
        """Sign with ``key`` (random if not given); sessions last ``ttl`` seconds of ``clock``."""
        self._clock = clock
        self.ttl = ttl
        self._key = key if key is not None else secrets.token_bytes(32)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, access_key_id: str) -> str:
        """A cookie value for ``access_key_id``, valid for ``ttl`` seconds from now."""
        payload = f"{access_key_id}.{int(self._clock() + self.ttl)}"
        return f"{payload}.{self._sign(payload)}"

    def form_token(self, value: str) -> str:
        """The token a console form of the session ``value`` carries (CSRF protection).

        Keyed and bound to the cookie, so another origin can neither read nor forge it.
        """
        return self._sign(f"form:{value}")

    def verify(self, value: str) -> str | None:
        """The access key id of a valid, unexpired cookie value; ``None`` otherwise."""
        parts = value.rsplit(".", 2)
        if len(parts) != 3:
            return None
        key_id, expires, signature = parts
        if not hmac.compare_digest(signature, self._sign(f"{key_id}.{expires}")):
            return None
        try:
            if int(expires) <= self._clock():
                return None
        except ValueError:
            return None
        return key_id
