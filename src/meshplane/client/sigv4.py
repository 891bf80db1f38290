"""SigV4 signing of one request, as botocore's ``SigV4Auth`` signs it, without importing botocore.

Every CLI command signs its requests, and importing ``botocore.auth`` (with the utilities,
``urllib3`` and the request classes it brings) cost more than the rest of a command's
start-up together. The canonical form here is the one botocore's ``SigV4Auth.add_auth``
builds for a request with a bytes body, no ``params`` and no ``Date`` header (the only kind
:mod:`meshplane.client.transport` sends): the path with dot segments and empty segments
removed and percent-encoded again, the query string as sent with its pairs sorted, every
header but botocore's unsigned ones plus ``host`` (without a default port), values with runs
of whitespace folded, and the body's SHA-256. ``tests/client/test_sigv4.py`` checks the
headers equal botocore's for the same request, date and keys; the server still verifies
with botocore itself (:mod:`meshplane.auth.signatures`), so a difference here is a refusal,
never a bypass.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_HEADERS = frozenset({"expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"})
"""Headers botocore leaves out of the signature (they may change in transit)."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Keys(NamedTuple):
    """An access key, its secret and an optional session token: what a signature needs.

    A named tuple, not a dataclass: importing :mod:`dataclasses` (it imports :mod:`inspect`)
    was a tenth of a CLI command's start-up, and every command signs.
    """

    access_key: str
    secret_key: str
    token: str | None = None

    def get_frozen_credentials(self) -> Keys:
        """These keys (botocore's name: a refreshable botocore credential answers it too)."""
        return self


def _path(path: str) -> str:
    """RFC 3986's dot-segment removal with empty segments dropped, then percent-encoded."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and kept else ""
    return quote(lead + "/".join(kept) + trail, safe="/~")


def _query(query: str) -> str:
    """The query's ``key=value`` pairs sorted, encoded as they were sent."""
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign(
    keys: Keys,
    region: str,
    service: str,
    method: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime.datetime,
) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date``, the session token (if any) and ``Authorization``.

    ``now`` is the signing time (UTC), injected so that tests compare with botocore exactly.
    """
    replaced = {"authorization", "x-amz-date"} | ({"x-amz-security-token"} if keys.token else set())
    signed = {name: value for name, value in headers.items() if name.lower() not in replaced}
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    signed["X-Amz-Date"] = stamp
    if keys.token:
        signed["X-Amz-Security-Token"] = keys.token
    canonical_headers = {
        name.lower(): " ".join(value.split())
        for name, value in signed.items()
        if name.lower() not in UNSIGNED_HEADERS
    }
    canonical_headers.setdefault("host", _host(url))
    names = sorted(canonical_headers)
    parts = urlsplit(url)
    canonical_request = "\n".join(
        [
            method.upper(),
            _path(parts.path),
            _query(parts.query),
            "".join(f"{name}:{canonical_headers[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, stamp, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(("AWS4" + keys.secret_key).encode("utf-8"), stamp[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"{ALGORITHM} Credential={keys.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed
