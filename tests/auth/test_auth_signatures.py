"""SigV4 verification: what botocore signs verifies; every tampering is refused with its code."""

from __future__ import annotations

import calendar
import datetime
import hashlib
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from meshplane.auth import errors, signatures

KEY, SECRET = "AKIAEXAMPLEKEY000001", "a-secret-of-forty-characters-exactly-000"
URL = "http://127.0.0.1:9080/v20190125/meshes/demos/virtualNodes?limit=5&nextToken=a%2Fb"
SIGNED_AT = datetime.datetime(2026, 12, 1, 9, 30, 0, tzinfo=datetime.UTC)
NOW = float(calendar.timegm(SIGNED_AT.timetuple()))


def _signed(
    monkeypatch: pytest.MonkeyPatch,
    body: bytes = b'{"virtualNodeName": "a", "spec": {}}',
    *,
    secret: str = SECRET,
    region: str = "us-west-2",
    extra: dict[str, str] | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers of a PUT signed by botocore at SIGNED_AT (the client's clock), and its body."""
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: SIGNED_AT)
    request = AWSRequest(
        method="PUT",
        url=URL,
        data=body,
        headers={"Content-Type": "application/json", **(extra or {})},
    )
    SigV4Auth(Credentials(KEY, secret), "appmesh", region).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = "127.0.0.1:9080"  # what the HTTP client adds; botocore signed it from the URL
    headers["User-Agent"] = "not signed, ignored"
    return headers, body


def _verify(headers: dict[str, str], body: bytes, now: float = NOW, url: str = URL) -> str:
    return signatures.verify(
        method="PUT",
        url=url,
        headers=headers.items(),
        body=body,
        region="us-west-2",
        now=now,
        secret_for={KEY: SECRET}.get,
    )


def _refused(kind: type[errors.AuthError], call: Any) -> str:
    with pytest.raises(kind) as refused:
        call()
    return refused.value.message


def test_a_botocore_signature_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request signed by botocore's SigV4Auth verifies and names its access key."""
    headers, body = _signed(monkeypatch)
    assert _verify(headers, body) == KEY


def test_dates_within_five_minutes_verify_and_beyond_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 s of skew either way passes; 301 s is InvalidSignatureException."""
    headers, body = _signed(monkeypatch)
    assert _verify(headers, body, NOW + 300) == KEY
    assert _verify(headers, body, NOW - 300) == KEY
    message = _refused(errors.InvalidSignatureException, lambda: _verify(headers, body, NOW + 301))
    assert message == (
        "Signature expired or not yet valid: 20261201T093000Z is more than 5 minutes from "
        "the server's time 20261201T093501Z"
    )


def test_tampering_is_an_invalid_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another body, query, method path or secret fails the signature check."""
    headers, body = _signed(monkeypatch)
    for call in (
        lambda: _verify(headers, body.replace(b'"a"', b'"b"')),
        lambda: _verify(headers, body, url=URL.replace("limit=5", "limit=6")),
        lambda: _verify(headers, body, url=URL.replace("demos", "other")),
        lambda: _verify({**headers, "Content-Type": "text/plain"}, body),
    ):
        message = _refused(errors.InvalidSignatureException, call)
        assert message.startswith("The request signature we calculated does not match")
    wrong, _ = _signed(monkeypatch, secret="another secret")
    _refused(errors.InvalidSignatureException, lambda: _verify(wrong, body))


def test_a_body_hash_header_must_be_the_bodys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed X-Amz-Content-SHA256 of the original body cannot vouch for another body."""
    original = b'{"virtualNodeName": "a", "spec": {}}'
    digest = hashlib.sha256(original).hexdigest()
    headers, body = _signed(monkeypatch, original, extra={"X-Amz-Content-SHA256": digest})
    assert _verify(headers, body) == KEY
    message = _refused(
        errors.InvalidSignatureException, lambda: _verify(headers, b'{"virtualNodeName": "evil"}')
    )
    assert message.startswith("X-Amz-Content-SHA256 does not match the body")


def test_unknown_keys_missing_headers_and_foreign_scopes_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No Authorization, an unknown key, a scope for another region each have their code."""
    headers, body = _signed(monkeypatch)
    no_auth = {k: v for k, v in headers.items() if k != "Authorization"}
    _refused(errors.MissingAuthenticationTokenException, lambda: _verify(no_auth, body))
    unknown = {**headers, "Authorization": headers["Authorization"].replace(KEY, "AKIAUNKNOWN")}
    message = _refused(errors.UnrecognizedClientException, lambda: _verify(unknown, body))
    assert "access key AKIAUNKNOWN is not known" in message
    elsewhere, _ = _signed(monkeypatch, region="eu-west-1")
    message = _refused(errors.InvalidSignatureException, lambda: _verify(elsewhere, body))
    assert message.startswith("Credential should be scoped to 20261201/us-west-2/appmesh/")
    undated = {k: v for k, v in headers.items() if k != "X-Amz-Date"}
    _refused(errors.InvalidSignatureException, lambda: _verify(undated, body))
    for bad in ("20261301T093000Z", "2026-12-01T09:30:00Z"):
        message = _refused(
            errors.InvalidSignatureException,
            lambda b=bad: _verify({**headers, "X-Amz-Date": b}, body),
        )
        assert message == f"X-Amz-Date {bad!r} is not of the form YYYYMMDDTHHMMSSZ"
    basic = {**headers, "Authorization": "Basic dXNlcjpwYXNz"}
    _refused(errors.InvalidSignatureException, lambda: _verify(basic, body))


def test_signatures_compare_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is hmac.compare_digest's (recorded), never ==."""
    headers, body = _signed(monkeypatch)
    compared: list[tuple[bytes, bytes]] = []
    real = signatures.hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signatures.hmac, "compare_digest", recording)
    assert _verify(headers, body) == KEY
    signature = headers["Authorization"].rsplit("Signature=", 1)[1].encode()
    assert compared == [(signature, signature)]
