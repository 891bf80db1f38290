"""The in-memory form of one manifest object (a Mesh, a VirtualNode, a Namespace, …).

A :class:`ManifestObject` is what a Kubernetes API server would hold: identity
(kind, namespace, name, uid), labels, the user's spec, the controller's status,
a generation that counts spec changes, and a deletion mark while finalizers
wait. It renders back to the document users read with ``get -o yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

from meshplane.manifests import crds


class ManifestError(Exception):
    """A manifest cannot be accepted; ``problems`` are the lines users read."""

    def __init__(self, problems: list[str]) -> None:
        """Keep every problem: one bad file reports all its faults at once."""
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclasses.dataclass
class ManifestObject:
    """One object of an accepted kind, as stored."""

    kind: str
    namespace: str
    """``""`` for cluster-scoped kinds (Mesh, Namespace)."""
    name: str
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    spec: dict[str, Any] = dataclasses.field(default_factory=dict)
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    uid: str = ""
    generation: int = 0
    created_at: float = 0.0
    deleted_at: float = 0.0
    """When deletion was requested (0: not requested); the object stays until its
    finalizer's conditions hold, as Kubernetes keeps an object with a deletionTimestamp."""

    @property
    def deleting(self) -> bool:
        """Deletion was requested and is waiting for dependents."""
        return self.deleted_at > 0

    @property
    def info(self) -> crds.KindInfo:
        """The kind's description."""
        return crds.BY_KIND[self.kind]

    @property
    def key(self) -> tuple[str, str, str]:
        """(kind, namespace, name): unique among stored objects."""
        return (self.kind, self.namespace, self.name)

    def ref(self) -> str:
        """The ``kind/name`` form kubectl uses for messages: ``virtualnode/vn-a``."""
        return f"{self.info.singular}/{self.name}"

    def clone(self) -> ManifestObject:
        """A deep copy the caller may change freely."""
        return copy.deepcopy(self)

    def to_document(self) -> dict[str, Any]:
        """The object as users read it (``get -o yaml``)."""
        metadata: dict[str, Any] = {"name": self.name}
        if self.namespace:
            metadata["namespace"] = self.namespace
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        metadata["uid"] = self.uid
        metadata["generation"] = self.generation
        metadata["creationTimestamp"] = timestamp(self.created_at)
        if self.deleting:
            metadata["deletionTimestamp"] = timestamp(self.deleted_at)
        document: dict[str, Any] = {
            "apiVersion": self.info.api_version,
            "kind": self.kind,
            "metadata": metadata,
        }
        if self.kind != "Namespace":
            document["spec"] = copy.deepcopy(self.spec)
        document["status"] = copy.deepcopy(self.status)
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ManifestObject:
        """Rebuild an object from :meth:`to_document`'s output (the stored form)."""
        metadata = document["metadata"]
        created = metadata.get("creationTimestamp", "")
        deleted = metadata.get("deletionTimestamp", "")
        return cls(
            kind=document["kind"],
            namespace=metadata.get("namespace", ""),
            name=metadata["name"],
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            spec=copy.deepcopy(document.get("spec") or {}),
            status=copy.deepcopy(document.get("status") or {}),
            uid=metadata.get("uid", ""),
            generation=int(metadata.get("generation", 0)),
            created_at=parse_timestamp(created) if created else 0.0,
            deleted_at=parse_timestamp(deleted) if deleted else 0.0,
        )

    def to_storage(self) -> dict[str, Any]:
        """A lossless JSON form for the store (exact times, deletion mark)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_storage(cls, row: dict[str, Any]) -> ManifestObject:
        """Rebuild an object from :meth:`to_storage`'s output."""
        return cls(**row)


def timestamp(epoch: float) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes times."""
    moment = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> float:
    """The epoch seconds of a :func:`timestamp` string."""
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return moment.timestamp()
