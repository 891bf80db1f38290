"""``get``'s script-friendly printers, in kubectl's formats so shell habits carry over.

``-o jsonpath=…``, ``-o custom-columns=…`` and ``--sort-by``. (``-o name`` is
:func:`meshplane.cli.calling.print_names`: it needs no jsonpath parser, whose dataclasses
import :mod:`inspect`.)

Every printer takes the objects as the server rendered them (the manifest
documents ``-o json`` shows) and returns text; refusals are :class:`jsonpath.Unsupported`
with a one-line message, which ``get`` prints and exits 1 on.
"""

from __future__ import annotations

from typing import Any

from meshplane.cli import jsonpath

_MISSING = "<none>"


def jsonpath_text(template: str, items: list[dict[str, Any]], *, single: bool) -> str:
    """The template over the object (``get KIND NAME``) or over the List, as kubectl does."""
    nodes = jsonpath.parse(template)
    root: Any = items[0] if single else {"apiVersion": "v1", "kind": "List", "items": items}
    return jsonpath.render(nodes, root)


def _columns(spec: str) -> list[tuple[str, jsonpath.Path]]:
    columns = []
    for column in spec.split(","):
        header, colon, path = column.partition(":")
        if not colon or not header or not path:
            raise jsonpath.Unsupported(
                f'unexpected custom-columns spec: "{column}", expected <header>:<json-path-expr>'
            )
        columns.append((header, jsonpath.parse_path(path)))
    return columns


def custom_columns(spec: str, items: list[dict[str, Any]]) -> str:
    """``NAME:.metadata.name,ARN:.status.virtualNodeARN``: a header and a row per object.

    Cells are aligned as kubectl's tabwriter does (three spaces of padding, six
    characters at least, the last column unpadded); a field an object lacks shows ``<none>``.
    """
    columns = _columns(spec)
    rows = [[header for header, _ in columns]]
    for item in items:
        row = []
        for _, path in columns:
            found = jsonpath.values(path, item)
            row.append(",".join(jsonpath.show(value) for value in found) if found else _MISSING)
        rows.append(row)
    widths = [max(len(row[at]) for row in rows) for at in range(len(columns))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(max(width + 3, 6)) for cell, width in zip(row[:-1], widths, strict=False)
        ]
        lines.append("".join(cells) + row[-1])
    return "\n".join(lines)


def _order(value: Any) -> tuple[int, Any]:
    # Numbers before strings before anything else, so mixed fields still sort; missing first.
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, jsonpath.show(value))


def sort_by(expression: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` ordered by the field ``expression`` names (``.metadata.name``); stable."""
    path = jsonpath.parse_path(expression)

    def key(item: dict[str, Any]) -> tuple[int, Any]:
        found = jsonpath.values(path, item)
        return _order(found[0] if found else None)

    return sorted(items, key=key)
