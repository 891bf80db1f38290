"""Protobuf wire encoding of DiscoveryResponses from pre-serialized resources.

Every resource is serialized once, when its snapshot is built; the bytes of an
identical resource are shared by every node and every push. A SotW response is
then just concatenated byte strings: ``version_info`` (field 1), the resources
(field 2, each an ``Any``), ``type_url`` (field 4) and ``nonce`` (field 5).
This keeps the per-stream cost of a push to one ``bytes.join`` instead of
re-serializing every resource for every Envoy.
"""

from __future__ import annotations

from collections.abc import Iterable

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
    """``body`` framed as one entry of ``DiscoveryResponse.resources`` (field 2)."""
    return field(2, any_bytes(type_url, body))


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
