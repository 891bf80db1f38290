"""model.validation: every constraint the service model states, reported with field paths."""

from __future__ import annotations

import pytest

from meshplane.model import apimodel, errors, validation


def _problems(shape: str, value: object) -> list[str]:
    return validation.problems(apimodel.shape(shape), value, "spec")


def test_valid_spec_has_no_problems() -> None:
    """A complete, valid virtual node spec passes."""
    spec = {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": "a.local", "responseType": "ENDPOINTS"}},
        "backends": [{"virtualService": {"virtualServiceName": "b.local"}}],
        "logging": {"accessLog": {"file": {"path": "/dev/stdout"}}},
    }
    assert _problems("VirtualNodeSpec", spec) == []


def test_required_members_are_reported() -> None:
    """A missing required member is named with its path."""
    assert _problems("VirtualNodeSpec", {"listeners": [{"portMapping": {"port": 80}}]}) == [
        "spec.listeners[0].portMapping.protocol: is required"
    ]


def test_null_counts_as_missing() -> None:
    """A JSON null for a required member is reported as missing."""
    assert _problems("MeshSpec", {"egressFilter": {"type": None}}) == [
        "spec.egressFilter.type: is required"
    ]


def test_unknown_members_are_reported() -> None:
    """A member the shape does not have is named, with the allowed ones."""
    assert _problems("MeshSpec", {"egress": {}}) == [
        "spec.egress: unknown field (allowed: egressFilter, serviceDiscovery)"
    ]


def test_numeric_bounds() -> None:
    """Values below min and above max are both reported."""
    assert _problems("WeightedTarget", {"virtualNode": "a", "weight": 101}) == [
        "spec.weight: value 101 is above the maximum 100"
    ]
    assert _problems("WeightedTarget", {"virtualNode": "a", "weight": -1}) == [
        "spec.weight: value -1 is below the minimum 0"
    ]


def test_string_and_list_lengths() -> None:
    """String length and list length bounds are reported as such."""
    assert _problems("WeightedTarget", {"virtualNode": "", "weight": 1}) == [
        "spec.virtualNode: length 0 is below the minimum 1"
    ]
    targets = [{"virtualNode": "a", "weight": 1}] * 11
    assert _problems("HttpRouteAction", {"weightedTargets": targets}) == [
        "spec.weightedTargets: list length 11 is above the maximum 10"
    ]


def test_enums() -> None:
    """A value outside the enum lists the allowed values."""
    assert _problems("EgressFilter", {"type": "NOPE"}) == [
        "spec.type: 'NOPE' is not one of ALLOW_ALL, DROP_ALL"
    ]


def test_patterns() -> None:
    """Cloud Map attribute keys must match the model's pattern."""
    found = _problems("AwsCloudMapInstanceAttribute", {"key": "bad key", "value": "v"})
    assert found == ["spec.key: 'bad key' does not match the pattern ^[a-zA-Z0-9!-~]+$"]


def test_unions_need_exactly_one_member() -> None:
    """A union with none or two members set is reported with what was found."""
    assert _problems("VirtualServiceProvider", {}) == [
        "spec: must set exactly one of virtualNode, virtualRouter (found none)"
    ]
    both = {"virtualNode": {"virtualNodeName": "a"}, "virtualRouter": {"virtualRouterName": "b"}}
    assert _problems("VirtualServiceProvider", both) == [
        "spec: must set exactly one of virtualNode, virtualRouter "
        "(found virtualNode, virtualRouter)"
    ]


def test_types_are_checked() -> None:
    """Booleans are not integers, strings are not numbers, objects are not lists."""
    assert _problems("WeightedTarget", {"virtualNode": "a", "weight": True}) == [
        "spec.weight: must be an integer, got boolean"
    ]
    assert _problems("HttpRouteAction", {"weightedTargets": {}}) == [
        "spec.weightedTargets: must be a list, got object"
    ]
    assert _problems("MeshSpec", []) == ["spec: must be an object, got list"]
    assert _problems(
        "ClientPolicyTls", {"enforce": "yes", "validation": {"trust": {"sds": {"secretName": "s"}}}}
    ) == ["spec.enforce: must be a boolean, got string"]


def test_check_raises_bad_request_with_every_problem() -> None:
    """check() raises BadRequestException summarising all problems in one message."""
    with pytest.raises(errors.BadRequestException) as caught:
        validation.check(apimodel.shape("WeightedTarget"), {"weight": 101}, "t")
    assert caught.value.message == (
        "2 validation errors: t.virtualNode: is required; "
        "t.weight: value 101 is above the maximum 100"
    )
    assert caught.value.http_status == 400


def test_summary_caps_the_list() -> None:
    """Past ten problems the message says how many more there are."""
    found = [f"f{i}: bad" for i in range(12)]
    message = validation.summarize(found)
    assert message.startswith("12 validation errors: f0: bad; ")
    assert message.endswith("f9: bad; and 2 more")
    assert validation.summarize(["x: bad"]) == "Invalid request: x: bad"


def test_tag_list_over_its_max_is_too_many_tags_where_declared() -> None:
    """With the operation's declaration, 51 tags raise TooManyTagsException, not BadRequest."""
    shape = apimodel.operation("TagResource").input_shape
    many = [{"key": f"k{i}", "value": "v"} for i in range(51)]
    with pytest.raises(errors.TooManyTagsException) as caught:
        validation.check(shape, {"resourceArn": "", "tags": many}, tag_limit_error=True)
    assert caught.value.message == (
        "tags: 51 tags in one request; a resource can carry at most 50 and nothing was applied"
    )
    with pytest.raises(errors.BadRequestException) as plain:
        validation.check(shape, {"resourceArn": "arn", "tags": many})
    assert plain.value.message == "Invalid request: tags: list length 51 is above the maximum 50"
    fifty = many[:50]
    assert validation.problems(shape, {"resourceArn": "arn", "tags": fifty}) == []


def test_lone_surrogates_are_refused_in_every_string() -> None:
    """A lone UTF-16 surrogate (valid JSON, not text) is a BadRequest naming the field."""
    shape = apimodel.operation("CreateMesh").input_shape
    found = validation.problems(shape, {"meshName": "m\ud800", "clientToken": "\udfff"})
    assert found == [
        "clientToken: contains a lone UTF-16 surrogate (U+DFFF) at position 0, which is not text",
        "meshName: contains a lone UTF-16 surrogate (U+D800) at position 1, which is not text",
    ]
