"""Opaque ``nextToken`` values: where the next page starts, and nothing a client can forge.

A token encodes the creation sequence of the last item served and the list it
belongs to; a token from another list, or garbage, is a BadRequest that tells
the caller what to pass instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from meshplane.model import errors

DEFAULT_LIMIT = 100


def _scope_tag(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:12]


def encode(scope: str, after: int) -> str:
    """The token for the page that follows the item with sequence ``after``."""
    raw = json.dumps({"v": 1, "s": _scope_tag(scope), "a": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(scope: str, token: str | None) -> int:
    """The sequence to continue after (0 for the first page); BadRequest for a bad token."""
    if token is None:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if body.get("v") != 1 or body.get("s") != _scope_tag(scope):
            raise ValueError("token is for another list")
        after = body["a"]
        if not isinstance(after, int) or after < 0:
            raise ValueError("bad position")
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
