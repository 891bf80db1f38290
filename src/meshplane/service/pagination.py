"""Opaque ``nextToken`` values: where the next page starts, and nothing a client can forge.

A token encodes the creation sequence of the last item served and the list it
belongs to, signed with an HMAC key kept in the data dir (so tokens survive a
restart, and a client cannot mint one). A forged, tampered or foreign token,
or one whose position is out of range (the fuzzer's ``{"a": 10**30}`` overflowed
SQLite's integers into a 500), is a BadRequest that tells the caller what to
pass instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets

from meshplane.model import errors

DEFAULT_LIMIT = 100
MAX_POSITION = 2**63 - 1
"""The largest creation sequence or offset a token may carry (SQLite's integer range)."""
_MAC_BYTES = 16


def _scope_tag(scope: str) -> str:
    return hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


class Tokens:
    """Signs and checks the tokens of every list, with one secret key."""

    def __init__(self, key: bytes | None = None) -> None:
        """Sign with ``key`` (the data dir's); a fresh random key when none is given."""
        self._key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, scope: str, after: int) -> str:
        """The token for the page that follows the item with sequence ``after``."""
        body = json.dumps({"v": 2, "s": _scope_tag(scope), "a": after}, separators=(",", ":"))
        raw = body.encode()
        return f"{_b64(raw)}.{_b64(self._mac(raw))}"

    def decode(self, scope: str, token: str | None) -> int:
        """The sequence to continue after (0 for the first page); BadRequest for a bad token."""
        if token is None:
            return 0
        try:
            body_part, _, mac_part = token.partition(".")
            raw = _unb64(body_part)
            if not hmac.compare_digest(_unb64(mac_part), self._mac(raw)):
                raise ValueError("bad signature")
            body = json.loads(raw)
            if body.get("v") != 2 or body.get("s") != _scope_tag(scope):
                raise ValueError("token is for another list")
            after = body["a"]
            if not isinstance(after, int) or isinstance(after, bool):
                raise ValueError("bad position")
            if not 0 <= after <= MAX_POSITION:
                raise ValueError("position out of range")
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise errors.BadRequestException(
                "nextToken: the token is not valid for this list; pass the nextToken "
                "returned by the previous page, or omit it to start from the beginning"
            ) from exc
        return after


def check_limit(limit: int | None, maximum: int = DEFAULT_LIMIT) -> int:
    """The page size: ``limit`` if it is within 1..maximum, else BadRequest."""
    if limit is None:
        return maximum
    if not 1 <= limit <= maximum:
        raise errors.BadRequestException(
            f"limit: {limit} is outside the allowed range 1..{maximum}"
        )
    return limit
