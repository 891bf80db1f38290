"""IAM-style policy documents: strict parsing, wildcards, explicit Deny wins, default deny."""

from __future__ import annotations

import pytest

from meshplane.auth import policies
from meshplane.auth.policies import Decision

MESH = "arn:aws:appmesh:us-west-2:123456789012:mesh/demos"


def _policy(*statements: dict[str, object]) -> policies.Policy:
    return policies.parse({"Version": "2012-10-17", "Statement": list(statements)})


def test_wildcards_match_the_whole_value() -> None:
    """`*` spans any run (slashes too), `?` one character, and the match is anchored."""
    assert policies.wildcard_match("arn:aws:appmesh:*:*:mesh/demos/*", MESH + "/virtualNode/a")
    assert not policies.wildcard_match("arn:aws:appmesh:*:*:mesh/demos/*", MESH)
    assert policies.wildcard_match("arn:aws:appmesh:us-west-?:*", MESH)
    assert not policies.wildcard_match("arn:aws:appmesh:us-west-?:*", MESH.replace("2", "12", 1))
    assert not policies.wildcard_match("mesh/demos", MESH)
    assert policies.wildcard_match("a.b[c]", "a.b[c]")
    assert not policies.wildcard_match("a.b", "axb")


def test_actions_compare_case_insensitively_resources_exactly() -> None:
    """`appmesh:describe*` covers DescribeRoute, as IAM's actions do; ARNs are case-sensitive."""
    policy = _policy({"Effect": "Allow", "Action": "appmesh:describe*", "Resource": MESH})
    assert policy.decide("appmesh:DescribeMesh", MESH) is Decision.ALLOW
    assert policy.decide("appmesh:DescribeMesh", MESH.upper()) is Decision.IMPLICIT_DENY
    assert policy.decide("appmesh:DeleteMesh", MESH) is Decision.IMPLICIT_DENY


def test_explicit_deny_wins_over_any_allow() -> None:
    """An Allow of everything and a Deny of DeleteMesh: the Deny decides, in either order."""
    allow = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": ["appmesh:Delete*"], "Resource": [MESH]}
    for policy in (_policy(allow, deny), _policy(deny, allow)):
        assert policy.decide("appmesh:DeleteMesh", MESH) is Decision.EXPLICIT_DENY
        assert policy.decide("appmesh:DescribeMesh", MESH) is Decision.ALLOW
        assert policy.decide("appmesh:DeleteMesh", MESH + "x") is Decision.ALLOW


def test_a_single_statement_object_is_accepted() -> None:
    """`Statement` may be one object, as IAM allows."""
    policy = policies.parse(
        {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}
    )
    assert policy.decide("meshplane:ApplyManifests", "arn:aws:meshplane:x") is Decision.ALLOW


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "a policy must be a JSON object with Version and Statement"),
        ({"Statement": []}, "Version must be one of 2012-10-17, 2008-10-17"),
        ({"Version": "2012-10-17", "Statement": []}, "Statement must be an object or a non-empty"),
        (
            {"Version": "2012-10-17", "Statement": [{"Effect": "Permit"}]},
            "Statement[0]: Effect must be Allow or Deny",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "NotAction": "x", "Resource": "*"}],
            },
            "Statement[0]: unsupported keys: NotAction",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}],
            },
            "Statement[0]: Action must be a string or a non-empty list of strings",
        ),
        ({"Version": "2012-10-17", "Statement": [], "Extra": 1}, "unknown policy keys: Extra"),
    ],
)
def test_documents_that_cannot_be_applied_are_refused(document: object, message: str) -> None:
    """A policy whose meaning is not exactly what this evaluator applies is refused whole."""
    with pytest.raises(policies.PolicyError) as refused:
        policies.parse(document)
    assert str(refused.value).startswith(message)
