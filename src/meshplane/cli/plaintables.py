"""``get``'s and ``proxy-status``'s tables without rich, character for character as rich's.

Importing rich costs more CPU than the rest of ``meshplane get`` together (~90 ms of a
budget of 100), and the hot commands' tables are simple: no wrapping, one line per row. So
when the output is not a terminal (a pipe, a file, a script: what rich prints without
styles) and every cell is plain text, these functions lay the table out themselves; for a
terminal (bold headers, the terminal's width) or a cell rich would read differently, they
answer ``None`` and the caller asks rich as before. ``tests/cli/test_plaintables.py``
compares both renderings on the same rows.

A cell is plain when it is printable ASCII without ``[`` (rich reads console markup in
cells) and every ``:name:`` in it is a piece of an ARN (rich replaces emoji codes such as
``:ok:``; ``arn:aws:appmesh:us-west-2:123456789012:…`` holds ``aws``, ``appmesh``, a region
and a 12-digit account, none of them an emoji code). Imports only the standard library.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Sequence

_COLON_NAMES = re.compile(r"(?=:(\S*?):)")
"""Every ``:name:`` rich could take for an emoji code, overlapping ones included."""
_ARN_PIECE = re.compile(r"aws|appmesh|[a-z]{2}(-[a-z]+)+-\d+|\d{12}")
"""The pieces between an App Mesh ARN's colons: partition, service, region, account."""
PIPE_WIDTH = 1000
"""The width ``get`` gives rich when the output is not a terminal (never wrap an ARN)."""

_BOX = {  # rich's default box (HEAVY_HEAD): heavy header, light body
    "top": ("┏", "━", "┳", "┓"),
    "head": ("┃", "┃", "┃"),
    "rule": ("┡", "━", "╇", "┩"),
    "row": ("│", "│", "│"),
    "bottom": ("└", "─", "┴", "┘"),
}


def _plain(cell: str) -> bool:
    if not (cell.isascii() and cell.isprintable()) or "[" in cell:
        return False
    return all(_ARN_PIECE.fullmatch(m.group(1)) for m in _COLON_NAMES.finditer(cell))


def applies(cells: Sequence[Sequence[str]]) -> bool:
    """Whether rich would print ``cells`` without styles and as they are (not a terminal)."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return False  # rich may treat a pipe as a terminal then: let it decide
    if sys.stdout.isatty():
        return False
    return all(_plain(cell) for row in cells for cell in row)


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]


def widest(*widths: Sequence[int]) -> list[int]:
    """Column by column, the largest of several width lists (missing columns count 0)."""
    return [max(column) for column in itertools.zip_longest(*widths, fillvalue=0)]


def widths(
    headers: Sequence[str], rows: Sequence[Sequence[str]], least: Sequence[int] = ()
) -> list[int]:
    """Each column's width, its header included, and at least ``least`` (``get -w``)."""
    return widest(least[: len(headers)], _widths(headers, rows))


def grid(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    header: bool = True,
    min_widths: Sequence[int] = (),
) -> str | None:
    """``get``'s borderless table (two spaces between columns, lines right-stripped).

    Columns are at least ``min_widths`` wide (rich's ``min_width``, as ``get -w`` asks).
    ``None`` when rich must print it: see :func:`applies`, or wider than :data:`PIPE_WIDTH`.
    """
    lines = [headers, *rows] if header else list(rows)
    if not lines or not applies(lines):
        return None
    # rich measures the header only when it shows it
    widths = widest(min_widths[: len(headers)], _widths(lines[0], lines[1:]))
    if sum(widths) + 2 * (len(widths) - 1) > PIPE_WIDTH:
        return None
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def boxed(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *, width: int
) -> str | None:
    """Rich's default boxed table under a left-justified ``title``, at most ``width`` wide.

    ``None`` when rich must print it: see :func:`applies`, or it would need wrapping.
    """
    if not applies([[title], headers, *rows]):
        return None
    widths = _widths(headers, rows)
    total = sum(widths) + 3 * len(widths) + 1
    if total > width or len(title) > total:
        return None

    def rule(edge: tuple[str, ...]) -> str:
        left, fill, cross, right = edge
        return left + cross.join(fill * (w + 2) for w in widths) + right

    def line(cells: Sequence[str], edge: tuple[str, ...]) -> str:
        left, middle, right = edge
        padded = (f" {cell.ljust(w)} " for cell, w in zip(cells, widths, strict=True))
        return left + middle.join(padded) + right

    out = [title.ljust(total), rule(_BOX["top"]), line(headers, _BOX["head"]), rule(_BOX["rule"])]
    out += [line(row, _BOX["row"]) for row in rows]
    out.append(rule(_BOX["bottom"]))
    return "\n".join(out)
