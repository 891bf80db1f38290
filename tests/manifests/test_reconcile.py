"""Per-object reconcile: done, requeue after a delay, permanent error; converge as its driver.

The reconciler runs over a real domain service and store; its status and event
sinks are recording fakes, the way a Kubernetes controller would plug in its own.
Objects are planned from manifests exactly as ``apply`` plans them.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from meshplane import app, settings
from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.manifests import converging, documents, planning, results
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.manifests.reconciling import Reconciler
from meshplane.manifests.results import ReconcileResult, Verdict
from meshplane.model import errors
from meshplane.testing import ControlPlane, ControlPlaneError

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demos\n  labels: {mesh: demos}\n"
MESH = (
    "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: demos}\n"
    "spec:\n  namespaceSelector: {matchLabels: {mesh: demos}}\n"
)
NODE = (
    "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\n"
    "metadata: {name: vn-a, namespace: demos}\nspec:\n"
    "  listeners: [{portMapping: {port: 80, protocol: http}}]\n"
    "  serviceDiscovery: {dns: {hostname: vn-a}}\n"
)
SERVICE = (
    "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\n"
    "metadata: {name: vs-a, namespace: demos}\nspec:\n"
    "  awsName: vs-a\n"
    "  provider: {virtualNode: {virtualNodeRef: {name: vn-a}}}\n"
)


class Recorder:
    """Status and event sinks that remember every call."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.released: list[str] = []
        self.events: list[tuple[str, str, str, str]] = []

    def write(self, obj: ManifestObject) -> None:
        self.written.append(obj.ref())

    def release(self, obj: ManifestObject) -> None:
        self.released.append(obj.ref())

    def emit(self, obj: ManifestObject, event_type: str, reason: str, message: str) -> None:
        self.events.append((obj.ref(), event_type, reason, message))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def reconciler(tmp_path: Path, clock: FakeClock, recorder: Recorder) -> Reconciler:
    plane = app.build(settings.load(environ={}, data_dir=tmp_path), clock, counting_ids())
    return Reconciler(plane.services.resources, clock, recorder, recorder)


def planned(clock: FakeClock, *texts: str) -> Catalog:
    """The objects ``apply`` would store for ``texts`` (namespace ``demos``)."""
    batch = [doc for i, t in enumerate(texts) for doc in documents.parse(t, f"f{i}.yaml", "demos")]
    return Catalog(item.obj for item in planning.plan(batch, Catalog(), clock, counting_ids()))


def _get(catalog: Catalog, kind: str, name: str) -> ManifestObject:
    found = catalog.get(kind, "" if kind in {"Mesh", "Namespace"} else "demos", name)
    assert found is not None
    return found


def test_a_twinned_object_is_done_and_its_status_written(
    reconciler: Reconciler, recorder: Recorder, clock: FakeClock
) -> None:
    """A Mesh with nothing to wait for is twinned: done, status written once, no event."""
    catalog = planned(clock, NAMESPACE, MESH)
    mesh = _get(catalog, "Mesh", "demos")
    assert reconciler.reconcile(mesh, catalog) == ReconcileResult.done()
    assert mesh.status["meshARN"] == "arn:aws:appmesh:us-west-2:123456789012:mesh/demos"
    assert mesh.status["conditions"][0]["status"] == "True"
    assert recorder.written == ["mesh/demos"]
    assert reconciler.reconcile(mesh, catalog) == ReconcileResult.done()
    assert recorder.written == ["mesh/demos"]  # nothing moved: nothing written again
    assert recorder.events == []


def test_an_object_waiting_for_a_dependency_is_requeued_with_the_reason(
    reconciler: Reconciler, recorder: Recorder, clock: FakeClock
) -> None:
    """A VirtualService before its mesh and provider are twinned: requeue after 5 s, one event."""
    catalog = planned(clock, NAMESPACE, MESH, NODE, SERVICE)
    service = _get(catalog, "VirtualService", "vs-a")
    result = reconciler.reconcile(service, catalog)
    reason = "mesh demos is not Active yet; VirtualNode demos/vn-a is not in mesh demos"
    assert result == ReconcileResult(Verdict.REQUEUE, reason, 5.0)
    assert result.describe() == f"requeue in 5s: {reason}"
    assert recorder.events == [("virtualservice/vs-a", "Warning", "Waiting", reason)]
    assert service.status["conditions"][0]["message"] == reason


def test_a_spec_app_mesh_refuses_is_a_permanent_error(
    reconciler: Reconciler, recorder: Recorder, clock: FakeClock
) -> None:
    """A BadRequest from the domain service is permanent: retrying the same spec is useless."""
    catalog = planned(clock, NAMESPACE, MESH, NODE)
    reconciler.reconcile(_get(catalog, "Mesh", "demos"), catalog)
    node = _get(catalog, "VirtualNode", "vn-a")
    node.spec["listeners"][0]["portMapping"]["port"] = 0  # past admission, as a bug would be
    result = reconciler.reconcile(node, catalog)
    reason = (
        "BadRequestException: Invalid request: spec.listeners[0].portMapping.port: "
        "value 0 is below the minimum 1"
    )
    assert result == ReconcileResult.permanent(reason)
    assert result.describe() == f"permanent error: {reason}"
    assert recorder.events[-1] == ("virtualnode/vn-a", "Warning", "ReconcileError", reason)


def test_a_twin_still_in_use_makes_its_deletion_requeue_then_finish(
    reconciler: Reconciler, recorder: Recorder, clock: FakeClock
) -> None:
    """Deleting a node a service still uses: ResourceInUse requeues; once it is free, released."""
    catalog = planned(clock, NAMESPACE, MESH, NODE, SERVICE)
    converging.converge(reconciler, catalog)
    node = _get(catalog, "VirtualNode", "vn-a")
    node.deleted_at = clock()
    result = reconciler.finalize(node, catalog)
    assert result.verdict is Verdict.REQUEUE
    assert result.requeue_after == 5.0
    assert result.reason.startswith("ResourceInUseException: VirtualNode with name vn-a_demos")
    assert node.status["deletionBlockedBy"] == result.reason
    assert recorder.events[-1] == ("virtualnode/vn-a", "Warning", "DeletionBlocked", result.reason)
    service = _get(catalog, "VirtualService", "vs-a")
    service.deleted_at = clock()
    assert reconciler.finalize(service, catalog) == ReconcileResult.done()
    catalog.remove(service.key)
    assert reconciler.finalize(node, catalog) == ReconcileResult.done()
    assert recorder.released == ["virtualservice/vs-a", "virtualnode/vn-a"]


def test_a_mesh_with_members_waits_a_minute_per_retry(
    reconciler: Reconciler, clock: FakeClock
) -> None:
    """The members finalizer requeues every 60 s, as the controller's does."""
    catalog = planned(clock, NAMESPACE, MESH, NODE)
    converging.converge(reconciler, catalog)
    mesh = _get(catalog, "Mesh", "demos")
    mesh.deleted_at = clock()
    assert reconciler.finalize(mesh, catalog) == ReconcileResult.requeue(
        60.0,
        "objects belonging to this mesh exist, delete them to proceed: virtualNode: 1",
    )


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (errors.BadRequestException("x"), Verdict.PERMANENT),
        (errors.ForbiddenException("x"), Verdict.PERMANENT),
        (errors.TooManyTagsException("x"), Verdict.PERMANENT),
        (errors.ConflictException("x"), Verdict.REQUEUE),
        (errors.NotFoundException("x"), Verdict.REQUEUE),
        (errors.ResourceInUseException("x"), Verdict.REQUEUE),
        (errors.LimitExceededException("x"), Verdict.REQUEUE),
        (errors.TooManyRequestsException("x"), Verdict.REQUEUE),
        (errors.ServiceUnavailableException("x"), Verdict.REQUEUE),
        (errors.InternalServerErrorException("x"), Verdict.REQUEUE),
    ],
)
def test_app_mesh_errors_are_temporary_unless_they_refuse_the_spec(
    error: errors.AppMeshError, verdict: Verdict
) -> None:
    """Only errors about the spec itself stop retries; the rest may clear without a change."""
    assert ReconcileResult.of(results.of_api_error(error, "m")).verdict is verdict


def test_converge_returns_each_objects_last_result_at_the_fixed_point(
    reconciler: Reconciler, clock: FakeClock
) -> None:
    """Waiting objects are a fixed point, not a failure: converge returns with them requeued."""
    router = (
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\n"
        "metadata: {name: vr-a, namespace: demos}\nspec:\n"
        "  listeners: [{portMapping: {port: 80, protocol: http}}]\n"
        "  routes:\n  - name: r\n    httpRoute:\n      match: {prefix: /}\n"
        "      action: {weightedTargets: [{virtualNodeRef: {name: vn-missing}, weight: 1}]}\n"
    )
    catalog = planned(clock, NAMESPACE, MESH, NODE, router)
    outcomes = converging.converge(reconciler, catalog)
    assert outcomes == {
        ("Mesh", "", "demos"): ReconcileResult.done(),
        ("VirtualNode", "demos", "vn-a"): ReconcileResult.done(),
        ("VirtualRouter", "demos", "vr-a"): ReconcileResult.requeue(
            5.0, "VirtualNode demos/vn-missing not found"
        ),
    }


class Flapping:
    """A reconciler that changes its object's status on every call: it never settles."""

    def __init__(self) -> None:
        self.calls = 0

    def reconcile(self, obj: ManifestObject, catalog: Catalog) -> ReconcileResult:
        self.calls += 1
        obj.status["flips"] = self.calls
        return ReconcileResult.requeue(1.0, f"flip {self.calls}")

    def finalize(self, obj: ManifestObject, catalog: Catalog) -> ReconcileResult:
        raise AssertionError("nothing is being deleted")


def test_converge_raises_naming_the_objects_still_moving(clock: FakeClock) -> None:
    """A catalog that never settles ends in NotConverged with each object and its last result."""
    catalog = planned(clock, NAMESPACE, MESH)
    flapping = Flapping()
    with pytest.raises(converging.NotConverged) as caught:
        converging.converge(flapping, catalog)
    # Two objects (the Namespace is not reconciled): 2 + 3 spare passes, one call each.
    assert flapping.calls == 5
    assert caught.value.passes == 5
    assert caught.value.problems == ["mesh/demos (cluster-scoped): requeue in 1s: flip 5"]
    assert str(caught.value) == (
        "manifests did not converge after 5 passes; still changing: "
        "mesh/demos (cluster-scoped): requeue in 1s: flip 5"
    )


def test_apply_that_never_settles_fails_with_one_line_naming_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the manifests API, NotConverged is one error line, not a silent partial apply."""
    calls = itertools.count(1)

    def flapping(self: Reconciler, obj: ManifestObject, catalog: Catalog) -> ReconcileResult:
        number = next(calls)
        obj.status["flips"] = number
        return ReconcileResult.requeue(1.0, f"flip {number}")

    monkeypatch.setattr(Reconciler, "reconcile", flapping)
    manifest = tmp_path / "mesh.yaml"
    manifest.write_text(MESH, encoding="utf-8")
    with ControlPlane(tmp_path / "data") as plane, pytest.raises(ControlPlaneError) as caught:
        plane.apply(manifest)
    assert json.loads(str(caught.value)) == {
        "reason": "NotConverged",
        "errors": [
            "manifests did not converge after 4 passes; still changing: "
            "mesh/demos (cluster-scoped): requeue in 1s: flip 4"
        ],
    }
