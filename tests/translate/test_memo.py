"""The identity cache behind per-spec memos: same object reused, anything else computed."""

from __future__ import annotations

from meshplane.translate.memo import IdentityCache


def test_the_same_object_is_computed_once_an_equal_one_again() -> None:
    """Identity, not equality, decides: an equal list is a different key."""
    calls: list[list[int]] = []

    def compute(key: list[int]) -> int:
        calls.append(key)
        return sum(key)

    cache: IdentityCache[list[int], int] = IdentityCache(compute)
    first = [1, 2]
    assert (cache(first), cache(first)) == (3, 3)
    assert cache([1, 2]) == 3
    assert len(calls) == 2


def test_past_its_limit_it_starts_over() -> None:
    """The third key clears a two-entry cache, so the first is computed again."""
    calls: list[str] = []

    def compute(key: str) -> int:
        calls.append(key)
        return len(key)

    cache: IdentityCache[str, int] = IdentityCache(compute, limit=2)
    a, b, c = "a", "bb", "ccc"
    for key in (a, b, c, a):
        cache(key)
    assert calls == ["a", "bb", "ccc", "a"]
