"""A set of manifest objects that admission, conversion and reconciliation read.

The controller's rules look other objects up (the namespace's labels, every
Mesh, the referenced VirtualNode…). They read a :class:`Catalog`, a plain
in-memory index, so the same rules run against the control plane's store,
against a batch being planned (stored objects overlaid with the batch), and
later against a Kubernetes informer cache.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshplane.manifests.objects import ManifestObject

Key = tuple[str, str, str]


class Catalog:
    """Objects by (kind, namespace, name)."""

    def __init__(self, objects: Iterable[ManifestObject] = ()) -> None:
        """Index ``objects``; later ones replace earlier ones with the same key."""
        self._objects: dict[Key, ManifestObject] = {}
        for obj in objects:
            self.put(obj)

    def put(self, obj: ManifestObject) -> None:
        """Add or replace an object."""
        self._objects[obj.key] = obj

    def remove(self, key: Key) -> None:
        """Forget an object (no error if absent)."""
        self._objects.pop(key, None)

    def get(self, kind: str, namespace: str, name: str) -> ManifestObject | None:
        """The object with this identity, if any."""
        return self._objects.get((kind, namespace, name))

    def of_kind(self, kind: str, namespace: str | None = None) -> list[ManifestObject]:
        """Objects of ``kind`` (in ``namespace`` if given), sorted by namespace and name."""
        found = [
            obj
            for (k, ns, _), obj in self._objects.items()
            if k == kind and (namespace is None or ns == namespace)
        ]
        return sorted(found, key=lambda obj: (obj.namespace, obj.name))

    def all(self) -> list[ManifestObject]:
        """Every object, sorted by kind, namespace and name."""
        return [self._objects[key] for key in sorted(self._objects)]

    def overlay(self, objects: Iterable[ManifestObject]) -> Catalog:
        """A new catalog: this one with ``objects`` added or replacing."""
        merged = Catalog(self._objects.values())
        for obj in objects:
            merged.put(obj)
        return merged

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The labels of a namespace (empty if the namespace is unknown)."""
        found = self.get("Namespace", "", namespace)
        return dict(found.labels) if found else {}
