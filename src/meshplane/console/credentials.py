"""Who may log in to the console: an access key id and its secret.

The console asks one question, :class:`CredentialLookup` — "what is the secret of this
access key id?" — so the principals of the API's SigV4 authentication can answer it once
they exist. Until then :func:`load_credentials` answers from ``<data-dir>/credentials``
(the AWS shared-credentials format: one ``[section]`` per key with ``aws_access_key_id``
and ``aws_secret_access_key``) if that file exists, else from one console-only admin key
generated at start, which ``meshplane serve`` prints in its banner.
"""

from __future__ import annotations

import configparser
import dataclasses
import secrets
from pathlib import Path
from typing import Protocol

CREDENTIALS_FILE = "credentials"


class CredentialLookup(Protocol):
    """The secret key of an access key id, or ``None`` when there is no such key."""

    def __call__(self, access_key_id: str) -> str | None:
        """Look ``access_key_id`` up (called on every console request, so revocation works)."""


@dataclasses.dataclass(frozen=True)
class GeneratedKey:
    """A console-only admin key made at start, valid until the process ends."""

    access_key_id: str
    secret_access_key: str

    def __call__(self, access_key_id: str) -> str | None:
        """The secret if ``access_key_id`` is this key's."""
        if secrets.compare_digest(access_key_id, self.access_key_id):
            return self.secret_access_key
        return None


@dataclasses.dataclass(frozen=True)
class FileCredentials:
    """Keys read from a shared-credentials file, re-read on each lookup (edits apply at once)."""

    path: Path

    def __call__(self, access_key_id: str) -> str | None:
        """The secret of ``access_key_id`` in the file, if any section names it."""
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, configparser.Error):
            return None  # an unreadable file lets nobody in rather than crash a request
        for section in parser.sections():
            keys = parser[section]
            if keys.get("aws_access_key_id") == access_key_id:
                return keys.get("aws_secret_access_key")
        return None


def generate() -> GeneratedKey:
    """A fresh random admin key (AWS-like shape: ``MPCON`` + 15 characters, 40-char secret)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key_id = "MPCON" + "".join(secrets.choice(alphabet) for _ in range(15))
    return GeneratedKey(key_id, secrets.token_urlsafe(30))


def load_credentials(data_dir: Path) -> tuple[CredentialLookup, GeneratedKey | None]:
    """The lookup for a control plane's data dir, and the generated key if one was made."""
    path = data_dir / CREDENTIALS_FILE
    if path.is_file():
        return FileCredentials(path), None
    key = generate()
    return key, key
