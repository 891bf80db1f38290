"""meshplane.client signs every request with SigV4 for `appmesh` when it has credentials."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from meshplane import client

KEY, SECRET = "AKIDMESHPLANETEST", "secret/of/the/test"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers {} to everything and keeps each request's method, path, headers and body."""

    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        self.seen.append((self.command, self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok", "revision": 7, "endpoints": []}')

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, dict[str, str], bytes]]]]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _expected_signature(url: str, method: str, headers: dict[str, str], body: bytes) -> str:
    """Recompute the signature as a verifying server would, from what was received."""
    listed = headers["Authorization"].split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    signed = {k: v for k, v in headers.items() if k.lower() in listed}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(KEY, SECRET), "appmesh", "eu-west-1")
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


def test_credentials_from_the_shared_file_sign_every_request(
    recorder: tuple[str, list[tuple[str, str, dict[str, str], bytes]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A profile in AWS_SHARED_CREDENTIALS_FILE signs a PUT with a verifiable SigV4 signature."""
    url, seen = recorder
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[mesh]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n", encoding="utf-8"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "mesh")

    plane = client.connect(url, sign=True, region="eu-west-1", trust_env=False)
    plane.register_endpoints("demos", "vn-a", "a-0", [], credential="tok")
    assert plane.health() == client.Health("ok", 7)

    (method, path, headers, body), (get, _, get_headers, _) = seen
    assert (method, path, get) == (
        "PUT",
        "/meshplane/v1/meshes/demos/virtualNodes/vn-a/endpoints",
        "GET",
    )
    assert body == b'{"source": "a-0", "endpoints": [], "credential": "tok"}'
    date = headers["X-Amz-Date"]
    scope = f"{KEY}/{date[:8]}/eu-west-1/appmesh/aws4_request"
    signature = _expected_signature(url + path, method, headers, body)
    assert headers["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={scope}, "
        "SignedHeaders=content-type;host;x-amz-date, "
        f"Signature={signature}"
    )
    assert get_headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")


def test_without_credentials_or_signing_requests_go_unsigned(
    recorder: tuple[str, list[tuple[str, str, dict[str, str], bytes]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """sign=False sends no Authorization; sign=True with no credentials anywhere neither."""
    url, seen = recorder
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client.connect(url, trust_env=False).health()
    client.connect(url, sign=True, trust_env=False).health()
    assert ["Authorization" in headers for _, _, headers, _ in seen] == [False, False]


def _profile_file(path: Path, profile: str, key: str) -> Path:
    path.write_text(
        f"[{profile}]\naws_access_key_id = {key}\naws_secret_access_key = {SECRET}\n",
        encoding="utf-8",
    )
    return path


def test_the_data_dirs_file_signs_when_no_credentials_are_named(
    recorder: tuple[str, list[tuple[str, str, dict[str, str], bytes]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no AWS_* variable set, the fallback file's `meshplane` profile signs, not ~/.aws."""
    url, seen = recorder
    for name in client.transport.EXPLICIT_CHAIN:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # a default profile in ~/.aws is not used
    (tmp_path / ".aws").mkdir()
    _profile_file(tmp_path / ".aws" / "credentials", "default", "AKIDPERSONALAWSKEY")
    fallback = _profile_file(tmp_path / "data-credentials", "meshplane", KEY)
    plane = client.connect(url, sign=True, fallback_credentials=fallback, trust_env=False)
    plane.health()
    assert seen[0][2]["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")


def test_named_credentials_win_over_the_data_dirs_file(
    recorder: tuple[str, list[tuple[str, str, dict[str, str], bytes]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS_SHARED_CREDENTIALS_FILE + AWS_PROFILE (the standard chain) beat the fallback file."""
    url, seen = recorder
    for name in client.transport.EXPLICIT_CHAIN:
        monkeypatch.delenv(name, raising=False)
    chosen = _profile_file(tmp_path / "chosen", "ops", "AKIDCHOSENBYTHEUSER")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(chosen))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "ops")
    fallback = _profile_file(tmp_path / "data-credentials", "meshplane", KEY)
    plane = client.connect(url, sign=True, fallback_credentials=fallback, trust_env=False)
    plane.health()
    assert seen[0][2]["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDCHOSENBYTHEUSER/"
    )
