"""Where reconcile writes what it learned: object status, finalizer release, events.

The reconciler never writes objects or events itself; it calls a
:class:`StatusSink` and an :class:`EventSink`. Locally (``meshplane apply``)
:class:`StoredSinks` keeps both in the control plane's store, next to the App
Mesh twins. The Kubernetes controller plugs in its own: a status-subresource
patch and finalizer removal for :class:`StatusSink`, ``Event`` objects for
:class:`EventSink`, with no change to the reconcile rules.
"""

from __future__ import annotations

from typing import Protocol

from meshplane.kit.clock import Clock
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.manifests.results import ReconcileResult
from meshplane.store.protocols import Store


class StatusSink(Protocol):
    """Persists the controller's view of an object."""

    def write(self, obj: ManifestObject) -> None:
        """Persist what reconcile set on ``obj``: its status (and the refs membership chose)."""
        ...

    def release(self, obj: ManifestObject) -> None:
        """``obj``'s finalizers are done: let it go (locally: forget it)."""
        ...


class EventSink(Protocol):
    """Records events that explain an object's state, as ``describe`` lists them."""

    def emit(self, obj: ManifestObject, event_type: str, reason: str, message: str) -> None:
        """Record one event; ``event_type`` is ``Normal`` or ``Warning``."""
        ...


class ObjectReconciler(Protocol):
    """What a controller drives, one object at a time: reconcile it, or finalize its deletion.

    ``catalog`` is the controller's view of the other objects (the store locally, an
    informer cache on Kubernetes); the reconciler reads it and never changes it.
    """

    def reconcile(self, obj: ManifestObject, catalog: Catalog) -> ReconcileResult:
        """Twin a live object into App Mesh and write its status."""
        ...

    def finalize(self, obj: ManifestObject, catalog: Catalog) -> ReconcileResult:
        """Run a deleted object's finalizers; done means it was released."""
        ...


class StoredSinks:
    """Both sinks over the control plane's store: one transaction per write."""

    def __init__(self, store: Store, clock: Clock) -> None:
        """Write into ``store``; event times come from ``clock``."""
        self._store = store
        self._clock = clock

    def write(self, obj: ManifestObject) -> None:
        """Store the whole object (locally status and spec live in one row)."""
        with self._store.transaction() as tx:
            tx.put_manifest_object(*obj.key, obj.to_storage())

    def release(self, obj: ManifestObject) -> None:
        """Forget the object and its events."""
        with self._store.transaction() as tx:
            tx.remove_manifest_object(*obj.key)

    def emit(self, obj: ManifestObject, event_type: str, reason: str, message: str) -> None:
        """Add the event, folding a repeat of the newest one."""
        with self._store.transaction() as tx:
            identity = (*obj.key, obj.uid)
            tx.record_manifest_event(identity, event_type, reason, message, self._clock())
