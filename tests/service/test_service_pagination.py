"""service.pagination: signed opaque tokens bound to one list, and page-size limits."""

from __future__ import annotations

import base64
import json

import pytest

from meshplane.model import errors
from meshplane.service import pagination

KEY = b"k" * 32
tokens = pagination.Tokens(KEY)


def _signed(body: object, key: bytes = KEY) -> str:
    """A token with ``body`` signed by ``key``: what only the server can make."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    mac = pagination.Tokens(key)._mac(raw)
    encode = base64.urlsafe_b64encode
    return f"{encode(raw).decode().rstrip('=')}.{encode(mac).decode().rstrip('=')}"


def test_token_round_trip() -> None:
    """A token decodes, for the same list, to the position it encodes."""
    token = tokens.encode("virtualNode/demos/", 42)
    assert tokens.decode("virtualNode/demos/", token) == 42
    assert "=" not in token


def test_no_token_starts_at_the_beginning() -> None:
    """No token means position 0."""
    assert tokens.decode("mesh//", None) == 0


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "",
        "e30",  # {} : no version
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"v": 1, "s": "x", "a": 1}).encode()).decode(),
    ],
)
def test_bad_tokens_are_bad_requests(token: str) -> None:
    """Garbage, empty, wrong shape and foreign-scope tokens are BadRequest naming nextToken."""
    with pytest.raises(errors.BadRequestException, match=r"^nextToken: the token is not valid"):
        tokens.decode("mesh//", token)


def test_token_of_another_list_is_refused() -> None:
    """A token from the node list of one mesh is refused by the node list of another."""
    token = tokens.encode("virtualNode/a/", 3)
    with pytest.raises(errors.BadRequestException):
        tokens.decode("virtualNode/b/", token)


def test_negative_huge_or_non_integer_position_is_refused() -> None:
    """Even correctly signed, a negative, huge (>= 2**63) or non-integer position is refused."""
    tag = pagination._scope_tag("mesh//")
    assert tokens.decode("mesh//", _signed({"v": 2, "s": tag, "a": 2**63 - 1})) == 2**63 - 1
    for after in (-1, 2**63, 10**30, "3", 1.5, None, True):
        with pytest.raises(errors.BadRequestException):
            tokens.decode("mesh//", _signed({"v": 2, "s": tag, "a": after}))


def test_unsigned_or_foreign_key_tokens_are_refused() -> None:
    """A token with no MAC, a tampered body, or another server's key is a BadRequest."""
    tag = pagination._scope_tag("mesh//")
    good = _signed({"v": 2, "s": tag, "a": 7})
    assert tokens.decode("mesh//", good) == 7
    body, mac = good.split(".")
    unsigned = body
    tampered = _signed({"v": 2, "s": tag, "a": 8}).split(".")[0] + "." + mac
    foreign = _signed({"v": 2, "s": tag, "a": 7}, key=b"x" * 32)
    for token in (unsigned, tampered, foreign):
        with pytest.raises(errors.BadRequestException, match=r"^nextToken: the token is not valid"):
            tokens.decode("mesh//", token)


def test_limits() -> None:
    """limit defaults to the maximum and must lie within 1..maximum."""
    assert pagination.check_limit(None) == 100
    assert pagination.check_limit(1) == 1
    assert pagination.check_limit(50, 50) == 50
    for bad in (0, 101, -5):
        with pytest.raises(errors.BadRequestException, match=f"limit: {bad} is outside"):
            pagination.check_limit(bad)
