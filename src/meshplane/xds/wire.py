"""Protobuf wire encoding of DiscoveryResponses from pre-serialized resources.

Every resource is serialized once, when its snapshot is built; the bytes of an
identical resource are shared by every node and every push. A SotW response is
then just concatenated byte strings: ``version_info`` (field 1), the resources
(field 2, each an ``Any``), ``type_url`` (field 4) and ``nonce`` (field 5).
This keeps the per-stream cost of a push to one ``bytes.join`` instead of
re-serializing every resource for every Envoy, and :class:`SharedResponses`
makes that join once per (type, version) for all the streams sending it: each
stream then only appends its nonce.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # snapshot imports this module for its framing
    from meshplane.xds.snapshot import Resource

_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """One length-delimited field (string, bytes or message) in wire format."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def any_bytes(type_url: str, body: bytes) -> bytes:
    """A serialized ``google.protobuf.Any`` holding ``body`` of type ``type_url``."""
    return field(1, type_url.encode()) + field(2, body)


def response_resource(type_url: str, body: bytes) -> bytes:
    """``body`` framed as one entry of ``DiscoveryResponse.resources`` (field 2).

    ``field(2, any_bytes(type_url, body))``, joined in one go: a 68 KB route
    configuration is copied once, not once per nesting level and concatenation.
    """
    url = type_url.encode()
    url_header = _varint(1 << 3 | _LENGTH_DELIMITED) + _varint(len(url))
    body_header = _varint(2 << 3 | _LENGTH_DELIMITED) + _varint(len(body))
    size = len(url_header) + len(url) + len(body_header) + len(body)
    return b"".join(
        (_varint(2 << 3 | _LENGTH_DELIMITED), _varint(size), url_header, url, body_header, body)
    )


def discovery_response(
    version_info: str, resources: Iterable[bytes], type_url: str, nonce: str
) -> bytes:
    """A serialized ``DiscoveryResponse`` from framed resources (see :func:`response_resource`)."""
    return b"".join(
        (
            field(1, version_info.encode()),
            *resources,
            field(4, type_url.encode()),
            field(5, nonce.encode()),
        )
    )


def delta_resource(name: str, version: str, framed: bytes) -> bytes:
    """One ``DeltaDiscoveryResponse.resources`` entry (a ``Resource``) from a framed ``Any``.

    ``framed`` is :func:`response_resource`'s output: field 2 holding the ``Any``, which is
    also the field number of ``Resource.resource``, so the bytes are reused as they are.
    """
    return field(2, field(3, name.encode()) + field(1, version.encode()) + framed)


def delta_discovery_response(
    system_version_info: str,
    resources: Iterable[bytes],
    type_url: str,
    removed: Iterable[str],
    nonce: str,
) -> bytes:
    """A serialized ``DeltaDiscoveryResponse`` from :func:`delta_resource` entries."""
    return b"".join(
        (
            field(1, system_version_info.encode()),
            *resources,
            field(4, type_url.encode()),
            field(5, nonce.encode()),
            *(field(6, name.encode()) for name in removed),
        )
    )


_NONCE_TAG = bytes((5 << 3 | _LENGTH_DELIMITED,))


def nonce_field(nonce: str) -> bytes:
    """The ``nonce`` (field 5) that ends a response built by :meth:`SharedResponses.prefix`."""
    raw = nonce.encode()
    if len(raw) < 0x80:  # one response per stream per push: a stream's counter is short
        return _NONCE_TAG + bytes((len(raw),)) + raw
    return field(5, raw)


class SharedResponses:
    """The body of each (type URL, version) response, built once and shared by every stream.

    Two streams sending the same version of a type send the same resources: all of
    the serialized ``DiscoveryResponse`` but its nonce (the last field) is identical,
    so it is framed once and each stream appends only its own nonce. Alongside it the
    read-only name → version map of what it holds, which the stream keeps as "sent"
    and hands to the board on ACK without copying. At most ``size`` entries are kept,
    the least recently used dropped first (a proxy's own listener is a miss every time;
    shared routes and clusters hit).
    """

    def __init__(self, size: int = 1024) -> None:
        """Keep at most ``size`` framed bodies."""
        self._size = size
        self._entries: dict[tuple[str, str], tuple[bytes, Mapping[str, str]]] = {}

    def prefix(
        self, type_url: str, version: str, chosen: Mapping[str, Resource]
    ) -> tuple[bytes, Mapping[str, str]]:
        """The response of ``chosen`` at ``version`` without its nonce, and its name → version.

        ``version`` must be the content version of ``chosen`` (:func:`version_of`): it is
        the key, so equal versions share one body.
        """
        key = (type_url, version)
        entries = self._entries
        found = entries.pop(key, None)
        if found is None:
            ordered = [chosen[n] for n in sorted(chosen)]
            body = b"".join(
                (
                    field(1, version.encode()),
                    *(r.framed for r in ordered),
                    field(4, type_url.encode()),
                )
            )
            found = (body, MappingProxyType({r.name: r.version for r in ordered}))
            if len(entries) >= self._size:
                del entries[next(iter(entries))]
        entries[key] = found  # re-inserted: the most recently used is last
        return found
