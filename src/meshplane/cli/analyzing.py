"""``meshplane analyze -f PATH``: what is wrong with a mesh's manifests, before it runs.

``istioctl analyze`` for App Mesh. The files are applied to a throwaway control plane (as
``apply --dry-run`` does, so every rule the server enforces applies), then each mesh it
holds is checked. Findings, each with a stable code:

Errors, which make the command exit 1 (for CI):

* ``refused`` — the control plane refuses the files (a regex RE2 cannot compile, a bad
  field, a missing namespace…), with the server's message;
* ``not-active`` — an object would not become Active (it names a mesh, node, router or
  service the files do not define: a dangling reference);
* ``weights-zero`` — a route whose weighted targets all weigh 0 (Envoy refuses a zero
  total; App Mesh answered 503);
* ``route-shadowed`` — two routes of one router match exactly the same requests and
  neither has a priority: one of them can never be chosen on purpose;

Warnings, reported only:

* ``route-overlap`` — a route without priority matches a prefix another one without
  priority also covers: which one wins depends on the order of evaluation;
* ``untranslated`` and other apply warnings — fields meshplane accepts but does not
  translate, ACM served by the built-in CA…;
* ``unselected-node`` — with a ``workloads.yaml`` in PATH, a virtual node no workload
  selects (it gets no endpoints, so its callers get 503s).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from meshplane.model.snapshot import MeshSnapshot

ERROR, WARNING = "error", "warning"
HTTP_KINDS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")


@dataclasses.dataclass(frozen=True, order=True)
class Finding:
    """One problem: how bad, its code, the resource it is about, what to do."""

    severity: str
    code: str
    resource: str
    message: str

    def to_json(self) -> dict[str, str]:
        """The JSON form (``-o json``)."""
        return dataclasses.asdict(self)


def _kind(spec: Mapping[str, Any]) -> str | None:
    return next((k for k in HTTP_KINDS if k in spec), None)


def _match(spec: Mapping[str, Any]) -> tuple[str, bool] | None:
    """A route's (prefix or path, whether it has other constraints); None for TCP routes."""
    kind = _kind(spec)
    if kind is None or kind == "tcpRoute":
        return None
    match = spec[kind].get("match", {})
    if kind == "grpcRoute":
        return (
            f"{match.get('serviceName', '*')}/{match.get('methodName', '*')}",
            bool(match.get("metadata")),
        )
    where = match.get("prefix") or (match.get("path") or {}).get("exact") or "/"
    extra = any(match.get(k) for k in ("headers", "method", "queryParameters", "scheme", "port"))
    return str(where), extra or "regex" in (match.get("path") or {})


def routes(snapshot: MeshSnapshot) -> Iterator[Finding]:
    """Zero-weight routes, and routes without priority that shadow or overlap each other."""
    for router, by_name in sorted(snapshot.routes.items()):
        unprioritised: list[tuple[str, str, str, bool]] = []
        for name, route in sorted(by_name.items()):
            spec = route.resource.spec
            kind = _kind(spec)
            where = f"route/{router}/{name}"
            targets = spec[kind].get("action", {}).get("weightedTargets", []) if kind else []
            if targets and sum(int(t.get("weight", 0)) for t in targets) == 0:
                yield Finding(
                    ERROR,
                    "weights-zero",
                    where,
                    "every weighted target has weight 0: Envoy refuses a zero total, callers "
                    "get 503",
                )
            matched = _match(spec)
            if kind is not None and matched is not None and "priority" not in spec:
                unprioritised.append((name, kind, *matched))
        for index, (a, kind_a, where_a, extra_a) in enumerate(unprioritised):
            for b, kind_b, where_b, extra_b in unprioritised[index + 1 :]:
                if kind_a != kind_b or extra_a or extra_b:
                    continue
                if where_a == where_b:
                    yield Finding(
                        ERROR,
                        "route-shadowed",
                        f"route/{router}/{b}",
                        f"matches exactly what route {a} matches ({where_a}) and neither has a "
                        "priority: give them priorities or different matches",
                    )
                elif kind_a != "grpcRoute" and (
                    where_b.startswith(where_a) or where_a.startswith(where_b)
                ):
                    wide, narrow = (a, b) if len(where_a) < len(where_b) else (b, a)
                    yield Finding(
                        WARNING,
                        "route-overlap",
                        f"route/{router}/{narrow}",
                        f"route {wide} without priority also matches its requests: set "
                        "priorities so the order is yours",
                    )


def unselected(path: Path) -> Iterator[Finding]:
    """Virtual nodes in ``path``'s manifests that no workload of its workloads.yaml selects."""
    from meshplane.runtime import selecting, virtualnodes, workloads  # noqa: PLC0415

    if not path.is_dir() or not (path / workloads.FILE_NAME).is_file():
        return
    nodes = [v for v in virtualnodes.read_directory(path) if v.kind == selecting.VIRTUAL_NODE]
    chosen = {
        (node.namespace, node.name)
        for workload in workloads.load(path)
        for node in selecting.selecting(workload, nodes)
    }
    for node in nodes:
        if (node.namespace, node.name) not in chosen:
            yield Finding(
                WARNING,
                "unselected-node",
                f"virtualnode/{node.name}",
                f"no workload in {workloads.FILE_NAME} selects it (namespace {node.namespace}): "
                "it gets no endpoints and its callers get 503",
            )


def from_apply(answer: Mapping[str, Any]) -> Iterator[Finding]:
    """The apply's warnings: objects that would not be Active are errors, the rest warnings."""
    for result in answer["results"]:
        for warning in result["warnings"]:
            resource, _, message = str(warning).partition(": ")
            if message.startswith("spec.") or " is not Active" not in resource + message:
                code = "untranslated" if "not translated" in message else "apply-warning"
                yield Finding(WARNING, code, resource, message or str(warning))
            else:
                resource = resource.removesuffix(" is not Active")
                yield Finding(ERROR, "not-active", resource, message.strip())
