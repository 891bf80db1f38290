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

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from meshplane.model.routefindings import ERROR, WARNING, Finding, routes

__all__ = ["ERROR", "WARNING", "Finding", "from_apply", "routes", "unselected"]


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
