"""The local driver: reconcile every object, pass after pass, until nothing moves.

``meshplane apply``, ``delete`` and ``label`` answer only once the objects they
touched have settled, so this driver does in one call what a Kubernetes
controller does over time with its work queue: each pass reconciles every live
object in creation order and finalizes every deleted one in reverse order,
through an :class:`~meshplane.manifests.sinks.ObjectReconciler`. One object's
progress (a twin created, a member gone) can unblock another, so a pass that
changed anything is followed by another one. Requeue delays do not apply here:
locally nothing but the next pass can change what an object waits for.

A pass that changes nothing is the fixed point: objects still waiting
(``requeue``) or refused (``permanent``) stay so until the user applies
something else, and their status and events say why. A catalog that keeps
changing for more passes than it has objects never converges (two objects
undoing each other); :class:`NotConverged` then names them instead of
returning a state that is still moving.
"""

from __future__ import annotations

from meshplane.manifests.catalog import Catalog, Key
from meshplane.manifests.objects import ManifestObject
from meshplane.manifests.results import ReconcileResult, Verdict
from meshplane.manifests.sinks import ObjectReconciler

ORDER = ("Mesh", "VirtualNode", "VirtualRouter", "VirtualService", "VirtualGateway", "GatewayRoute")
"""Creation order; deletion runs it backwards."""

DELETION_ORDER = tuple(reversed(("Namespace", "Service", "BackendGroup", *ORDER)))
"""Finalization order: members before the objects that wait for them."""

SPARE_PASSES = 3
"""Passes allowed beyond one per object (each pass can settle at least one more object)."""


class NotConverged(Exception):
    """Reconciling did not reach a fixed point; ``problems`` name each object still moving."""

    def __init__(self, passes: int, problems: list[str]) -> None:
        """Keep one line per object that changed in the last pass, with its last result."""
        super().__init__(
            f"manifests did not converge after {passes} passes; still changing: "
            + "; ".join(problems)
        )
        self.passes = passes
        self.problems = problems


def converge(reconciler: ObjectReconciler, catalog: Catalog) -> dict[Key, ReconcileResult]:
    """Reconcile ``catalog`` until a full pass changes nothing; every object's last result.

    Objects finalized away are removed from ``catalog`` (their result is done).
    Raises :class:`NotConverged` when the passes run out while objects still move.
    """
    outcomes: dict[Key, ReconcileResult] = {}
    passes = len(catalog.all()) + SPARE_PASSES
    moved: list[ManifestObject] = []
    for _ in range(passes):
        moved = []
        for kind in ORDER:
            for obj in catalog.of_kind(kind):
                if not obj.deleting:
                    before = obj.to_document()
                    outcomes[obj.key] = reconciler.reconcile(obj, catalog)
                    if obj.to_document() != before:
                        moved.append(obj)
        for kind in DELETION_ORDER:
            for obj in catalog.of_kind(kind):
                if obj.deleting:
                    before = obj.to_document()
                    outcomes[obj.key] = result = reconciler.finalize(obj, catalog)
                    if result.verdict is Verdict.DONE:
                        catalog.remove(obj.key)
                        moved.append(obj)
                    elif obj.to_document() != before:
                        moved.append(obj)
        if not moved:
            return outcomes
    raise NotConverged(
        passes, [f"{obj.ref()} ({_where(obj)}): {outcomes[obj.key].describe()}" for obj in moved]
    )


def _where(obj: ManifestObject) -> str:
    return f"namespace {obj.namespace}" if obj.namespace else "cluster-scoped"
