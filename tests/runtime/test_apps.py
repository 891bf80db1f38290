"""The walkthrough's apps, run as real processes on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from meshplane.runtime.supervising import NO_PROXY

from .conftest import APPS, free_port, wait_until

pytestmark = pytest.mark.integration

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(port: int) -> tuple[int, Any]:
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _accepts(port: int) -> bool:
    try:
        _get(port)
    except OSError:
        return False
    return True


@contextmanager
def _app(script: str, **env: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    process = subprocess.Popen(
        [sys.executable, str(APPS / script)],
        env={**clean, "PORT": str(port), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: process.poll() is not None or _accepts(port), what=f"{script} up")
        yield port, process
    finally:
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_backend_answers_its_version() -> None:
    """echo-backend answers {"version": VERSION} with 200."""
    with _app("echo_backend.py", VERSION="2.0") as (port, _):
        assert _get(port) == (200, {"version": "2.0"})


def test_backend_fails_at_the_configured_rate() -> None:
    """FAILURE_RATE=100 answers every request with a 500 carrying the version."""
    with _app("echo_backend.py", VERSION="1.0", FAILURE_RATE="100") as (port, _):
        assert [_get(port) for _ in range(3)] == [
            (500, {"version": "1.0", "error": "injected failure"})
        ] * 3


def test_backend_refuses_a_bad_failure_rate() -> None:
    """A FAILURE_RATE outside 0..100 stops the app with a message."""
    done = subprocess.run(
        [sys.executable, str(APPS / "echo_backend.py")],
        env={**os.environ, "PORT": str(free_port()), "FAILURE_RATE": "150"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        1,
        "echo-backend: FAILURE_RATE must be a number 0..100, got '150'\n",
    )


def test_frontend_without_backend_answers_alone() -> None:
    """No BACKEND: backend is null; hostname from HOSTNAME; version 2.0 by default."""
    with _app("echo_frontend.py", HOSTNAME="echo-frontend-blue-0") as (port, _):
        status, body = _get(port)
    assert status == 200
    assert sorted(body) == ["backend", "hostname", "time", "version"]
    assert (body["backend"], body["hostname"], body["version"]) == (
        None,
        "echo-frontend-blue-0",
        "2.0",
    )
    assert body["time"].endswith("+00:00")


def test_frontend_calls_the_backend_through_http_proxy() -> None:
    """The frontend sends http://vs-echo-backend:80 to HTTP_PROXY, even with the runtime's NO_PROXY.

    The "proxy" here is echo-backend itself, which answers any absolute-form
    request; the name vs-echo-backend resolves nowhere, so only a proxied call
    can succeed.
    """
    with _app("echo_backend.py", VERSION="1.0") as (backend, _):
        proxy = f"http://127.0.0.1:{backend}"
        with _app(
            "echo_frontend.py",
            BACKEND="http://vs-echo-backend:80",
            HTTP_PROXY=proxy,
            http_proxy=proxy,
            NO_PROXY=NO_PROXY,
            no_proxy=NO_PROXY,
        ) as (port, process):
            status, body = _get(port)
            assert process.stdout is not None
            banner = process.stdout.readline()
    assert (status, body["backend"], body["version"]) == (200, "1.0", "2.0")
    assert banner == (
        f"echo-frontend 2.0 listening on 127.0.0.1:{port}, "
        f"backend http://vs-echo-backend:80 via proxy {proxy}\n"
    )


def test_frontend_reports_an_unreachable_backend_as_502() -> None:
    """A backend call that fails answers 502 with the reason, never a crash."""
    dead = free_port()
    proxy = f"http://127.0.0.1:{dead}"
    with _app("echo_frontend.py", BACKEND="http://vs-echo-backend:80", HTTP_PROXY=proxy) as (
        port,
        _,
    ):
        status, body = _get(port)
    assert status == 502
    assert body["backend"] is None
    assert body["error"].startswith("backend unreachable: ")
