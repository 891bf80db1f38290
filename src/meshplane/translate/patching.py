"""What an endpoints change does to the shared pieces: the target resources to splice.

At fleet scale most changes are replicas coming and going: the registered
endpoints of one virtual node change, and every caller of it would be translated
again only to swap that node's load assignment. But a caller whose translation
read those endpoints *only through shared pieces*
(:class:`~meshplane.translate.reuse.SharedTranslations`: a target's cluster and
load assignment, and a service's targets made of them) got those pieces'
objects verbatim. If the rebuilt pieces keep their names, warnings and reads,
a full translation of the caller would give exactly what it had with the old
objects swapped for the new — so the sync stage can splice the new serialized
cluster and assignment into the caller's previous snapshot instead
(:meth:`~meshplane.xds.snapshot.Snapshot.replaced`).

:func:`patch_targets` rebuilds the dropped target pieces once per change (not
once per caller) and says what changed, or ``None`` when the change cannot be
spliced (any other kind of piece changed, a name, a warning or a read did), in
which case callers are translated again as before. Pure, like all of
:mod:`meshplane.translate`: the pieces are entered in the shared table, nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Hashable, Mapping
from typing import cast

from meshplane.model.snapshot import MeshSnapshot
from meshplane.translate import building, dependencies, names, reuse, specs


@dataclasses.dataclass(frozen=True)
class TargetPatch:
    """One shared target piece rebuilt: the resources callers had, and their successors."""

    dns_first: bool
    """Which flavour of the piece (:func:`~meshplane.translate.building.intercepted` callers)."""
    before: building.TargetResources
    after: building.TargetResources


_SPLICEABLE = frozenset({"target", "service-targets"})
"""Piece kinds whose objects reach a caller verbatim (a service's targets hold target pieces)."""


def patch_targets(
    snapshot: MeshSnapshot,
    shared: reuse.SharedTranslations,
    dropped: Mapping[Hashable, reuse.Piece],
) -> tuple[TargetPatch, ...] | None:
    """The target pieces of ``dropped`` rebuilt on ``snapshot`` (entered in ``shared``).

    ``dropped`` is what :meth:`~meshplane.translate.reuse.SharedTranslations.advance`
    returned for a batch of endpoints changes. ``None``: the batch changed more than
    target resources, and callers must be translated again.
    """
    patches: list[TargetPatch] = []
    for key, old in dropped.items():
        if not isinstance(key, tuple) or key[0] not in _SPLICEABLE:
            return None
        if key[0] != "target":
            continue  # rebuilt from the target pieces by the next caller translated
        _, target, dns_first = key
        if old.value is None:
            return None
        recorder = dependencies.Recorder(snapshot)
        pieces = shared.using(snapshot, recorder)
        after = pieces.piece(
            key, functools.partial(building.shared_target, recorder.snapshot, target, dns_first), []
        )
        new = shared.get(key)
        before = cast(building.TargetResources, old.value)
        if (
            after is None
            or new is None
            or new.reads != old.reads
            or new.warnings != old.warnings
            or after[0].name != before[0].name
            or (after[1] is None) != (before[1] is None)
        ):
            return None
        patches.append(TargetPatch(dns_first, before, after))
    return tuple(patches)


def target_cluster_names(snapshot: MeshSnapshot, node: str) -> frozenset[str]:
    """The names of the clusters callers reach ``node``'s listeners by."""
    found = snapshot.virtual_nodes.get(node)
    if found is None:
        return frozenset()
    return frozenset(
        names.egress_cluster(snapshot.name, node, listener.protocol, listener.port)
        for listener in specs.listeners(found.spec)
    )
