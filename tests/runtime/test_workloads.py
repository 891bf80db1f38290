"""The workloads file: what it accepts, and the exact message for each mistake."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from meshplane.runtime import workloads
from meshplane.runtime.workloads import Address, WorkloadError

SOURCE = Path("/srv/demo/workloads.yaml")

VALID = """\
apiVersion: meshplane.dev/v1alpha1
kind: Workload
metadata:
  name: echo-backend-blue
  namespace: demos
  labels: {app: echo-backend-blue, version: blue}
spec:
  command: ["{python}", "apps/echo_backend.py"]
  env: {VERSION: "1.0"}
  port: 80
---
apiVersion: meshplane.dev/v1alpha1
kind: Workload
metadata: {name: front}
spec:
  command: [./front, --verbose]
  port: 8080
  replicas: 3
  publish: 127.0.0.1:8080
"""


def _one(spec: str = "", metadata: str = "{name: w}", head: str = "") -> str:
    head = head or "apiVersion: meshplane.dev/v1alpha1\nkind: Workload\n"
    spec = spec or "{command: [app], port: 80}"
    return f"{head}metadata: {metadata}\nspec: {spec}\n"


def _error(text: str) -> str:
    with pytest.raises(WorkloadError) as caught:
        workloads.parse(text, SOURCE)
    return str(caught.value)


def test_a_valid_file_parses_with_defaults() -> None:
    """Every field is read; namespace defaults to default, replicas to 1, workdir to the file's."""
    blue, front = workloads.parse(VALID, SOURCE)
    assert blue == workloads.Workload(
        name="echo-backend-blue",
        namespace="demos",
        labels={"app": "echo-backend-blue", "version": "blue"},
        command=("{python}", "apps/echo_backend.py"),
        env={"VERSION": "1.0"},
        port=80,
        replicas=1,
        publish=None,
        workdir=Path("/srv/demo"),
    )
    assert (front.namespace, front.labels, front.env, front.replicas) == ("default", {}, {}, 3)
    assert front.publish == Address("127.0.0.1", 8080)
    assert str(front.publish) == "127.0.0.1:8080"


def test_python_placeholder_becomes_the_interpreter() -> None:
    """``{python}`` in the command is replaced by the running interpreter."""
    blue, _ = workloads.parse(VALID, SOURCE)
    assert blue.argv() == [sys.executable, "apps/echo_backend.py"]
    assert blue.argv("/usr/bin/python3") == ["/usr/bin/python3", "apps/echo_backend.py"]
    assert blue.replica_name(2) == "echo-backend-blue-2"


def test_empty_documents_are_skipped_but_counted() -> None:
    """An empty document between separators does not shift the reported document number."""
    text = _one() + "---\n---\n" + _one(metadata="{name: w2}", spec="{port: 80}")
    assert _error(text) == (
        "/srv/demo/workloads.yaml: document 3: spec.port: a workload with no command runs a "
        "VirtualGateway's Envoy, which listens on the gateway's listener ports and runs no app; "
        "remove it or add a command"
    )


def test_a_workload_without_command_is_a_gateway_and_publish_flags_move_it() -> None:
    """No command, no port: a gateway workload; `--publish NAME=ADDR` replaces its address."""
    (gateway,) = workloads.parse(
        _one(metadata="{name: gw, labels: {app: gw}}", spec="{publish: 127.0.0.1:8088}"),
        Path("/srv/demo/workloads.yaml"),
    )
    assert (gateway.is_gateway, gateway.command, gateway.port) == (True, (), 0)
    (moved,) = workloads.republish([gateway], ["gw=127.0.0.1:9999"])
    assert moved.publish == workloads.Address("127.0.0.1", 9999)
    with pytest.raises(WorkloadError) as caught:
        workloads.republish([gateway], ["front=127.0.0.1:1"])
    assert str(caught.value) == (
        "--publish front=127.0.0.1:1: must be WORKLOAD=IP:PORT naming a workload (known: gw)"
    )
    with pytest.raises(WorkloadError) as caught:
        workloads.republish([gateway], ["gw=localhost:1"])
    assert str(caught.value) == (
        "--publish gw=localhost:1: spec.publish: must be <ip>:<port>, got 'localhost:1'"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _one(head="apiVersion: v1\nkind: Workload\n"),
            "document 1: apiVersion: must be meshplane.dev/v1alpha1, got 'v1'",
        ),
        (
            _one(head="apiVersion: meshplane.dev/v1alpha1\nkind: Deployment\n"),
            "document 1: kind: must be Workload, got 'Deployment'",
        ),
        ("- a\n- b\n", "document 1: (document): must be a mapping, got a list"),
        (
            _one() + "status: {}\n",
            "document 1: status: unknown field (allowed: apiVersion, kind, metadata, spec)",
        ),
        (
            _one(metadata="{name: Echo}"),
            "document 1: metadata.name: must be a DNS label of at most 50 characters, got 'Echo'",
        ),
        (
            _one(metadata="{labels: {}}"),
            "document 1: metadata.name: must be a DNS label of at most 50 characters, got None",
        ),
        (
            _one(metadata="{name: w, namespace: Demos}"),
            "document 1: metadata.namespace: must be a DNS label, got 'Demos'",
        ),
        (
            _one(metadata="{name: w, labels: {app: 1}}"),
            "document 1: metadata.labels.app: must be a string (quote it), got an integer",
        ),
        (
            _one(metadata="{name: w, labels: {app: 'a b'}}"),
            "document 1: metadata.labels.app: is not a valid label value",
        ),
        (
            _one(metadata="{name: w, labels: [app]}"),
            "document 1: metadata.labels: must be a mapping, got a list",
        ),
        (
            _one(metadata="{name: w, owner: me}"),
            "document 1: metadata.owner: unknown field (allowed: name, namespace, labels)",
        ),
        (_one(spec="{command: [app]}"), "document 1: spec.port: is required"),
        (
            _one(spec="{command: [app], port: 0}"),
            "document 1: spec.port: must be an integer 1..65535, got 0",
        ),
        (
            _one(spec="{command: [app], port: '80'}"),
            "document 1: spec.port: must be an integer 1..65535, got '80'",
        ),
        (
            _one(spec="{command: app, port: 80}"),
            "document 1: spec.command: must be a non-empty list of strings (the argv)",
        ),
        (
            _one(spec="{command: [app, 3], port: 80}"),
            "document 1: spec.command[1]: must be a non-empty string, got 3",
        ),
        (
            _one(spec="{command: [app], port: 80, replicas: -1}"),
            "document 1: spec.replicas: must be an integer 0..20, got -1",
        ),
        (
            _one(spec="{command: [app], port: 80, replicas: true}"),
            "document 1: spec.replicas: must be an integer 0..20, got True",
        ),
        (
            _one(spec="{command: [app], port: 80, env: {VERSION: 1.0}}"),
            "document 1: spec.env.VERSION: must be a string (quote it), got a number",
        ),
        (
            _one(spec="{command: [app], port: 80, env: {1X: a}}"),
            "document 1: spec.env.1X: is not a valid environment variable name",
        ),
        (
            _one(spec="{command: [app], port: 80, env: {PORT: '1'}}"),
            "document 1: spec.env.PORT: is set by the runtime and cannot be given",
        ),
        (
            _one(spec="{command: [app], port: 80, env: {HTTP_PROXY: x}}"),
            "document 1: spec.env.HTTP_PROXY: is set by the runtime and cannot be given",
        ),
        (
            _one(spec="{command: [app], port: 80, publish: 'localhost:80'}"),
            "document 1: spec.publish: must be <ip>:<port>, got 'localhost:80'",
        ),
        (
            _one(spec="{command: [app], port: 80, publish: '127.0.0.1:99999'}"),
            "document 1: spec.publish: must be <ip>:<port>, got '127.0.0.1:99999'",
        ),
        (
            _one(spec="{command: [app], port: 80, image: nginx}"),
            "document 1: spec.image: unknown field "
            "(allowed: command, env, port, replicas, publish)",
        ),
    ],
)
def test_each_mistake_names_document_field_and_rule(text: str, message: str) -> None:
    """A broken rule is reported as ``<file>: document <n>: <field path>: <rule>``."""
    assert _error(text) == f"/srv/demo/workloads.yaml: {message}"


def test_duplicate_names_in_one_namespace_are_refused() -> None:
    """Two workloads may share a name only across namespaces."""
    ok = _one() + "---\n" + _one(metadata="{name: w, namespace: other}")
    assert [w.namespace for w in workloads.parse(ok, SOURCE)] == ["default", "other"]
    assert _error(_one() + "---\n" + _one()) == (
        "/srv/demo/workloads.yaml: document 2: metadata.name: duplicates workload 'w'"
    )


def test_one_address_is_published_once() -> None:
    """Two workloads cannot publish the same host:port."""
    spec = "{command: [app], port: 80, publish: '127.0.0.1:8080'}"
    text = _one(spec=spec) + "---\n" + _one(metadata="{name: v}", spec=spec)
    assert _error(text) == (
        "/srv/demo/workloads.yaml: document 2: spec.publish: "
        "127.0.0.1:8080 is already published by w"
    )


def test_invalid_yaml_and_missing_files_say_so(tmp_path: Path) -> None:
    """YAML syntax errors and unreadable files name the file."""
    assert _error("a: [b\n").startswith("/srv/demo/workloads.yaml: not valid YAML: ")
    with pytest.raises(WorkloadError) as caught:
        workloads.load(tmp_path)
    assert str(caught.value) == f"{tmp_path}/workloads.yaml: cannot read: No such file or directory"


def test_the_echo_example_declares_the_walkthrough() -> None:
    """examples/echo/workloads.yaml: blue 1.0, green 2.0, and the published frontend."""
    example = Path(__file__).resolve().parents[2] / "examples" / "echo"
    found = {w.name: w for w in workloads.load(example)}
    assert sorted(found) == ["echo-backend-blue", "echo-backend-green", "echo-frontend-blue"]
    assert {w.namespace for w in found.values()} == {"demos"}
    assert found["echo-backend-blue"].env == {"VERSION": "1.0"}
    assert found["echo-backend-green"].env == {"VERSION": "2.0"}
    assert found["echo-backend-green"].labels == {"app": "echo-backend-green", "version": "green"}
    front = found["echo-frontend-blue"]
    assert front.env == {"VERSION": "2.0", "BACKEND": "http://vs-echo-backend:80"}
    assert front.labels == {"app": "echo-frontend-blue", "version": "blue"}
    assert front.publish == Address("127.0.0.1", 8080)
    assert front.workdir == example
