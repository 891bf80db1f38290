"""service.pagination: opaque tokens bound to one list, and page-size limits."""

from __future__ import annotations

import base64
import json

import pytest

from meshplane.model import errors
from meshplane.service import pagination


def test_token_round_trip() -> None:
    """A token decodes, for the same list, to the position it encodes."""
    token = pagination.encode("virtualNode/demos/", 42)
    assert pagination.decode("virtualNode/demos/", token) == 42
    assert "=" not in token


def test_no_token_starts_at_the_beginning() -> None:
    """No token means position 0."""
    assert pagination.decode("mesh//", None) == 0


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
        pagination.decode("mesh//", token)


def test_token_of_another_list_is_refused() -> None:
    """A token from the node list of one mesh is refused by the node list of another."""
    token = pagination.encode("virtualNode/a/", 3)
    with pytest.raises(errors.BadRequestException):
        pagination.decode("virtualNode/b/", token)


def test_negative_or_non_integer_position_is_refused() -> None:
    """A forged token with a negative or non-integer position is refused."""
    tag = pagination._scope_tag("mesh//")
    for after in (-1, "3", 1.5, None):
        raw = json.dumps({"v": 1, "s": tag, "a": after}).encode()
        forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        with pytest.raises(errors.BadRequestException):
            pagination.decode("mesh//", forged)


def test_limits() -> None:
    """limit defaults to the maximum and must lie within 1..maximum."""
    assert pagination.check_limit(None) == 100
    assert pagination.check_limit(1) == 1
    assert pagination.check_limit(50, 50) == 50
    for bad in (0, 101, -5):
        with pytest.raises(errors.BadRequestException, match=f"limit: {bad} is outside"):
            pagination.check_limit(bad)
