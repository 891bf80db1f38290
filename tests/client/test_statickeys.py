"""meshplane.client.statickeys finds the plain keys botocore's chain finds, and defers otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import botocore.session
import pytest

from meshplane.client import sigv4, statickeys

SECRET = "secret/of/the/test"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and no AWS_* variable, so only what a test writes is found."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / ".aws").mkdir()
    return tmp_path


def _botocore() -> sigv4.Keys | None:
    found = botocore.session.Session().get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return sigv4.Keys(frozen.access_key, frozen.secret_key, frozen.token)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _set(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_environment_keys_are_botocores_answer(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_ACCESS_KEY_ID/SECRET (and a session token) win, even with AWS_PROFILE set."""
    _write(
        home / ".aws" / "credentials",
        f"[ops]\naws_access_key_id = AKIDFILE\naws_secret_access_key = {SECRET}\n",
    )
    _set(monkeypatch, AWS_ACCESS_KEY_ID="AKIDENV", AWS_SECRET_ACCESS_KEY=SECRET, AWS_PROFILE="ops")
    assert statickeys.find(os.environ) == sigv4.Keys("AKIDENV", SECRET) == _botocore()
    _set(monkeypatch, AWS_SESSION_TOKEN="tok")
    assert statickeys.find(os.environ) == sigv4.Keys("AKIDENV", SECRET, "tok") == _botocore()


def test_a_profile_of_plain_keys_is_botocores_answer(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_PROFILE + AWS_SHARED_CREDENTIALS_FILE (what `serve` prints) give botocore's keys."""
    shared = _write(
        home / "shared",
        f"[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = {SECRET}\n"
        f"[meshplane]\naws_access_key_id = AKIDMESH\naws_secret_access_key = {SECRET}\n"
        "region = us-west-2\n",
    )
    _set(monkeypatch, AWS_SHARED_CREDENTIALS_FILE=str(shared), AWS_PROFILE="meshplane")
    assert statickeys.find(os.environ) == sigv4.Keys("AKIDMESH", SECRET) == _botocore()
    monkeypatch.delenv("AWS_PROFILE")
    assert statickeys.find(os.environ) == sigv4.Keys("AKIDDEFAULT", SECRET) == _botocore()


def test_aws_default_profile_comes_before_aws_profile(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both set: AWS_DEFAULT_PROFILE names the profile, as in botocore; a token is kept."""
    _write(
        home / ".aws" / "credentials",
        f"[a]\naws_access_key_id = AKIDA\naws_secret_access_key = {SECRET}\n"
        "aws_session_token = tok-a\n"
        f"[b]\naws_access_key_id = AKIDB\naws_secret_access_key = {SECRET}\n",
    )
    _set(monkeypatch, AWS_DEFAULT_PROFILE="a", AWS_PROFILE="b")
    assert statickeys.find(os.environ) == sigv4.Keys("AKIDA", SECRET, "tok-a") == _botocore()


@pytest.mark.parametrize(
    ("variables", "credentials", "config"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKIDENV"}, "", ""),  # no secret: botocore raises
        (
            {
                "AWS_ACCESS_KEY_ID": "AKIDENV",
                "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_CREDENTIAL_EXPIRATION": "2030-01-01T00:00:00Z",
            },
            "",
            "",
        ),
        (
            {"AWS_PROFILE": "ops"},
            "[ops]\naws_access_key_id = A\naws_secret_access_key = S\n",
            "[profile ops]\nregion = eu-west-1\n",
        ),
        (
            {"AWS_PROFILE": "ops"},
            "[ops]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n",
            "",
        ),
        (
            {"AWS_PROFILE": "ops"},
            "[ops]\naws_access_key_id = A\ncredential_process = /bin/true\n",
            "",
        ),
        ({"AWS_PROFILE": "gone"}, "[ops]\naws_access_key_id = A\naws_secret_access_key = S\n", ""),
        (
            {"AWS_WEB_IDENTITY_TOKEN_FILE": "/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"},
            "",
            "",
        ),
        ({}, "[default\nbroken", ""),
        (
            {},
            "[default]\naws_access_key_id = A\naws_secret_access_key = S\n",
            "[default]\nregion = eu-west-1\n",
        ),
    ],
)
def test_anything_but_plain_keys_is_left_to_botocore(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    credentials: str,
    config: str,
) -> None:
    """Partial or expiring keys, roles, processes, web identity, config-file profiles: None."""
    _write(home / ".aws" / "credentials", credentials)
    _write(home / ".aws" / "config", config)
    _set(monkeypatch, **variables)
    assert statickeys.find(os.environ) is None
