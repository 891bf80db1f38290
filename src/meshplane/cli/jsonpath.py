r"""The small part of kubectl's JSONPath that ``get -o jsonpath=…`` and ``--sort-by`` accept.

Operators script ``kubectl get -o jsonpath='{.items[*].metadata.name}'`` daily; the
same strings work here. A full JSONPath engine (filters, slices, unions, recursive
descent) is not worth its weight for a handful of object kinds, so this module
understands exactly:

- field paths: ``.metadata.name``, ``.spec.x.y``, with ``[*]`` or ``[N]`` after a
  field (``.items[*].metadata.name``, ``.status.conditions[0].type``);
- ``{range PATH}…{end}``, whose body is evaluated once per value of ``PATH``;
- literal text outside braces and quoted strings inside them (``{"\n"}``, ``{"\t"}``).

Anything else is refused by :func:`parse` with a :class:`Unsupported` whose message
is one line naming the construct, so a script never silently gets a wrong answer.
As in ``kubectl get -o jsonpath``, a missing field yields nothing rather than an
error; several values of one expression are joined by a space.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

_FIELD = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)((?:\[(?:\*|\d+)\])*)")
_INDEX = re.compile(r"\[(\*|\d+)\]")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class Unsupported(ValueError):
    """A template uses JSONPath this subset does not understand; the message is one line."""


Step = tuple[str, list[str]]
"""One field and the indexes after it (``*`` or digits): ``.items[*]`` → ``("items", ["*"])``."""


@dataclasses.dataclass(frozen=True)
class Text:
    """Literal output."""

    text: str


@dataclasses.dataclass(frozen=True)
class Path:
    """A field path; prints every value it reaches."""

    steps: tuple[Step, ...]


@dataclasses.dataclass(frozen=True)
class Range:
    """``{range PATH}BODY{end}``: BODY once per value, with that value as the root."""

    over: Path
    body: tuple[Text | Path | Range, ...]


Node = Text | Path | Range


def parse_path(expression: str) -> Path:
    """A field path such as ``.spec.x.y`` or ``.items[*].metadata.name``; braces optional."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text.startswith("."):
        raise Unsupported(f"unsupported JSONPath {expression!r}: a field path starts with '.'")
    if text == ".":
        return Path(())
    steps: list[Step] = []
    at = 0
    while at < len(text):
        found = _FIELD.match(text, at)
        if found is None:
            raise Unsupported(
                f"unsupported JSONPath {expression!r} at {text[at:]!r}: only .field, [*] "
                "and [N] are supported"
            )
        steps.append((found.group(1), _INDEX.findall(found.group(2))))
        at = found.end()
    return Path(tuple(steps))


def _expressions(template: str) -> list[tuple[bool, str]]:
    """Split into (is_expression, text) pieces; braces inside quotes do not count."""
    pieces: list[tuple[bool, str]] = []
    at = 0
    while at < len(template):
        start = template.find("{", at)
        if start < 0:
            pieces.append((False, template[at:]))
            break
        if start > at:
            pieces.append((False, template[at:start]))
        end, quoted = start + 1, False
        while end < len(template) and (quoted or template[end] != "}"):
            if template[end] == "\\" and quoted:
                end += 1
            elif template[end] == '"':
                quoted = not quoted
            end += 1
        if end >= len(template):
            raise Unsupported(f"unclosed '{{' in JSONPath template {template!r}")
        pieces.append((True, template[start + 1 : end].strip()))
        at = end + 1
    return pieces


def _literal(expression: str) -> str:
    body, out, at = expression[1:-1], [], 0
    while at < len(body):
        if body[at] == "\\" and at + 1 < len(body):
            if body[at + 1] not in _ESCAPES:
                raise Unsupported(f"unsupported escape '\\{body[at + 1]}' in {expression}")
            out.append(_ESCAPES[body[at + 1]])
            at += 2
        else:
            out.append(body[at])
            at += 1
    return "".join(out)


def parse(template: str) -> tuple[Node, ...]:
    """The template's nodes; :class:`Unsupported` (one line) for anything outside the subset."""
    stack: list[tuple[Path | None, list[Node]]] = [(None, [])]
    for is_expression, text in _expressions(template):
        if not is_expression:
            stack[-1][1].append(Text(text))
        elif len(text) >= 2 and text[0] == '"' and text[-1] == '"':
            stack[-1][1].append(Text(_literal(text)))
        elif text.startswith("range ") or text == "range":
            stack.append((parse_path(text[len("range") :]), []))
        elif text == "end":
            if len(stack) == 1:
                raise Unsupported(f"{{end}} without {{range}} in JSONPath template {template!r}")
            over, body = stack.pop()
            assert over is not None
            stack[-1][1].append(Range(over, tuple(body)))
        else:
            stack[-1][1].append(parse_path("{" + text + "}"))
    if len(stack) > 1:
        raise Unsupported(f"{{range}} without {{end}} in JSONPath template {template!r}")
    return tuple(stack[0][1])


def values(path: Path, root: Any) -> list[Any]:
    """Every value ``path`` reaches from ``root``; missing fields and indexes reach nothing."""
    current = [root]
    for field, indexes in path.steps:
        current = [item[field] for item in current if isinstance(item, dict) and field in item]
        for index in indexes:
            reached: list[Any] = []
            for item in current:
                if not isinstance(item, list):
                    continue
                if index == "*":
                    reached += item
                elif int(index) < len(item):
                    reached.append(item[int(index)])
            current = reached
    return current


def show(value: Any) -> str:
    """A value as kubectl prints it: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def render(nodes: tuple[Node, ...], root: Any) -> str:
    """The template's output for ``root``."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Path):
            out.append(" ".join(show(value) for value in values(node, root)))
        else:
            out += [render(node.body, value) for value in values(node.over, root)]
    return "".join(out)
