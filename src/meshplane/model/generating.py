"""Writes :mod:`meshplane.model.specs_generated` from botocore's App Mesh service model.

The seven resource specs (``MeshSpec`` … ``GatewayRouteSpec``) and every shape
they reach become frozen, slotted dataclasses with snake_case attributes, a
``WIRE`` table (attribute → camelCase wire name), ``from_wire`` and
``to_wire``. Lists become tuples, enums ``Literal`` aliases, unions structures
whose members are all optional (the union rule itself is validation's job).
The model is the specification, so the classes are derived, never written by
hand: ``make models`` regenerates the module, and a test fails when the
committed module differs from what this generator writes now.

Run as ``python -m meshplane.model.generating [PATH]``; the output is passed
through ``ruff format`` so the committed file is what ``make check`` accepts.
"""

from __future__ import annotations

import html
import keyword
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import botocore

from meshplane.model import apimodel

ROOTS = (
    "MeshSpec",
    "VirtualNodeSpec",
    "VirtualServiceSpec",
    "VirtualRouterSpec",
    "RouteSpec",
    "VirtualGatewaySpec",
    "GatewayRouteSpec",
)
"""The resource specs; everything they reach is generated too."""

TARGET = pathlib.Path(__file__).with_name("specs_generated.py")

_SCALARS = {"string": "str", "integer": "int", "long": "int", "boolean": "bool"}
_PARSERS = {"string": "_w.string", "integer": "_w.integer", "long": "_w.integer"}
_PARSERS["boolean"] = "_w.boolean"


def snake(name: str) -> str:
    """``portMapping`` → ``port_mapping``, ``http2Route`` → ``http2_route``."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    text = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", text).lower()
    return f"{text}_" if keyword.iskeyword(text) else text


def _reachable() -> dict[str, Any]:
    """Every shape the roots reach, by name."""
    found: dict[str, Any] = {}

    def walk(shape: Any) -> None:
        if shape.name in found:
            return
        found[shape.name] = shape
        if shape.type_name == "structure":
            for member in shape.members.values():
                walk(member)
        elif shape.type_name == "list":
            walk(shape.member)
        elif shape.type_name not in _SCALARS:
            raise NotImplementedError(f"{shape.name}: {shape.type_name}")

    for root in ROOTS:
        walk(apimodel.shape(root))
    return found


def _summary(shape: Any) -> str:
    """The first sentence of the shape's documentation, as plain ASCII-quoted text."""
    text = html.unescape(re.sub(r"<[^>]+>", "", shape.documentation or "")).strip()
    text = " ".join(text.split()).replace("\u2019", "'").replace("\u201c", "'")
    text = text.replace("\u201d", "'").replace("\\", "/").replace('"', "'")
    sentence = text.split(". ")[0].rstrip(".")
    return f"{sentence}." if sentence else ""


def _enum(shape: Any) -> bool:
    return shape.type_name == "string" and bool(shape.enum)


def _annotation(shape: Any) -> str:
    """The Python type of a member of this shape."""
    if shape.type_name == "structure" or _enum(shape):
        return str(shape.name)
    if shape.type_name == "list":
        return f"tuple[{_annotation(shape.member)}, ...]"
    return _SCALARS[shape.type_name]


def _parser(shape: Any) -> str:
    """The expression that parses a wire value of this shape (``Parse[T]``)."""
    if shape.type_name == "structure":
        return f"{shape.name}.from_wire"
    if _enum(shape):
        return f"_{snake(shape.name)}"
    if shape.type_name == "list":
        return f"_w.items({_parser(shape.member)})"
    return _PARSERS[shape.type_name]


def _dumper(shape: Any, value: str) -> str:
    """The expression that writes ``value`` (of this shape) back as wire JSON."""
    if shape.type_name == "structure":
        return f"{value}.to_wire()"
    if shape.type_name == "list":
        if shape.member.type_name in ("structure", "list"):
            return f"[{_dumper(shape.member, 'item')} for item in {value}]"
        return f"list({value})"
    return value


def _doc(summary: str, indent: str, body: str = "") -> list[str]:
    """A docstring: a one-line summary, then ``body`` wrapped to the line length."""
    if not body:
        return [f'{indent}"""{summary}"""']
    wrapped = textwrap.wrap(body, 96 - len(indent))
    return [f'{indent}"""{summary}', "", *(f"{indent}{line}" for line in wrapped), f'{indent}"""']


def _enum_lines(shape: Any) -> Iterator[str]:
    values = ", ".join(f'"{value}"' for value in shape.enum)
    constant = snake(shape.name).upper()
    yield f"{shape.name} = Literal[{values}]"
    yield from _doc(f"``{shape.name}``: the enum's wire values.", "")
    yield f"{constant}: tuple[{shape.name}, ...] = ({values},)"
    yield ""
    yield ""
    yield f"def _{snake(shape.name)}(value: object, path: str) -> {shape.name}:"
    yield f"    return cast({shape.name}, _w.choice(value, path, {constant}))"


def _structure_lines(shape: Any) -> Iterator[str]:
    name = shape.name
    required = set(shape.required_members)
    members = list(shape.members.items())
    yield "@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)"
    yield f"class {name}:"
    yield from _doc(f"The ``{name}`` shape.", "    ", _summary(shape))
    yield ""
    for wire, member in members:
        annotation = _annotation(member)
        if wire in required:
            yield f"    {snake(wire)}: {annotation}"
        else:
            yield f"    {snake(wire)}: {annotation} | None = None"
    if members:
        yield ""
    table = ", ".join(f'"{snake(wire)}": "{wire}"' for wire, _ in members)
    yield f"    WIRE: ClassVar[Mapping[str, str]] = {{{table}}}"
    yield '    """Attribute name → camelCase wire name."""'
    yield ""
    yield "    @classmethod"
    yield f'    def from_wire(cls, value: object, path: str = "{name}") -> {name}:'
    yield '        """Parse the wire JSON; unknown members are refused (:class:`SpecError`)."""'
    if not members:
        yield "        _w.structure(value, path, cls.WIRE.values())"
        yield "        return cls()"
    else:
        yield "        data = _w.structure(value, path, cls.WIRE.values())"
        yield "        return cls("
        for wire, member in members:
            how = "required" if wire in required else "optional"
            yield f'            {snake(wire)}=_w.{how}(data, "{wire}", path, {_parser(member)}),'
        yield "        )"
    yield ""
    yield "    def to_wire(self) -> dict[str, object]:"
    yield '        """The wire JSON, absent members omitted."""'
    yield "        out: dict[str, object] = {}"
    for wire, member in members:
        attribute = f"self.{snake(wire)}"
        if wire in required:
            yield f'        out["{wire}"] = {_dumper(member, attribute)}'
        else:
            yield f"        if {attribute} is not None:"
            yield f'            out["{wire}"] = {_dumper(member, attribute)}'
    yield "        return out"


def source() -> str:
    """The module's text as this generator writes it now (unformatted)."""
    shapes = _reachable()
    generated = [n for n, s in shapes.items() if _enum(s) or s.type_name == "structure"]
    exported = sorted([*generated, "SpecError"])
    lines = [
        "# generated by make models; do not edit",
        f'"""App Mesh spec shapes as typed, immutable values (botocore {botocore.__version__}).',
        "",
        "Generated by ``make models`` (:mod:`meshplane.model.generating`) from botocore's",
        f"``{apimodel.SERVICE}`` {apimodel.API_VERSION} service model; do not edit by hand.",
        "Each class parses its wire JSON with ``from_wire`` and writes it back with",
        "``to_wire``; ``WIRE`` maps attribute names to the camelCase wire names.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import dataclasses",
        "from collections.abc import Mapping",
        "from typing import ClassVar, Literal, cast",
        "",
        "from meshplane.model import wirevalues as _w",
        "from meshplane.model.wirevalues import SpecError",
        "",
        f"__all__ = [{', '.join(repr(n) for n in exported)}]",
        "",
    ]
    for name in sorted(shapes):
        shape = shapes[name]
        if _enum(shape):
            lines += ["", "", *_enum_lines(shape)]
        elif shape.type_name == "structure":
            lines += ["", "", *_structure_lines(shape)]
    return "\n".join(lines) + "\n"


def formatted() -> str:
    """:func:`source` passed through the project's ``ruff format``."""
    ruff = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent)) or "ruff"
    done = subprocess.run(
        [ruff, "format", "--stdin-filename", str(TARGET), "-"],
        input=source(),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main(argv: list[str]) -> None:
    """Write the module (to ``argv[0]`` when given, else in place)."""
    target = pathlib.Path(argv[0]) if argv else TARGET
    target.write_text(formatted())


if __name__ == "__main__":
    main(sys.argv[1:])
