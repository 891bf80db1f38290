"""Walking a serialized protobuf message's top-level fields without parsing it.

Two stages handle Envoy resources as bytes: the sync stage splices rebuilt
virtual hosts (and routes) into a proxy's serialized route configuration
(:mod:`meshplane.translate.patching`), and the xDS snapshot versions a route
configuration from its virtual hosts' digests (:mod:`meshplane.xds.snapshot`).
Both need where each entry of one repeated message field sits; parsing 68 KB
to find out would cost more than the work they save.
"""

from __future__ import annotations

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
"""The wire types a message's fields can have (groups are not used by Envoy's API)."""


def entries(body: bytes | memoryview, field: int) -> list[tuple[int, int, int]]:
    """(start, payload, end) of each length-delimited entry of ``field``, in order.

    ``start`` is the entry's first byte (its tag), ``payload`` the first byte of the
    embedded message, ``end`` one past its last.
    """
    view = memoryview(body)
    spans: list[tuple[int, int, int]] = []
    at = 0
    size_of = len(view)
    while at < size_of:
        start = at
        tag, at = varint(view, at)
        wire_type = tag & 7
        if wire_type == LENGTH_DELIMITED:
            size, at = varint(view, at)
            payload, at = at, at + size
            if tag >> 3 == field:
                spans.append((start, payload, at))
        elif wire_type == VARINT:
            _, at = varint(view, at)
        elif wire_type == FIXED64:
            at += 8
        elif wire_type == FIXED32:
            at += 4
        else:
            raise ValueError(f"unexpected wire type {wire_type} in a serialized message")
    return spans


def varint(view: memoryview, at: int) -> tuple[int, int]:
    """The varint at ``at`` and the offset after it."""
    value = shift = 0
    while True:
        byte = view[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def encode_varint(value: int) -> bytes:
    """``value`` as a varint."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]  # tags and most lengths between a message's entries
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ONE_BYTE = tuple(bytes((value,)) for value in range(0x80))


def header(field: int, size: int) -> bytes:
    """The tag and length that precede a length-delimited entry of ``field``."""
    return encode_varint(field << 3 | LENGTH_DELIMITED) + encode_varint(size)


def first_string(view: memoryview, at: int) -> str:
    """Field 1 of the message serialized at ``at`` when it is a string (a name), else ``""``."""
    tag, at = varint(view, at)
    if tag != (1 << 3 | LENGTH_DELIMITED):
        return ""
    size, at = varint(view, at)
    return bytes(view[at : at + size]).decode()
