"""Service-account tokens with a life shorter than TokenRequest allows (test support).

The API server refuses a TokenRequest for less than 600 s, so a test cannot wait for a
real token to expire. The test cluster's signing key is the fixture's own file
(``--service-account-signing-key-file``), so the test takes a token the API server
minted, keeps its header and every claim (issuer, audience, the ``kubernetes.io`` pod and
service-account binding with their uids, ``jti``) and re-signs it with that key after
moving ``exp`` (and ``iat``/``nbf`` before it). The API server then validates it exactly
as one of its own — signature, binding, pod — and decides when it has expired.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import cluster as k8s

LEEWAY = 60
"""Seconds past ``exp`` the API server still accepts a token (go-jose's default leeway)."""


def _decode(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _encode(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signing_key(cluster: k8s.Cluster) -> Path:
    """The key file the test cluster's API server signs (and verifies) tokens with."""
    return cluster.kubeconfig.parent / "pki" / "service-account.key"


def claims(token: str) -> dict[str, Any]:
    """A JWT's claims (unverified: the test reads what the API server wrote)."""
    found: dict[str, Any] = _decode(token.split(".")[1])
    return found


def expiring_at(token: str, key_file: Path, exp: int) -> str:
    """``token`` re-signed RS256 with ``key_file``, its ``exp`` moved to ``exp``."""
    header, payload, _ = token.split(".")
    body = _decode(payload)
    body["exp"] = exp
    body["iat"] = body["nbf"] = min(int(body["iat"]), exp - 1)
    signed = f"{header}.{_encode(body)}".encode()
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert _decode(header)["alg"] == "RS256"
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return f"{signed.decode()}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
