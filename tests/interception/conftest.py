"""Fixtures of the interception tests: network namespaces, and a socket dir uid 1337 can reach."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .namespaces import Namespaces, skip_without_net_admin


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    """A namespace factory for one test; every namespace it made is deleted afterwards."""
    skip_without_net_admin()
    made = Namespaces()
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A directory uid 1337 (Envoy) can reach: pytest's tmp dirs are private to root."""
    path = Path(tempfile.mkdtemp(prefix="meshplane-xds-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
