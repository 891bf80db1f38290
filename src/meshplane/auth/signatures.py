"""Verifying an AWS SigV4 signature with botocore's own canonicalisation.

The server rebuilds the request as a botocore ``AWSRequest`` — method, the URL exactly
as sent, only the headers the client says it signed, the body — and asks botocore's
``SigV4Auth`` for the canonical request, string to sign and signature, i.e. the very
code boto3 and the ``aws`` CLI signed it with. Nothing here re-implements SigV4's
canonical form (URI encoding, query sorting, header folding are easy to get subtly
different, and a difference is either a false reject or a bypass).

What this module checks on top, because botocore only signs:

- the credential scope names today's date of the request, the served region, service
  ``appmesh`` and ``aws4_request``;
- ``X-Amz-Date`` is within :data:`MAX_SKEW` of the server's clock (replay window);
- ``host`` and ``x-amz-date`` are among the signed headers;
- a body hash the client sends (``X-Amz-Content-SHA256``) is the body's, since botocore
  would otherwise trust that header instead of hashing the body;
- signatures compare in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable

from meshplane.auth import errors

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "appmesh"
MAX_SKEW = 300.0
"""Seconds a signature's date may differ from the server's clock (AWS allows 5 minutes)."""
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)=([^,\s]*)\s*")
REQUIRED_SIGNED = ("host", "x-amz-date")


@dataclasses.dataclass(frozen=True)
class Authorization:
    """The parts of a SigV4 ``Authorization`` header."""

    access_key_id: str
    scope: tuple[str, ...]
    """date, region, service, terminator."""
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    """Split the header; Missing… if absent, InvalidSignature… if it is not SigV4's form."""
    if not value or not value.strip():
        raise errors.MissingAuthenticationTokenException(
            "Missing Authentication Token: sign the request with AWS SigV4 (service appmesh); "
            "see the banner of meshplane serve for the credentials"
        )
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise errors.InvalidSignatureException(
            f"Unsupported authorization algorithm {algorithm!r}: only {ALGORITHM} is accepted"
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        found = _FIELD.fullmatch(part)
        if found is None:
            raise errors.InvalidSignatureException(
                f"Malformed Authorization header near {part.strip()[:40]!r}"
            )
        fields[found.group(1)] = found.group(2)
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise errors.InvalidSignatureException(
            "Authorization must have Credential, SignedHeaders and Signature"
        )
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or not credential[0]:
        raise errors.InvalidSignatureException(
            "Credential must be <access key id>/<date>/<region>/<service>/aws4_request"
        )
    return Authorization(
        credential[0],
        tuple(credential[1:]),
        tuple(fields["SignedHeaders"].split(";")),
        fields["Signature"],
    )


def _signed_at(value: str | None, now: float) -> str:
    """``X-Amz-Date`` checked against the clock; the value itself for the string to sign."""
    if value is None:
        raise errors.InvalidSignatureException("The request must carry a signed X-Amz-Date header")
    # Parsed by hand: time.strptime costs a third of a verification.
    parts = _DATE.fullmatch(value)
    try:
        if parts is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = (int(p) for p in parts.groups())
        datetime.datetime(year, month, day, hour, minute, second)  # refuses month 13, hour 25
    except ValueError as exc:
        raise errors.InvalidSignatureException(
            f"X-Amz-Date {value!r} is not of the form YYYYMMDDTHHMMSSZ"
        ) from exc
    signed = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if abs(signed - now) > MAX_SKEW:
        server = time.strftime(_AMZ_DATE, time.gmtime(now))
        raise errors.InvalidSignatureException(
            f"Signature expired or not yet valid: {value} is more than {MAX_SKEW / 60:g} "
            f"minutes from the server's time {server}"
        )
    return value


@dataclasses.dataclass(frozen=True)
class SignedHeaders:
    """What the headers alone prove: a known key, a fresh date, the right scope."""

    authorization: Authorization
    secret: str
    amz_date: str
    received: dict[str, list[str]]


def check_headers(
    *,
    headers: Iterable[tuple[str, str]],
    region: str,
    now: float,
    secret_for: Callable[[str], str | None],
) -> SignedHeaders:
    """Every check that needs no body, in :func:`verify`'s order; an AuthError if one fails.

    The API runs it before it reads a body, so a client without a known key and a
    fresh signature cannot make the server receive megabytes.
    """
    received: dict[str, list[str]] = {}
    for name, value in headers:
        received.setdefault(name.lower(), []).append(value)
    authorization = parse_authorization(_one(received, "authorization"))
    secret = secret_for(authorization.access_key_id)
    if secret is None:
        raise errors.UnrecognizedClientException(
            "The security token included in the request is invalid: access key "
            f"{authorization.access_key_id} is not known to this control plane (its "
            "administrator's profile is `meshplane` in the credentials file of its data dir)"
        )
    amz_date = _signed_at(_one(received, "x-amz-date"), now)
    expected_scope = (amz_date[:8], region, SERVICE, "aws4_request")
    if authorization.scope != expected_scope:
        raise errors.InvalidSignatureException(
            f"Credential should be scoped to {'/'.join(expected_scope)}, not "
            f"{'/'.join(authorization.scope)} (the region is the one meshplane serves)"
        )
    missing = [h for h in REQUIRED_SIGNED if h not in authorization.signed_headers]
    absent = [h for h in authorization.signed_headers if h not in received]
    if missing or absent:
        raise errors.InvalidSignatureException(
            "SignedHeaders must include host and x-amz-date and name only headers sent"
            f" (unsigned: {', '.join(missing) or '-'}; absent: {', '.join(absent) or '-'})"
        )
    return SignedHeaders(authorization, secret, amz_date, received)


def verify(
    *,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    region: str,
    now: float,
    secret_for: Callable[[str], str | None],
) -> str:
    """Check the request's SigV4 signature; the signer's access key id, or an AuthError.

    ``url`` is the scheme, the ``Host`` and the path and query exactly as sent;
    ``headers`` every header received; ``secret_for`` looks an access key's secret up.
    """
    from botocore.auth import SigV4Auth  # noqa: PLC0415 - botocore is heavy; import on first use
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.credentials import Credentials  # noqa: PLC0415

    checked = check_headers(headers=headers, region=region, now=now, secret_for=secret_for)
    authorization, secret, amz_date = checked.authorization, checked.secret, checked.amz_date
    received = checked.received
    digest = _one(received, "x-amz-content-sha256")
    if digest is not None and digest != hashlib.sha256(body).hexdigest():
        raise errors.InvalidSignatureException(
            "X-Amz-Content-SHA256 does not match the body (unsigned payloads are not accepted)"
        )
    signed = {name: ",".join(received[name]) for name in authorization.signed_headers}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(authorization.access_key_id, secret), SERVICE, region)
    computed_headers = signer.signed_headers(signer.headers_to_sign(request))
    if computed_headers != ";".join(authorization.signed_headers):
        raise errors.InvalidSignatureException(
            f"SignedHeaders {';'.join(authorization.signed_headers)} are not in SigV4's "
            f"canonical form ({computed_headers})"
        )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected.encode(), authorization.signature.encode()):
        raise errors.InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return authorization.access_key_id


def _one(received: dict[str, list[str]], name: str) -> str | None:
    values = received.get(name)
    return None if not values else ",".join(values)
