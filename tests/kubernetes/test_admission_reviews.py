"""AdmissionReview decisions of the CR webhooks and the injector, without an API server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from meshplane.k8s import admitting, injecting
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject


def _catalog() -> Catalog:
    return Catalog(
        [
            ManifestObject(
                "Mesh",
                "",
                "demos",
                spec={"namespaceSelector": {"matchLabels": {"mesh": "demos"}}},
                uid="mesh-uid",
            ),
            ManifestObject("Namespace", "", "demos", labels={"mesh": "demos"}),
        ]
    )


def _review(
    obj: dict[str, Any], operation: str = "CREATE", old: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "req-1",
            "operation": operation,
            "namespace": "demos",
            "object": obj,
            "oldObject": old,
        },
    }


def _node(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {"name": "vn-a", "namespace": "demos"},
        "spec": spec,
    }


def test_create_defaults_aws_name_and_designates_the_mesh():
    """The mutating webhook adds awsName `<name>_<namespace>` and the one selecting mesh's ref."""
    review = _review(_node())
    decision = admitting.mutate("VirtualNode", admitting.parse(review), _catalog())
    answer = admitting.respond(review, "req-1", decision)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["response"]["allowed"] is True
    assert answer["response"]["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(answer["response"]["patch"])) == [
        {"op": "add", "path": "/spec/awsName", "value": "vn-a_demos"},
        {"op": "add", "path": "/spec/meshRef", "value": {"name": "demos", "uid": "mesh-uid"}},
    ]


def test_create_with_no_selecting_mesh_is_let_in_to_wait():
    """With no mesh selecting the namespace the object is admitted to wait, without meshRef."""
    review = _review(_node())
    catalog = Catalog([ManifestObject("Namespace", "", "demos")])
    decision = admitting.mutate("VirtualNode", admitting.parse(review), catalog)
    assert decision == injecting.Decision(
        True, patch=({"op": "add", "path": "/spec/awsName", "value": "vn-a_demos"},)
    )


def test_a_user_set_mesh_ref_is_refused_at_create():
    """meshRef is the webhook's: a create that sets it is refused as the controller did."""
    review = _review(_node(meshRef={"name": "demos", "uid": "x"}))
    decision = admitting.mutate("VirtualNode", admitting.parse(review), _catalog())
    assert decision == injecting.Decision(
        False, "spec.meshRef: VirtualNode create may not specify read-only field: spec.meshRef"
    )


def test_validation_refuses_a_cross_field_rule_with_its_field():
    """A listener without serviceDiscovery is refused with the field and the rule."""
    review = _review(_node(listeners=[{"portMapping": {"port": 80, "protocol": "http"}}]))
    decision = admitting.validate("VirtualNode", admitting.parse(review))
    answer = admitting.respond(review, "req-1", decision)
    assert answer["response"] == {
        "uid": "req-1",
        "allowed": False,
        "status": {
            "code": 403,
            "reason": "Forbidden",
            "message": "spec.serviceDiscovery: must be specified when a listener is specified",
        },
    }


def test_validation_refuses_a_schema_violation():
    """A port out of range is refused by the same schema `meshplane apply` checks."""
    review = _review(
        _node(
            listeners=[{"portMapping": {"port": 70000, "protocol": "http"}}],
            serviceDiscovery={"dns": {"hostname": "a"}},
        )
    )
    decision = admitting.validate("VirtualNode", admitting.parse(review))
    assert decision.allowed is False
    assert decision.message == (
        "spec.listeners[0].portMapping.port: value 70000 is above the maximum 65535"
    )


def test_validation_accepts_the_mutated_create():
    """The refs the mutating webhook designated do not make validation refuse the create."""
    review = _review(_node(awsName="vn-a_demos", meshRef={"name": "demos", "uid": "mesh-uid"}))
    assert admitting.validate("VirtualNode", admitting.parse(review)) == injecting.Decision(True)


def test_update_may_not_change_aws_name():
    """awsName is immutable on update."""
    review = _review(_node(awsName="b"), "UPDATE", old=_node(awsName="a"))
    decision = admitting.validate("VirtualNode", admitting.parse(review))
    assert decision == injecting.Decision(
        False, "spec.awsName: VirtualNode update may not change these fields: spec.awsName"
    )


def test_v1beta1_reviews_are_answered_in_v1beta1():
    """The answer keeps the request's AdmissionReview version."""
    review = {**_review(_node()), "apiVersion": "admission.k8s.io/v1beta1"}
    answer = admitting.respond(review, "req-1", injecting.Decision(True))
    assert answer == {
        "apiVersion": "admission.k8s.io/v1beta1",
        "kind": "AdmissionReview",
        "response": {"uid": "req-1", "allowed": True},
    }


def test_a_body_without_request_is_not_a_review():
    """A body that is not an AdmissionReview is a ValueError (the server answers 400)."""
    with pytest.raises(ValueError, match="not an AdmissionReview"):
        admitting.parse({"kind": "AdmissionReview"})
