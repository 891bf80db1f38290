"""Plain keys that botocore's credential chain would pick, found without importing botocore.

``botocore.session`` is the slowest import of a CLI command, and the usual set-ups need
none of it: keys in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, or a profile of a
shared-credentials file holding nothing but keys (what ``meshplane serve`` writes, and what
its banner tells users to export). :func:`find` answers those two cases the way botocore's
chain does and returns None for anything else — an expiring or partial environment, a
profile the config file also names (roles, SSO, processes live there), a profile with any
key besides plain keys, a file that does not parse — so that the caller asks botocore.
``tests/client/test_statickeys.py`` compares the answers with botocore's.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping

from meshplane.client.sigv4 import Keys

PLAIN = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_security_token",
        "aws_account_id",
        "region",
        "output",
    }
)
"""Keys a profile may hold and still mean "these keys" to every provider of the chain."""
_WEB_IDENTITY = ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME")


def _sections(path: str) -> configparser.RawConfigParser | None:
    """The parsed file (botocore's parser and path expansion); None if unreadable."""
    parser = configparser.RawConfigParser()
    try:
        parser.read([os.path.expanduser(os.path.expandvars(path))])
    except (configparser.Error, UnicodeDecodeError):
        return None
    return parser


def _from_environment(env: Mapping[str, str]) -> Keys | None:
    key, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not secret or env.get("AWS_CREDENTIAL_EXPIRATION"):
        return None  # botocore raises on a missing secret, refreshes an expiring key
    token = env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None
    return Keys(key, secret, token)


def find(env: Mapping[str, str]) -> Keys | None:
    """The keys botocore's default chain would return for ``env``, or None to ask botocore."""
    if env.get("AWS_ACCESS_KEY_ID"):  # the chain's first provider
        return _from_environment(env)
    if any(env.get(name) for name in _WEB_IDENTITY):
        return None
    present = [name for name in ("AWS_DEFAULT_PROFILE", "AWS_PROFILE") if name in env]
    profile = (env[present[0]] if present else "") or "default"
    config_path = env.get("AWS_CONFIG_FILE", "~/.aws/config")
    config = _sections(config_path)
    if config is None or config.has_section(f"profile {profile}") or config.has_section(profile):
        return None
    credentials = _sections(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))
    if credentials is None or not credentials.has_section(profile):
        return None
    section = dict(credentials.items(profile))
    if not set(section) <= PLAIN or not section.get("aws_access_key_id"):
        return None
    if not section.get("aws_secret_access_key"):
        return None
    token = section.get("aws_security_token") or section.get("aws_session_token") or None
    return Keys(section["aws_access_key_id"], section["aws_secret_access_key"], token)
