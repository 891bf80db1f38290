"""meshplane.client.sigv4 signs exactly as botocore's SigV4Auth signs the same request."""

from __future__ import annotations

import datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from meshplane.client import sigv4

KEY, SECRET, TOKEN = "AKIDMESHPLANETEST", "secret/of/the/test", "session+token=="

REQUESTS = [
    ("GET", "http://127.0.0.1:9080/healthz", {}, b""),
    ("GET", "http://127.0.0.1:9080/meshplane/v1/objects/virtualrouters?namespace=default", {}, b""),
    ("POST", "http://localhost/meshplane/v1/manifests/apply", {}, b'{"sources": []}'),
    ("PUT", "https://mesh.example:443/v20190125/meshes/demos", {}, b"{}"),
    ("GET", "https://Mesh.Example:8443/a/./b/../c//d/", {}, b""),
    ("DELETE", "http://[::1]:9080/meshplane/v1/objects/vn/a%2Fb%20c", {}, b""),
    ("GET", "http://127.0.0.1:9080/x?z=1&a=2&a=1&m=&k=v%20w&flag", {}, b""),
    ("get", "http://127.0.0.1:9080/", {}, b""),
    ("GET", "http://127.0.0.1:9080", {}, b""),
    ("GET", "http://127.0.0.1:9080/%7Euser/caf%C3%A9/~x", {}, b""),
    (
        "POST",
        "http://127.0.0.1:9080/p",
        {
            "content-type": "application/json",
            "User-Agent": "meshplane",
            "X-Custom": "  two   spaces\tand tab ",
            "Authorization": "stale",
            "X-Amz-Date": "19990101T000000Z",
        },
        b"\x00\xffbytes",
    ),
]


def _botocore(
    method: str, url: str, headers: dict[str, str], body: bytes, token: str | None
) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(Credentials(KEY, SECRET, token), "appmesh", "eu-west-1").add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize(("method", "url", "headers", "body"), REQUESTS)
def test_headers_equal_botocores_for_the_same_request_and_time(
    method: str, url: str, headers: dict[str, str], body: bytes, token: str | None
) -> None:
    """Same keys, request and second: the same headers, in the same order, as botocore's."""
    expected = _botocore(method, url, headers, body, token)
    now = datetime.datetime.strptime(expected["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.UTC
    )
    keys = sigv4.Keys(KEY, SECRET, token)
    signed = sigv4.sign(keys, "eu-west-1", "appmesh", method, url, body, headers, now)
    assert list(signed.items()) == list(expected.items())


def test_a_known_signature_for_a_fixed_time() -> None:
    """A fixed request, time and key give one signature, the one botocore gave (recorded)."""
    now = datetime.datetime(2026, 12, 1, 15, 0, 0, tzinfo=datetime.UTC)
    signed = sigv4.sign(
        sigv4.Keys(KEY, SECRET),
        "us-west-2",
        "appmesh",
        "GET",
        "http://127.0.0.1:9080/healthz",
        b"",
        {"content-type": "application/json"},
        now,
    )
    assert signed == {
        "content-type": "application/json",
        "X-Amz-Date": "20261201T150000Z",
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={KEY}/20261201/us-west-2/appmesh/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=1e74c0c65541b2bc8cb9ccc3a0a558cbd904e33624c4d71f5458acb6ad679215"
        ),
    }
