"""model.regexes: refuse only the regexes Envoy's RE2 certainly cannot compile.

The verdicts are pinned exactly, and checked against the real thing: every
pattern refused here is refused by ``envoy --mode validate`` (RE2 inside a route
match), and every pattern let through that RE2 compiles really compiles there.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshplane.envoy.binary import binary_path
from meshplane.model import regexes

REFUSED = {
    "(abc": "the '(' at position 0 is never closed",
    "(?i)(abc": "the '(' at position 4 is never closed",
    "(?:a": "the '(' at position 0 is never closed",
    "\\)(": "the '(' at position 2 is never closed",
    "abc)": "the ')' at position 3 closes nothing",
    ")(": "the ')' at position 0 closes nothing",
    "[abc": "the '[' at position 0 is never closed",
    "[^]": "the '[' at position 0 is never closed",
    "[\\]": "the '[' at position 0 is never closed",
    "abc\\": "it ends with a lone backslash",
    "*a": "the repetition at position 0 has nothing to repeat",
    "(*)": "the repetition at position 1 has nothing to repeat",
    "a|*": "the repetition at position 2 has nothing to repeat",
    "{2}": "the repetition at position 0 has nothing to repeat",
    "a**": "the repetition at position 2 repeats a repetition",
    "a{2}{3}": "the repetition at position 4 repeats a repetition",
    "a*??": "the repetition at position 3 repeats a repetition",
    "a{2,}*": "the repetition at position 5 repeats a repetition",
    "a{2,1}": "the repetition at position 2 has its minimum above its maximum",
    "[z-a]": "the character range z-a is reversed",
    "(?i)[b-a-c]": "the character range b-a is reversed",
    # Python compiles these; RE2 (and so Envoy) does not.
    "(?<=a)b": "RE2 refuses it (invalid perl operator: (?<=)",
    "(?<!a)b": "RE2 refuses it (invalid perl operator: (?<!)",
    "(?=a)": "RE2 refuses it (invalid perl operator: (?=)",
    "(a)\\1": "RE2 refuses it (invalid escape sequence: \\1)",
    "a{1001}": "RE2 refuses it (invalid repetition size: {1001})",
    "a{97}": "its RE2 program size 101 is above Envoy's limit of 100 (shorten repetitions or "
    "split the match)",
}

# RE2 compiles these although Python's re does not: they must pass.
RE2_ONLY = [
    "\\pL+",
    "\\p{Greek}",
    "\\Qa(b\\E",
    "\\Q(",
    "abc\\z",
    "\\C",
    "[[:alpha:]]+",
    "(?<name>a)",
    "(?U)a*",
    "a(?i)b",
    "\\x{41}",
    "^*",
    "\\b*",
    "{,3}",
    "x{,3}{2}",
    "a|{,2}",
    "[\\d-z]",
    "(?P<n>a)(?P<n>b)",
]

# Both compile these; Python-only or RE2-only meanings aside, they must pass.
ORDINARY = ["/api/v[0-9]+/.*", "(?i)^bearer .+$", "[a&&b]", "a{,", "[]a]", "(?:)*", "a|"]
# Python's re raises OverflowError on the count; RE2 reads it as literal text, Envoy too.
ORDINARY += ["a{4294967296}", "a{96}"]


@pytest.mark.parametrize(("pattern", "reason"), sorted(REFUSED.items()))
def test_certainly_invalid_patterns_are_refused(pattern: str, reason: str) -> None:
    """Unbalanced groups and sets, lone backslashes, bad repetitions and reversed ranges."""
    assert regexes.certainly_invalid(pattern) == reason


@pytest.mark.parametrize("pattern", RE2_ONLY + ORDINARY)
def test_patterns_re2_may_compile_pass(pattern: str) -> None:
    """RE2-only syntax, and anything Python compiles, is never refused."""
    assert regexes.certainly_invalid(pattern) is None


def _validates(tmp_path: Path, pattern: str) -> bool:
    """Does the real Envoy accept a route matching a header and the path by ``pattern``?"""
    router = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    manager = (
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager"
    )
    regex = {"safe_regex": {"regex": pattern}}
    route: dict[str, Any] = {
        "match": {**regex, "headers": [{"name": "x", "string_match": regex}]},
        "direct_response": {"status": 200},
    }
    hcm = {
        "@type": manager,
        "stat_prefix": "check",
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": router}}],
        "route_config": {
            "name": "check",
            "virtual_hosts": [{"name": "check", "domains": ["*"], "routes": [route]}],
        },
    }
    listener = {
        "name": "check",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps({"static_resources": {"listeners": [listener]}}))
    done = subprocess.run(
        [str(binary_path()), "--mode", "validate", "-c", str(path), "-l", "critical"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode == 0


@pytest.mark.integration
def test_verdicts_agree_with_envoys_re2(tmp_path: Path) -> None:
    """Envoy refuses every refused pattern and accepts every RE2-only and ordinary one."""
    wrong = [p for p in REFUSED if _validates(tmp_path, p)]
    wrong += [p for p in RE2_ONLY + ORDINARY if not _validates(tmp_path, p)]
    assert wrong == []
