r"""Which header, path and metadata ``regex`` values Envoy refuses: judged by RE2 itself.

A route whose regex RE2 cannot compile is NACKed by every Envoy that receives
it, so it is refused at write time with a message naming the field. The verdict
comes from Google's RE2 (the ``google-re2`` binding, the library Envoy links), so
the API accepts exactly the syntax Envoy accepts: lookbehind, backreferences and
repetitions over 1000 are refused, ``\pL``, ``\Q…\E`` and ``x{,3}`` pass. On top
of the syntax, Envoy refuses a compiled program larger than its default
``re2.max_program_size.error_level`` of 100; the binding measures the same size
for ASCII patterns (``a{96}`` is 100 and passes, ``a{97}`` is 101 and is NACKed),
but far larger ones for Unicode classes (``\pL+`` is 1201 here and Envoy takes
it), so the size is judged only for patterns without ``\p``/``\P`` classes.

When RE2 refuses a pattern, the reason is worded from Python's :mod:`re` where
both agree on the fault (unbalanced parentheses or brackets, a trailing
backslash, a repetition of nothing or of a repetition, a reversed range), and is
RE2's own message otherwise. ``tests/model/test_model_regexes.py`` checks the
verdicts against the real Envoy.
"""

from __future__ import annotations

import re
import warnings

import re2

ENVOY_MAX_PROGRAM_SIZE = 100
"""Envoy's default ``re2.max_program_size.error_level``: larger programs are NACKed."""
_UNICODE_CLASS = re.compile(r"\\[pP]")

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


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is an answer to the caller, not a log line
    return options


_OPTIONS = _options()


def _python_reason(pattern: str) -> str | None:
    """Python's wording of the fault, when it sees one of the faults RE2 shares."""
    try:
        with warnings.catch_warnings():
            # Python warns about nested sets ("[[") and set operators ("--"), which RE2
            # reads as plain characters; a warning is not a verdict.
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as error:
        return _reason(pattern, error)
    except (OverflowError, RecursionError):  # x{4294967296}, deep nesting: RE2 has said why
        return None
    return None


def certainly_invalid(pattern: str) -> str | None:
    """Why Envoy's RE2 refuses ``pattern``, or ``None`` if Envoy compiles it."""
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else b""
        said = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        return _python_reason(pattern) or f"RE2 refuses it ({said})"
    size = int(compiled.programsize)
    if size > ENVOY_MAX_PROGRAM_SIZE and not _UNICODE_CLASS.search(pattern):
        return (
            f"its RE2 program size {size} is above Envoy's limit of {ENVOY_MAX_PROGRAM_SIZE} "
            "(shorten repetitions or split the match)"
        )
    return None
