"""Proxy credentials: the token a sidecar shows on its ADS stream and its endpoint registrations.

App Mesh's Envoy signed its xDS stream with SigV4 and IAM scoped it to one virtual
node. meshplane's local mode issues each replica a token instead, over the signed
``/meshplane/v1`` API: an HMAC-SHA256 over (node id, replica, expiry) with a key only
the control plane holds (``<data dir>/proxy-credentials.key``, mode 0600). The xDS
server admits a stream only with a token for exactly the node and replica it
announces, and the endpoint API lets a token register and withdraw only its own
replica's endpoints. Nothing is stored per token: a restarted control plane with the
same data dir accepts the tokens it issued before, so running sidecars reconnect.

Wire form: ``mpt1.<base64url(JSON claims)>.<base64url(HMAC)>``; the signature is
checked (in constant time) before the claims are even parsed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from meshplane.kit.clock import Clock

PREFIX = "mpt1"
KEY_FILE = "proxy-credentials.key"
"""The HMAC key's file name inside the data dir."""
_KEY_BYTES = 32


class InvalidCredential(Exception):
    """The token is malformed, forged or expired; the message says which (never the key)."""


@dataclasses.dataclass(frozen=True)
class Claims:
    """Who a valid token speaks for, and until when."""

    node_id: str
    replica: str
    expires_at: float


@dataclasses.dataclass(frozen=True)
class Credential:
    """A freshly issued token and its claims."""

    token: str
    claims: Claims


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(data_dir: Path) -> bytes:
    """The data dir's HMAC key, created (0600, in a 0700 dir) on first use."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / KEY_FILE
    try:
        # O_EXCL: two control planes starting on one data dir cannot both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) < _KEY_BYTES:
            raise ValueError(f"{path}: too short to be a proxy-credential key") from None
        return key
    with os.fdopen(fd, "wb") as file:
        key = secrets.token_bytes(_KEY_BYTES)
        file.write(key)
        file.flush()
        os.fsync(file.fileno())
    return key


class ProxyCredentials:
    """Issues and verifies proxy tokens with one key."""

    def __init__(self, key: bytes, clock: Clock, ttl: float, *, required: bool = True) -> None:
        """Tokens live ``ttl`` seconds on ``clock``.

        ``required`` False is the dev escape hatch (``xds_auth`` off): tokens are still
        issued and checked when shown, but streams and registrations without one pass.
        """
        self._key = key
        self._clock = clock
        self.ttl = ttl
        self.required = required

    def issue(self, node_id: str, replica: str) -> Credential:
        """A token for exactly ``node_id`` and ``replica`` ("" for a proxy without replicas)."""
        claims = Claims(node_id, replica, round(self._clock() + self.ttl, 3))
        body = json.dumps(
            {"n": claims.node_id, "r": claims.replica, "e": claims.expires_at},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        payload = _b64(body)
        return Credential(f"{PREFIX}.{payload}.{self._sign(payload)}", claims)

    def verify(self, token: str) -> Claims:
        """The claims of a genuine, unexpired token; InvalidCredential otherwise."""
        prefix, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if prefix != PREFIX or not payload or not signature:
            raise InvalidCredential("not a meshplane proxy credential")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise InvalidCredential("the credential's signature does not match")
        try:
            fields = json.loads(_unb64(payload))
            claims = Claims(str(fields["n"]), str(fields["r"]), float(fields["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise InvalidCredential("the credential's claims are malformed") from exc
        if claims.expires_at <= self._clock():
            raise InvalidCredential("the credential has expired; ask for a new one")
        return claims

    def _sign(self, payload: str) -> str:
        return _b64(
            hmac.new(self._key, payload.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        )
