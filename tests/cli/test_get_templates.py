"""The JSONPath subset, custom columns and `-l` parsing behind `meshplane get`, without a server."""

from __future__ import annotations

import pytest

from meshplane.cli import jsonpath, labelselectors, printing
from meshplane.model import selectors

LIST = {
    "kind": "List",
    "items": [
        {"metadata": {"name": "vn-a"}, "spec": {"x": {"y": 1}}, "status": {"arn": "arn:a"}},
        {"metadata": {"name": "vn-b"}, "spec": {"x": {"y": True}}},
    ],
}


def render(template: str, root: object) -> str:
    return jsonpath.render(jsonpath.parse(template), root)


def test_fields_lists_and_literals_render_as_kubectl() -> None:
    """Field paths, [*], [N], quoted "\\n" and literal text print what kubectl prints."""
    assert render("{.items[*].metadata.name}", LIST) == "vn-a vn-b"
    assert render("{.items[1].spec.x.y}", LIST) == "true"
    assert render('first={.items[0].metadata.name}{"\\n"}', LIST) == "first=vn-a\n"
    assert render("{.items[0].spec.x}", LIST) == '{"y":1}'
    assert render("{.items[5].metadata.name}{.nope.deeper}", LIST) == ""


def test_range_repeats_its_body_per_value() -> None:
    """{range .items[*]}…{end} evaluates the body with each item as the root."""
    template = '{range .items[*]}{.metadata.name}:{.status.arn}{"\\t"}{end}'
    assert render(template, LIST) == "vn-a:arn:a\tvn-b:\t"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{.items[?(@.x)]}",
            "unsupported JSONPath '{.items[?(@.x)]}' at '[?(@.x)]': only .field, [*] and [N] "
            "are supported",
        ),
        (
            "{..name}",
            "unsupported JSONPath '{..name}' at '..name': only .field, [*] and [N] are supported",
        ),
        ("{$.metadata}", "unsupported JSONPath '{$.metadata}': a field path starts with '.'"),
        ("{range .items[*]}x", "{range} without {end} in JSONPath template '{range .items[*]}x'"),
        ("x{end}", "{end} without {range} in JSONPath template 'x{end}'"),
        ("{.metadata", "unclosed '{' in JSONPath template '{.metadata'"),
        ('{"\\q"}', "unsupported escape '\\q' in \"\\q\""),
    ],
)
def test_anything_outside_the_subset_is_refused_in_one_line(template: str, message: str) -> None:
    """Filters, recursive descent, $ roots and unbalanced range/end are named, not guessed."""
    with pytest.raises(jsonpath.Unsupported) as refused:
        jsonpath.parse(template)
    assert str(refused.value) == message


def test_custom_columns_align_like_kubectls_tabwriter() -> None:
    """Headers as given, three spaces of padding, <none> for a missing field."""
    text = printing.custom_columns("NAME:.metadata.name,ARN:.status.arn", LIST["items"])
    assert text == "NAME   ARN\nvn-a   arn:a\nvn-b   <none>"
    with pytest.raises(jsonpath.Unsupported) as refused:
        printing.custom_columns("NAME", [])
    assert str(refused.value) == (
        'unexpected custom-columns spec: "NAME", expected <header>:<json-path-expr>'
    )


def test_sort_by_orders_by_a_field_missing_first() -> None:
    """--sort-by sorts on the named field; objects without it come first."""
    items = [{"n": "b", "v": 2}, {"n": "a"}, {"n": "c", "v": 1}]
    assert [i["n"] for i in printing.sort_by(".v", items)] == ["a", "c", "b"]
    assert [i["n"] for i in printing.sort_by("{.n}", items)] == ["a", "b", "c"]


def test_label_selector_strings_become_selector_documents() -> None:
    """=, ==, !=, KEY and !KEY map onto matchLabels and matchExpressions."""
    parsed = labelselectors.parse("app=web, tier==front,color!=blue,canary,!legacy")
    assert parsed == {
        "matchLabels": {"app": "web", "tier": "front"},
        "matchExpressions": [
            {"key": "color", "operator": "NotIn", "values": ["blue"]},
            {"key": "canary", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    labels = {"app": "web", "tier": "front", "canary": "1"}
    assert selectors.matches(parsed, labels)
    assert not selectors.matches(parsed, {**labels, "color": "blue"})
    assert not selectors.matches(parsed, {**labels, "legacy": "yes"})


def test_set_based_selectors_are_refused_in_one_line() -> None:
    """`env in (a,b)` is not read as a key; the message says what is supported."""
    with pytest.raises(labelselectors.Invalid) as refused:
        labelselectors.parse("env in (a")
    assert (
        str(refused.value)
        == 'unable to parse requirement: invalid label key "env in (a" in "env in (a"'
    )
