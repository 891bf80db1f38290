"""The manifest front door: apply, get, describe, delete and label, over the control plane's store.

This is what ``meshplane apply/get/describe/delete/label`` (through
:mod:`meshplane.api.manifests`) calls. It parses and plans a whole batch first
(:mod:`meshplane.manifests.planning`), writes the objects in one store
transaction, then drives :class:`~meshplane.manifests.reconciling.Reconciler`
with the local driver (:func:`~meshplane.manifests.converging.converge`) until
they have converged with their App Mesh twins, before it answers. Status and
events go to the store through :class:`~meshplane.manifests.sinks.StoredSinks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from meshplane.kit.clock import Clock, IdFactory
from meshplane.manifests import (
    adopting,
    converging,
    crds,
    documents,
    foreign,
    ignoring,
    planning,
    yamlsafety,
)
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestError, ManifestObject
from meshplane.manifests.reconciling import Reconciler
from meshplane.manifests.sinks import StoredSinks
from meshplane.model import acm, naming
from meshplane.pki import authority
from meshplane.service.resources import MeshService
from meshplane.store import snapshots
from meshplane.store.records import Event
from meshplane.translate import tlsstate
from meshplane.translate.identity import DEFAULT_TRUST_DOMAIN


class NotFoundError(Exception):
    """The named object does not exist; the message is kubectl's."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What happened to one object: created, configured, unchanged, deleted or labeled."""

    obj: ManifestObject
    action: str
    warnings: tuple[str, ...] = ()

    def line(self) -> str:
        """The line kubectl prints: ``virtualnode.appmesh.k8s.aws/vn-a created``."""
        return f"{self.obj.info.qualified}/{self.obj.name} {self.action}"

    def to_json(self) -> dict[str, Any]:
        """The wire form the CLI prints."""
        return {
            "line": self.line(),
            "resource": self.obj.info.qualified,
            "name": self.obj.name,
            "action": self.action,
            "warnings": list(self.warnings),
        }


class FrontDoor:
    """Manifest operations backed by the store and the domain service."""

    def __init__(
        self,
        service: MeshService,
        clock: Clock,
        ids: IdFactory,
        *,
        trust_domain: str = DEFAULT_TRUST_DOMAIN,
    ) -> None:
        """Share the domain service's store; clock and ids are injected.

        ``trust_domain`` is the control plane's, for the SPIFFE IDs describe shows.
        """
        self.service = service
        self._trust_domain = trust_domain
        self.store = service.store
        self._clock = clock
        self._ids = ids
        sinks = StoredSinks(self.store, clock)
        self.reconciler = Reconciler(service, clock, sinks, sinks)

    def _save(self, obj: ManifestObject) -> None:
        """Store a change the user asked for (labels, a deletion mark)."""
        with self.store.transaction() as tx:
            tx.put_manifest_object(*obj.key, obj.to_storage())

    def catalog(self) -> Catalog:
        """Every stored object."""
        with self.store.read() as tx:
            rows = tx.manifest_objects()
        return Catalog(ManifestObject.from_storage(row) for row in rows)

    # -- operations ------------------------------------------------------------------------

    def apply(
        self, sources: Sequence[tuple[str, str]], namespace: str | None
    ) -> list[Outcome | foreign.Skipped]:
        """Parse, check and store every document of ``sources`` (name, text), then converge.

        Documents of kinds Kubernetes runs come first in the answer, as skipped lines.
        """
        return self.apply_parsed(*parse_sources(sources, namespace))

    def apply_parsed(
        self, batch: Sequence[documents.Document], skipped: Sequence[foreign.Skipped]
    ) -> list[Outcome | foreign.Skipped]:
        """:meth:`apply` of documents :func:`parse_sources` read (perhaps in another process)."""
        if not batch:
            return list(skipped)
        stored = self.catalog()
        planned = planning.plan(batch, stored, self._clock, self._ids)
        adopted = adopting.adoptions(self.service, planned, stored)
        with self.store.transaction() as tx:
            for item in planned:
                if item.action != planning.UNCHANGED:
                    tx.put_manifest_object(*item.obj.key, item.obj.to_storage())
        catalog = stored.overlay(item.obj for item in planned)
        converging.converge(self.reconciler, catalog)
        return [
            *skipped,
            *(
                self._outcome(
                    catalog,
                    item.obj,
                    item.action,
                    [*adopted.get(item.obj.key, ()), *ignoring.warnings(item.obj)],
                )
                for item in planned
            ),
        ]

    def adoptions_parsed(self, batch: Sequence[documents.Document]) -> list[dict[str, Any]]:
        """What applying ``batch`` would adopt, changing nothing (``apply --dry-run``).

        One ``{"resource", "name", "warnings"}`` per adopting object; the batch is planned
        as :meth:`apply` would, so a batch the server would refuse raises the same errors.
        """
        if not batch:
            return []
        stored = self.catalog()
        planned = planning.plan(batch, stored, self._clock, self._ids)
        adopted = adopting.adoptions(self.service, planned, stored)
        return [
            {"resource": item.obj.info.qualified, "name": item.obj.name, "warnings": lines}
            for item in planned
            if (lines := adopted.get(item.obj.key))
        ]

    def _outcome(
        self, catalog: Catalog, obj: ManifestObject, action: str, extra: Sequence[str] = ()
    ) -> Outcome:
        current = catalog.get(*obj.key) or obj
        warnings = list(extra)
        for condition in current.status.get("conditions") or []:
            if condition.get("status") != "True" and condition.get("message"):
                warnings.append(
                    f"{current.info.singular}/{current.name} is not Active: {condition['message']}"
                )
        for path in acm.paths(current.spec):
            warnings.append(f"{current.info.singular}/{current.name}: {path}: {acm.NOTE}")
        return Outcome(current, action, tuple(warnings))

    def get(self, kind: str, namespace: str, name: str) -> ManifestObject:
        """One object; :class:`NotFoundError` in kubectl's words when absent."""
        info = crds.BY_KIND[kind]
        found = self.catalog().get(kind, namespace if info.namespaced else "", name)
        if found is None:
            raise NotFoundError(f'{info.resource} "{name}" not found')
        return found

    def list_objects(self, kind: str, namespace: str | None) -> list[ManifestObject]:
        """Objects of ``kind``, in ``namespace`` or everywhere when ``None``."""
        info = crds.BY_KIND[kind]
        return self.catalog().of_kind(kind, namespace if info.namespaced else None)

    def tls_state(self, obj: ManifestObject) -> dict[str, Any] | None:
        """A VirtualNode's or VirtualGateway's effective TLS (describe), once it has a twin.

        Built from the twin's mesh as translation sees it; file certificates the control
        plane can read on this machine show their SANs too.
        """
        field = _TWIN_ARN.get(obj.kind)
        ref = naming.parse_node_id(str(obj.status.get(field, ""))) if field else None
        if ref is None:
            return None
        snapshot = snapshots.mesh_snapshot(self.store, ref.mesh)
        if snapshot is None:
            return None
        return tlsstate.state(
            snapshot, ref.kind, ref.name, domain=self._trust_domain, file_sans=authority.leaf_sans
        )

    def events(self, obj: ManifestObject) -> list[Event]:
        """The object's recent events, oldest first."""
        with self.store.read() as tx:
            return tx.manifest_events(*obj.key)

    def delete(self, kind: str, namespace: str, name: str) -> Outcome:
        """Request deletion; the object goes once its finalizers allow (``deleted`` either way)."""
        obj = self.get(kind, namespace, name)
        catalog = self.catalog()
        doomed = [obj]
        if kind == "Namespace":
            doomed += [o for o in catalog.all() if o.namespace == name]
        for item in doomed:
            target = catalog.get(*item.key)
            if target is not None and not target.deleting:
                target.deleted_at = self._clock()
                self._save(target)
        converging.converge(self.reconciler, catalog)
        current = catalog.get(*obj.key)
        if current is None:
            return Outcome(obj, "deleted")
        pending = current.status.get("deletionBlockedBy", "")
        return Outcome(
            current,
            "deleted",
            (f"{current.info.singular}/{name} waits: {pending}",) if pending else (),
        )

    def delete_documents(
        self, sources: Sequence[tuple[str, str]], namespace: str | None
    ) -> list[Outcome | foreign.Skipped]:
        """``delete -f``: delete every object the documents name (missing ones are errors)."""
        return self.delete_parsed(*parse_sources(sources, namespace))

    def delete_parsed(
        self, batch: Sequence[documents.Document], skipped: Sequence[foreign.Skipped]
    ) -> list[Outcome | foreign.Skipped]:
        """:meth:`delete_documents` of documents :func:`parse_sources` read."""
        catalog = self.catalog()
        missing = [
            f'{doc.where}: {doc.obj.info.resource} "{doc.obj.name}" not found'
            for doc in batch
            if catalog.get(*doc.obj.key) is None
        ]
        if missing:
            raise ManifestError(missing)
        return [*skipped, *(self.delete(*doc.obj.key) for doc in reversed(batch))]

    def label(self, namespace: str, changes: dict[str, str | None], overwrite: bool) -> Outcome:
        """Set (or with ``None`` remove) labels of a namespace, then converge."""
        obj = self.get("Namespace", "", namespace)
        for key, value in changes.items():
            if value is None:
                obj.labels.pop(key, None)
                continue
            if key in obj.labels and obj.labels[key] != value and not overwrite:
                raise ManifestError(
                    [f"'{key}' already has a value ({obj.labels[key]}), and --overwrite is false"]
                )
            obj.labels[key] = value
        self._save(obj)
        catalog = self.catalog()
        converging.converge(self.reconciler, catalog)
        return self._outcome(catalog, obj, "labeled")


_TWIN_ARN = {"VirtualNode": "virtualNodeARN", "VirtualGateway": "virtualGatewayARN"}


def parse_sources(
    sources: Sequence[tuple[str, str]], namespace: str | None
) -> tuple[list[documents.Document], list[foreign.Skipped]]:
    """Every source's documents and skipped documents; all problems of all sources at once.

    A pure function of its input (no store), so a large request can be parsed in
    another process (:mod:`meshplane.api.screening`).
    """
    batch: list[documents.Document] = []
    skipped: list[foreign.Skipped] = []
    problems: list[str] = []
    try:  # the limit holds for one request's sources together, not for each alone
        yamlsafety.check_size("".join(text for _, text in sources))
    except yamlsafety.Refused as refused:
        raise ManifestError([f"{len(sources)} sources: {refused}"]) from refused
    for name, text in sources:
        try:
            parsed = documents.read(text, name, namespace)
        except ManifestError as error:
            problems += error.problems
            continue
        batch += parsed.documents
        skipped += parsed.skipped
    if problems:
        raise ManifestError(problems)
    if not batch and not skipped:
        raise ManifestError(["no objects passed to apply"])
    return batch, skipped
