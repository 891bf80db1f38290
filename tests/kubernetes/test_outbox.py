"""The writer's outbox: unwritten plans merge, the newest write per object wins."""

from __future__ import annotations

from meshplane.k8s.controlling import EventWrite, FinalizerWrite, Plan, StatusWrite
from meshplane.k8s.writing import Outbox
from meshplane.manifests.objects import ManifestObject

A = ManifestObject("VirtualNode", "demos", "vn-a")
B = ManifestObject("VirtualNode", "demos", "vn-b")


def test_unwritten_plans_merge_and_the_newest_status_wins():
    """Two plans before the writer runs: both objects' writes survive, A's newer status wins."""
    outbox = Outbox()
    outbox.put(
        Plan(
            finalizers=[FinalizerWrite(A, ("f",), "1")],
            statuses=[StatusWrite(A, {"observedGeneration": 1})],
            events=[EventWrite(A, "Warning", "Waiting", "first")],
        )
    )
    outbox.put(
        Plan(
            statuses=[StatusWrite(A, {"observedGeneration": 2}), StatusWrite(B, {"x": 1})],
            events=[EventWrite(B, "Warning", "Waiting", "second")],
        )
    )
    assert outbox.ready.is_set()
    merged = outbox.take()
    assert merged is not None
    assert [(w.obj.name, w.finalizers) for w in merged.finalizers] == [("vn-a", ("f",))]
    assert [(w.obj.name, w.patch) for w in merged.statuses] == [
        ("vn-a", {"observedGeneration": 2}),
        ("vn-b", {"x": 1}),
    ]
    assert [e.message for e in merged.events] == ["first", "second"]
    assert outbox.take() is None
    assert not outbox.ready.is_set()
