"""The session's Kubernetes control plane, and a fresh namespace per test.

Every test here is marked ``k8s``: ``make test`` deselects them, ``make test-k8s`` runs them after
building the binaries. Without the binaries they skip with the reason, except under
``make test-k8s`` (``MESHPLANE_K8S_REQUIRED=1``), where that is a failure: CI must not pass by
skipping.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import cluster as k8s

_HERE = Path(__file__).parent
_names = itertools.count(1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/k8s ``k8s`` before ``-m`` selection runs."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.k8s)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[k8s.Cluster]:
    """etcd + kube-apiserver + kube-controller-manager for the whole session, stopped at its end."""
    tools = k8s.tools_dir()
    if missing := k8s.missing_tools(tools):
        reason = f"Kubernetes test binaries {missing} not in {tools}: run `make k8s-tools`"
        if os.environ.get("MESHPLANE_K8S_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with k8s.running(tools, tmp_path_factory.mktemp("k8s")) as running:
        yield running


@pytest.fixture
def namespace(cluster: k8s.Cluster) -> Iterator[str]:
    """A namespace of the test's own, deleted (without waiting) afterwards."""
    name = f"t{next(_names)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")
