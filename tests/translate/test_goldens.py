"""Golden tests: every case file translates to exactly its reviewed golden JSON.

Set REFRESH_GOLDENS=1 (``make goldens``) to rewrite the goldens after an
intended change, then read the diff in review.
"""

from __future__ import annotations

import os

import pytest

from meshplane.translate import build

from . import casefiles


@pytest.mark.parametrize("name", casefiles.case_names())
def test_case_matches_golden(name: str) -> None:
    """The translation of a case equals its golden file byte for byte."""
    case = casefiles.load(name)
    rendered = casefiles.render(build(case.snapshot, case.node))
    golden = casefiles.GOLDENS / f"{name}.json"
    if os.environ.get("REFRESH_GOLDENS") == "1":
        golden.write_text(rendered)
    assert golden.exists(), f"no golden for {name}; run with REFRESH_GOLDENS=1"
    assert rendered == golden.read_text()


@pytest.mark.parametrize("name", casefiles.case_names())
def test_translation_is_deterministic(name: str) -> None:
    """Two builds of the same input serialize to identical bytes."""
    case = casefiles.load(name)
    first, second = build(case.snapshot, case.node), build(case.snapshot, case.node)
    assert first == second
    for a, b in zip(
        first.listeners + first.clusters, second.listeners + second.clusters, strict=True
    ):
        assert a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def test_every_golden_has_a_case() -> None:
    """No stale golden outlives its case file."""
    goldens = sorted(path.stem for path in casefiles.GOLDENS.glob("*.json"))
    assert goldens == casefiles.case_names()
