"""The workloads file: the local runtime's stand-in for Deployments and Services.

On Kubernetes an App Mesh user declared pods (labels, image, env, a container
port, replicas) and a LoadBalancer Service to reach the entry point. Locally a
``Workload`` document says the same about an app *command*::

    apiVersion: meshplane.dev/v1alpha1
    kind: Workload
    metadata:
      name: echo-backend-blue
      namespace: demos            # default: "default"
      labels: {app: echo-backend-blue, version: blue}
    spec:
      command: ["{python}", "apps/echo_backend.py"]   # {python}: this interpreter
      env: {VERSION: "1.0"}
      port: 80                    # the app's (container) port; the runtime picks
                                  # a free real port per replica and passes PORT
      replicas: 1                 # default 1
      publish: 127.0.0.1:8080     # optional, like a LoadBalancer Service

A VirtualNode's ``podSelector`` selects workloads by ``metadata.labels`` as it
selects pods. A workload with no ``command`` is a gateway: the VirtualGateway
whose ``podSelector`` selects it runs as an Envoy of its own (node id
``mesh/<mesh>/virtualGateway/<vg>``), published on ``publish:`` as the ingress
walkthroughs' LoadBalancer Service published the gateway pods; it needs no
``port``. Commands run in the workloads file's directory. Every mistake is
reported as ``<file>: document <n>: <field path>: <rule>``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

API_VERSION = "meshplane.dev/v1alpha1"
KIND = "Workload"
FILE_NAME = "workloads.yaml"
"""The file ``meshplane up -f DIR`` reads from DIR."""
MAX_REPLICAS = 20

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_ENV = ("PORT", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


class WorkloadError(ValueError):
    """A workloads file that cannot be run; the message names file, document, field and rule."""


@dataclasses.dataclass(frozen=True)
class Address:
    """A host:port to publish on."""

    host: str
    port: int

    def __str__(self) -> str:
        """``host:port`` as written in the file."""
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class Workload:
    """One declared app: what to run, how many, and the labels VirtualNodes select it by."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    command: tuple[str, ...]
    env: Mapping[str, str]
    port: int
    replicas: int = 1
    publish: Address | None = None
    workdir: Path = Path()

    @property
    def is_gateway(self) -> bool:
        """No command: the workload is a VirtualGateway's Envoy, not an app."""
        return not self.command

    def replica_name(self, index: int) -> str:
        """``<name>-<index>``: the replica's log prefix and endpoint source."""
        return f"{self.name}-{index}"

    def argv(self, python: str = sys.executable) -> list[str]:
        """The command with ``{python}`` replaced by the interpreter running meshplane."""
        return [part.replace("{python}", python) for part in self.command]


class _Problem(Exception):
    """A rule broken at a field path (internal; turned into WorkloadError with the location)."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Problem(path, f"must be a mapping, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return names.get(type(value), type(value).__name__)


def _reject_unknown(section: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    for key in section:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise _Problem(where, f"unknown field (allowed: {', '.join(allowed)})")


def _string_map(value: Any, path: str, key_rule: re.Pattern[str], what: str) -> dict[str, str]:
    if value is None:
        return {}
    found: dict[str, str] = {}
    for key, item in _mapping(value, path).items():
        if not isinstance(key, str) or not key_rule.match(key):
            raise _Problem(f"{path}.{key}", f"is not a valid {what} name")
        if not isinstance(item, str):
            raise _Problem(f"{path}.{key}", f"must be a string (quote it), got {_kind(item)}")
        found[key] = item
    return found


def _labels(value: Any) -> dict[str, str]:
    labels = _string_map(value, "metadata.labels", _LABEL_KEY, "label")
    for key, item in labels.items():
        if len(item) > 63 or not _LABEL_VALUE.match(item):
            raise _Problem(f"metadata.labels.{key}", "is not a valid label value")
    return labels


def _integer(value: Any, path: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _Problem(path, f"must be an integer {low}..{high}, got {value!r}")
    return value


def _command(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Problem("spec.command", "must be a non-empty list of strings (the argv)")
    for index, part in enumerate(value):
        if not isinstance(part, str) or not part:
            raise _Problem(f"spec.command[{index}]", f"must be a non-empty string, got {part!r}")
    return tuple(value)


def _publish(value: Any) -> Address | None:
    if value is None:
        return None
    host, sep, port = str(value).rpartition(":")
    try:
        ipaddress.ip_address(host)
        if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(port)
    except ValueError:
        raise _Problem("spec.publish", f"must be <ip>:<port>, got {value!r}") from None
    return Address(host, int(port))


def _workload(document: Any, workdir: Path) -> Workload:
    root = _mapping(document, "(document)")
    _reject_unknown(root, ("apiVersion", "kind", "metadata", "spec"), "")
    if root.get("apiVersion") != API_VERSION:
        raise _Problem("apiVersion", f"must be {API_VERSION}, got {root.get('apiVersion')!r}")
    if root.get("kind") != KIND:
        raise _Problem("kind", f"must be {KIND}, got {root.get('kind')!r}")
    metadata = _mapping(root.get("metadata"), "metadata")
    _reject_unknown(metadata, ("name", "namespace", "labels"), "metadata")
    spec = _mapping(root.get("spec"), "spec")
    _reject_unknown(spec, ("command", "env", "port", "replicas", "publish"), "spec")
    name = metadata.get("name")
    if not isinstance(name, str) or len(name) > 50 or not _NAME.match(name):
        raise _Problem(
            "metadata.name", f"must be a DNS label of at most 50 characters, got {name!r}"
        )
    namespace = metadata.get("namespace", "default")
    if not isinstance(namespace, str) or len(namespace) > 63 or not _NAME.match(namespace):
        raise _Problem("metadata.namespace", f"must be a DNS label, got {namespace!r}")
    env = _string_map(spec.get("env"), "spec.env", _ENV_NAME, "environment variable")
    for reserved in _RESERVED_ENV:
        if reserved in env:
            raise _Problem(f"spec.env.{reserved}", "is set by the runtime and cannot be given")
    gateway = spec.get("command") is None
    if "port" not in spec and not gateway:
        raise _Problem("spec.port", "is required")
    for unused in ("port", "env"):
        if gateway and unused in spec:
            raise _Problem(
                f"spec.{unused}",
                "a workload with no command runs a VirtualGateway's Envoy, which listens on "
                "the gateway's listener ports and runs no app; remove it or add a command",
            )
    return Workload(
        name=name,
        namespace=namespace,
        labels=_labels(metadata.get("labels")),
        command=() if gateway else _command(spec.get("command")),
        env=env,
        port=_integer(spec["port"], "spec.port", 1, 65535) if "port" in spec else 0,
        replicas=_integer(spec.get("replicas", 1), "spec.replicas", 0, MAX_REPLICAS),
        publish=_publish(spec.get("publish")),
        workdir=workdir,
    )


def parse(text: str, source: Path) -> list[Workload]:
    """The workloads in ``text`` (read from ``source``), in order; WorkloadError if one is wrong."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{source}: not valid YAML: {exc}") from exc
    found: list[Workload] = []
    published: dict[Address, str] = {}
    for number, document in enumerate(documents, start=1):
        if document is None:  # an empty document between two `---`
            continue
        try:
            workload = _workload(document, source.parent.absolute())
            if any((w.namespace, w.name) == (workload.namespace, workload.name) for w in found):
                raise _Problem("metadata.name", f"duplicates workload {workload.name!r}")
            if workload.publish is not None and workload.publish in published:
                taken = published[workload.publish]
                raise _Problem(
                    "spec.publish", f"{workload.publish} is already published by {taken}"
                )
        except _Problem as problem:
            raise WorkloadError(f"{source}: document {number}: {problem}") from None
        if workload.publish is not None:
            published[workload.publish] = workload.name
        found.append(workload)
    return found


def load(path: Path) -> list[Workload]:
    """Read a workloads file, or ``DIR/workloads.yaml`` when given a directory."""
    file = path / FILE_NAME if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkloadError(f"{file}: cannot read: {exc.strerror}") from exc
    return parse(text, file)


def republish(found: Sequence[Workload], flags: Sequence[str]) -> list[Workload]:
    """The workloads with ``--publish WORKLOAD=IP:PORT`` flags applied over their ``publish:``."""
    by_name = {workload.name: workload for workload in found}
    for flag in flags:
        name, sep, value = flag.partition("=")
        if not sep or name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise WorkloadError(
                f"--publish {flag}: must be WORKLOAD=IP:PORT naming a workload (known: {known})"
            )
        try:
            address = _publish(value)
        except _Problem as problem:
            raise WorkloadError(f"--publish {flag}: {problem}") from None
        by_name[name] = dataclasses.replace(by_name[name], publish=address)
    return [by_name[workload.name] for workload in found]
