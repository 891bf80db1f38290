"""Reading manifest files: multi-document YAML to checked :class:`ManifestObject` values.

Every problem names where it is: the source (file name or ``-``), the
document's 1-based index within it, the field path and the rule, e.g.
``vr.yaml document 1: spec.routes[0].priority: value 2000 is above the maximum
1000``. Parsing collects every problem of every document before it raises, so
one ``apply`` reports all faults and changes nothing. Hostile YAML (aliases, huge
texts, too many documents) is refused by :mod:`meshplane.manifests.yamlsafety`
before anything is expanded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from meshplane.kit import jsonvalues
from meshplane.manifests import crds, foreign, schema, yamlsafety
from meshplane.manifests.objects import ManifestError, ManifestObject

DEFAULT_NAMESPACE = "default"

RUNTIME_API_VERSION = "meshplane.dev/v1alpha1"
"""Documents of this API version (``Workload``) describe processes for ``meshplane up``, not
control-plane objects: they live beside the manifests in one directory, and ``apply`` passes
over them so ``meshplane apply -f examples/echo`` works as ``kubectl apply -f`` did."""


@dataclasses.dataclass(frozen=True)
class Document:
    """One parsed document and where it came from."""

    source: str
    index: int
    """1-based position among the source's non-empty documents."""
    obj: ManifestObject

    @property
    def where(self) -> str:
        """``file.yaml document 2``: the prefix of every message about this document."""
        return f"{self.source} document {self.index}"


@dataclasses.dataclass(frozen=True)
class Parsed:
    """The documents of one source meshplane applies, and those it passes over."""

    documents: list[Document]
    skipped: list[foreign.Skipped]


def parse(text: str, source: str, namespace: str | None = None) -> list[Document]:
    """The documents of ``text`` meshplane applies (see :func:`read`); others are dropped."""
    return read(text, source, namespace).documents


def read(text: str, source: str, namespace: str | None = None) -> Parsed:
    """Parse and structurally check every document of ``text``; raise all problems at once.

    ``namespace`` is the ``-n`` flag: it fills in namespaced objects that name
    none and must agree with those that do, as in kubectl. Documents of kinds
    Kubernetes runs (Deployment, RBAC, …) are returned as skipped, not refused
    (:mod:`meshplane.manifests.foreign`).
    """
    problems: list[str] = []
    documents: list[Document] = []
    skipped: list[foreign.Skipped] = []
    loaded, malformed = _load(text, source)
    for index, body in loaded:
        if isinstance(body, dict) and body.get("apiVersion") == RUNTIME_API_VERSION:
            continue
        if _is_foreign(body):
            skipped.append(foreign.skip(body, source, index))
            continue
        where = f"{source} document {index}"
        found = _check(body, namespace)
        if found:
            problems.extend(
                f"{where}: {path}: {rule}" if path else f"{where}: {rule}" for path, rule in found
            )
            continue
        documents.append(Document(source, index, _to_object(body, namespace)))
    if malformed:
        problems.append(malformed)
    if problems:
        raise ManifestError(problems)
    return Parsed(documents, skipped)


def _is_foreign(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if not (isinstance(kind, str) and kind and isinstance(api_version, str) and api_version):
        return False  # refused by _check: a document must say what it is
    return foreign.is_foreign(kind, api_version)


def _load(text: str, source: str) -> tuple[list[tuple[int, Any]], str]:
    """The documents read before any YAML error, and that error's message (or ``""``)."""
    loaded: list[tuple[int, Any]] = []
    index = 0
    try:
        for body in yamlsafety.load_all(text):
            if body is None:  # an empty document between two `---` separators
                continue
            index += 1
            loaded.append((index, body))
    except yamlsafety.Refused as refused:
        if refused.whole:  # nothing of an oversized source is judged, so the reason stands alone
            return [], f"{source}: {refused}"
        return loaded, f"{source} document {index + 1}: {refused}"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        return loaded, f"{source} document {index + 1}: malformed YAML: {reason}{at}"
    except RecursionError:  # nesting deeper than the parser's stack is malformed input too
        return loaded, f"{source} document {index + 1}: malformed YAML: nested too deeply"
    return loaded, ""


def _check(body: Any, namespace: str | None) -> list[tuple[str, str]]:
    if not isinstance(body, dict):
        return [("", f"a manifest must be an object, got {jsonvalues.type_name(body)}")]
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        return [("kind", "is required")]
    if not isinstance(api_version, str) or not api_version:
        return [("apiVersion", "is required")]
    info = crds.BY_KIND.get(kind)
    if info is None:
        instead = crds.INSTEAD.get(kind, "")
        rule = f"kind {kind} is not supported; meshplane accepts {crds.accepted_kinds()}"
        return [("kind", f"{rule} ({instead})" if instead else rule)]
    if api_version != info.api_version:
        return [("apiVersion", f"{kind} must be {info.api_version}, got {api_version!r}")]
    found: list[tuple[str, str]] = []
    for name in body:
        if name not in {"apiVersion", "kind", "metadata", "spec", "status"}:
            found.append(
                (name, "unknown field (allowed: apiVersion, kind, metadata, spec, status)")
            )
    if body.get("metadata") is None:
        return [*found, ("metadata", "is required")]
    found.extend(schema.problems(crds.METADATA, body["metadata"], "metadata"))
    if body.get("spec") is not None:
        found.extend(schema.problems(info.spec, body["spec"], "spec"))
    declared = body["metadata"].get("namespace") if isinstance(body["metadata"], dict) else None
    if info.namespaced and namespace and isinstance(declared, str) and declared != namespace:
        found.append(
            (
                "metadata.namespace",
                f"the namespace from the provided object {declared!r} does not match the "
                f"namespace {namespace!r}; pass --namespace={declared} to apply it",
            )
        )
    return found


def _to_object(body: dict[str, Any], namespace: str | None) -> ManifestObject:
    info = crds.BY_KIND[body["kind"]]
    metadata = body["metadata"]
    where = ""
    if info.namespaced:
        where = metadata.get("namespace") or namespace or DEFAULT_NAMESPACE
    return ManifestObject(
        kind=info.kind,
        namespace=where,
        name=metadata["name"],
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        spec=dict(body.get("spec") or {}),
    )
