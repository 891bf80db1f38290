r"""Which header, path and metadata ``regex`` values Envoy's RE2 certainly refuses.

A route whose regex RE2 cannot compile is NACKed by every Envoy that receives
it, so it is better refused at write time with a message naming the field. But
Python's :mod:`re` is not RE2: each accepts syntax the other refuses (RE2 has
``\pL``, ``\Q…\E``, ``\z``, ``[[:alpha:]]``, ``(?<name>…)``, ``(?U)`` and flags
mid-pattern; Python reads ``x{,3}`` as a repetition where RE2 reads a literal).
So a pattern is refused only when Python fails to compile it with one of a few
errors that RE2 raises as well (unbalanced parentheses or brackets, a trailing
backslash, a repetition of nothing or of a repetition, a reversed range), and
it uses none of RE2's own syntax. Everything else passes;
``tests/model/test_model_regexes.py`` checks each refusal against the real
Envoy's RE2. Patterns Python compiles but RE2 refuses (backreferences,
lookaround, repetition counts over 1000, programs over Envoy's size limit) are
not caught here.
"""

from __future__ import annotations

import re
import warnings

# Syntax RE2 has and Python lacks (or reads differently): never judge such a pattern.
_RE2_ONLY = re.compile(
    r"\\[pPQECz]"  # \pL \p{Greek} \PL \Q...\E \C \z
    r"|\\x\{"  # \x{10FFFF}
    r"|\[:"  # [[:alpha:]]
    r"|\(\?<(?![=!])"  # (?<name>...)
    r"|\(\?[a-zA-Z-]*U"  # the ungreedy flag
    r"|\{,"  # x{,3}: a repetition to Python, a literal to RE2
)
_REVERSED_RANGE = re.compile(r"bad character range ([^\\])-([^\\])")


def _reason(pattern: str, error: re.error) -> str | None:
    """Why RE2 refuses ``pattern`` too, if Python's ``error`` is one RE2 shares."""
    message, at = error.msg, error.pos if error.pos is not None else 0
    if message.startswith("missing ), unterminated subpattern"):
        return f"the '(' at position {at} is never closed"
    if message == "unbalanced parenthesis":
        return f"the ')' at position {at} closes nothing"
    if message == "unterminated character set":
        return f"the '[' at position {at} is never closed"
    if message == "bad escape (end of pattern)":
        return "it ends with a lone backslash"
    if message == "nothing to repeat" and (at == 0 or pattern[at - 1] in "(|"):
        return f"the repetition at position {at} has nothing to repeat"
    if message == "multiple repeat":
        return f"the repetition at position {at} repeats a repetition"
    if message == "min repeat greater than max repeat":
        return f"the repetition at position {at} has its minimum above its maximum"
    reversed_range = _REVERSED_RANGE.fullmatch(message)
    if reversed_range:
        low, high = reversed_range.groups()
        return f"the character range {low}-{high} is reversed"
    return None


def certainly_invalid(pattern: str) -> str | None:
    """Why Envoy's RE2 cannot compile ``pattern``, or ``None`` if it may well compile."""
    if _RE2_ONLY.search(pattern):
        return None
    try:
        with warnings.catch_warnings():
            # Python warns about nested sets ("[[") and set operators ("--"), which RE2
            # reads as plain characters; a warning is not a verdict.
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as error:
        return _reason(pattern, error)
    return None
