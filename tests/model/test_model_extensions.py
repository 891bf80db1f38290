"""meshplane's extension tags: the mirror's format and where extensions may be set."""

from __future__ import annotations

import pytest

from meshplane.model import extensions


def test_a_mirror_names_a_node_an_optional_port_and_a_percentage() -> None:
    """`vn=25` and `vn:8080=100` parse to their parts."""
    assert extensions.parse_mirror("vn-green=25") == extensions.Mirror("vn-green", None, 25)
    assert extensions.parse_mirror("vn-green:8080=100") == extensions.Mirror("vn-green", 8080, 100)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("vn-green", "'vn-green' is not <virtualNode>[:<port>]=<percent>"),
        ("vn-green=101", "percent 101 is outside 0..100"),
        ("vn-green:0=5", "port 0 is outside 1..65535"),
        ("vn green=5", "'vn green=5' is not <virtualNode>[:<port>]=<percent>"),
    ],
)
def test_a_malformed_mirror_says_what_is_wrong(value: str, message: str) -> None:
    """Each malformed value is refused with the rule it breaks."""
    with pytest.raises(ValueError, match=r"outside|is not") as caught:
        extensions.parse_mirror(value)
    assert str(caught.value) == message


def test_extension_problems_name_the_tag_and_the_rule() -> None:
    """Unknown extensions and extensions on the wrong kind are refused; plain tags pass."""
    tags = [("team", "payments"), ("meshplane.dev/mirror", "vn=5"), ("meshplane.dev/nope", "1")]
    assert extensions.problems("route", tags) == [
        "tags[meshplane.dev/nope]: unknown meshplane extension "
        "(known: meshplane.dev/mirror, meshplane.dev/mtls)"
    ]
    assert extensions.problems("virtualNode", tags[:2]) == [
        "tags[meshplane.dev/mirror]: only valid on route resources, not virtualNode"
    ]


def test_the_mtls_tag_is_strict_or_permissive_and_only_on_meshes() -> None:
    """meshplane.dev/mtls takes STRICT or PERMISSIVE, on a mesh; anything else is refused."""
    assert extensions.problems("mesh", [("meshplane.dev/mtls", "STRICT")]) == []
    assert extensions.problems("mesh", [("meshplane.dev/mtls", "PERMISSIVE")]) == []
    assert extensions.problems("mesh", [("meshplane.dev/mtls", "strict")]) == [
        "tags[meshplane.dev/mtls]: 'strict' is not one of STRICT, PERMISSIVE"
    ]
    assert extensions.problems("virtualNode", [("meshplane.dev/mtls", "STRICT")]) == [
        "tags[meshplane.dev/mtls]: only valid on mesh resources, not virtualNode"
    ]
    assert extensions.mtls_of({"meshplane.dev/mtls": "PERMISSIVE"}) == "PERMISSIVE"
    assert extensions.mtls_of({"meshplane.dev/mtls": "bogus"}) is None
    assert extensions.mtls_of({}) is None
