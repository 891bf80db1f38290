"""Shared fixtures: a live ``meshplane serve`` process, boto3 clients and an ``aws`` CLI runner.

Wire tests go through the real clients against a real server process on a free
loopback port, as a user's scripts would. Every wait polls a condition with a
deadline; nothing sleeps in place of synchronisation. Authentication is on, as for
users: clients sign with the administrator keys the server wrote to
``<data dir>/credentials`` at first start.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from meshplane.client import Signer
from meshplane.kit.clock import FakeClock
from meshplane.store.sqlite import SqliteStore

BIN = Path(sys.executable).parent
REGION = "us-west-2"
ACCOUNT = "123456789012"
STARTUP_DEADLINE = 60.0
PROCESS_FIXTURES = frozenset({"server", "start_server", "aws_cli_for"})
"""Fixtures that start a real process (`meshplane serve`, `aws`): their tests are integration."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a process-starting fixture, so `make test-fast` skips it."""
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test advances it."""
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SqliteStore]:
    """A fresh SQLite store in the test's tmp dir, closed afterwards."""
    opened = SqliteStore(tmp_path / "data", clock)
    yield opened
    opened.close()


_ENDPOINT = re.compile(r"http://127\.0\.0\.1:(\d+)")


def wait_for(condition: Callable[[], Any], deadline: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy or ``deadline`` seconds pass."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.02)


class MeshplaneServer:
    """One ``meshplane serve`` subprocess on a data dir, bound to a free port it reports."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def credentials_file(self) -> Path:
        """The administrator's shared-credentials file the server wrote (profile meshplane)."""
        return self.data_dir / "credentials"

    def keys(self) -> tuple[str, str]:
        """The administrator's (access key id, secret)."""
        credentials = Signer.from_file(self.credentials_file, REGION).credentials
        return credentials.access_key, credentials.secret_key

    def signed_headers(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """``headers`` plus a SigV4 signature by the administrator (botocore signs)."""
        signer = Signer.from_file(self.credentials_file, REGION)
        return signer.sign(method, url, body, dict(headers or {}))

    def cli_env(self) -> dict[str, str]:
        """Environment for a ``meshplane``/``aws`` command signing as the administrator."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.credentials_file),
            AWS_PROFILE="meshplane",
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=os.devnull,
            AWS_PAGER="",
        )
        return env

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-serve-{self.starts}.log"

    def start(self) -> MeshplaneServer:
        """Start the server (port 0: the OS picks) and wait until /healthz answers 200."""
        self.starts += 1
        log = self.log_path.open("wb")
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(
            [
                str(BIN / "meshplane"),
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--api-port",
                "0",
                "--xds-port",
                "0",
                "--host",
                "127.0.0.1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        match = wait_for(self._announced, STARTUP_DEADLINE, "the server to print its endpoint")
        self.port = int(match.group(1))
        wait_for(self._healthy, STARTUP_DEADLINE, "GET /healthz to answer 200")
        if self.credentials_file.exists():
            _KEYS[self.url] = self.keys()
        return self

    def _announced(self) -> re.Match[str] | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"meshplane serve exited early:\n{self.log_path.read_text()}")
        return _ENDPOINT.search(self.log_path.read_text())

    def _healthy(self) -> bool:
        try:
            return self.health()["status"] == "ok"
        except (urllib.error.URLError, ConnectionError):
            return False

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    def revision(self) -> int:
        """The store revision the server reports on /healthz."""
        return int(self.health()["revision"])

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


_KEYS: dict[str, tuple[str, str]] = {}
"""The administrator keys of every server started in this session, by URL."""


def make_client(url: str, *, validate: bool = True, keys: tuple[str, str] | None = None) -> Any:
    """A boto3 App Mesh client bound to ``url``, no retries, signed with ``keys``.

    Without ``keys``: the administrator's of the server started at ``url``.
    """
    key_id, secret = keys or _KEYS[url]
    return boto3.client(
        "appmesh",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(
            parameter_validation=validate,
            retries={"total_max_attempts": 1, "mode": "standard"},
        ),
    )


def send_signed(
    live: MeshplaneServer,
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any, bytes]:
    """A raw HTTP request signed by the administrator: (status, headers, raw body)."""
    sent = {"content-type": "application/json", **(headers or {})}
    request = urllib.request.Request(
        url, data=body, method=method, headers=live.signed_headers(method, url, body, sent)
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


ServerFactory = Callable[..., MeshplaneServer]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers on demand (own data dir and env); all are stopped at teardown."""
    started: list[MeshplaneServer] = []
    counter = itertools.count()

    def start(env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> Any:
        server = MeshplaneServer(data_dir or tmp_path / f"data{next(counter)}", env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshplaneServer]:
    """A server shared by one test module; tests keep apart by using their own mesh names.

    Its mesh quota is raised so every test can have a mesh of its own; quota tests
    start their own servers with App Mesh's defaults.
    """
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    live = MeshplaneServer(data_dir, {"MESHPLANE_QUOTA_MESHES": "1000"}).start()
    yield live
    assert live.stop() == 0


@pytest.fixture(scope="module")
def client(server: MeshplaneServer) -> Any:
    """boto3 client for the shared server."""
    return make_client(server.url)


@pytest.fixture(scope="module")
def raw_client(server: MeshplaneServer) -> Any:
    """boto3 client with client-side validation off: min and union breaches reach the server."""
    return make_client(server.url, validate=False)


_mesh_numbers = itertools.count(1)


@pytest.fixture
def mesh(client: Any) -> str:
    """A fresh, empty mesh on the shared server, named after a counter."""
    name = f"m{next(_mesh_numbers)}"
    client.create_mesh(meshName=name)
    return name


class Rejection:
    """Asserts a request is refused with an exact App Mesh error and changes nothing."""

    def __init__(self, server: MeshplaneServer) -> None:
        self.server = server

    def __call__(
        self, call: Callable[[], Any], code: str, status: int, *phrases: str
    ) -> ClientError:
        before = self.server.revision()
        with pytest.raises(ClientError) as caught:
            call()
        error = caught.value
        meta = error.response["ResponseMetadata"]
        assert error.response["Error"]["Code"] == code, error.response
        assert meta["HTTPStatusCode"] == status
        assert meta["HTTPHeaders"]["x-amzn-errortype"] == code
        message = error.response["Error"]["Message"]
        for phrase in phrases:
            assert phrase in message, f"{phrase!r} not in {message!r}"
        assert self.server.revision() == before, "a rejected request changed the store"
        return error


@pytest.fixture
def rejected(server: MeshplaneServer) -> Rejection:
    """``rejected(call, code, status, *phrases)`` on the shared server."""
    return Rejection(server)


class AwsCli:
    """Runs the venv's ``aws`` against a server and returns the parsed JSON output."""

    def __init__(self, live: MeshplaneServer) -> None:
        """Sign as the server's administrator, through its own credentials file (as the
        README says: ``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_PROFILE=meshplane``)."""
        self.url = live.url
        self.env = live.cli_env()

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``aws appmesh <args>`` and return the finished process."""
        return subprocess.run(
            [str(BIN / "aws"), "appmesh", *args, "--endpoint-url", self.url, "--output", "json"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )

    def __call__(self, *args: str) -> Any:
        """Run a command that must succeed; return its parsed JSON output."""
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture
def aws_cli_for() -> Callable[[MeshplaneServer], AwsCli]:
    """Build an ``aws appmesh`` runner for a server."""
    return AwsCli
