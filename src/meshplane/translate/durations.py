"""Protobuf durations from App Mesh's millisecond values (0 means "disabled" in Envoy)."""

from __future__ import annotations

from google.protobuf import duration_pb2


def of_ms(milliseconds: int) -> duration_pb2.Duration:
    """A protobuf Duration from milliseconds."""
    value = duration_pb2.Duration()
    value.FromMilliseconds(milliseconds)
    return value
