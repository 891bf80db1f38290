"""botocore's App Mesh service model (2019-01-25), the specification of the API.

meshplane derives operations, HTTP bindings, shapes, constraints and error types
from this model instead of copying them by hand: a new botocore release that
changes the API changes what meshplane accepts, and the conformance tests say so.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session

SERVICE = "appmesh"
API_VERSION = "2019-01-25"


@functools.cache
def service_model() -> Any:
    """The loaded ``botocore.model.ServiceModel`` (cached: loading takes ~50 ms)."""
    session = botocore.session.Session()
    return session.get_service_model(SERVICE, api_version=API_VERSION)


def shape(name: str) -> Any:
    """A named shape of the model, e.g. ``VirtualNodeSpec``."""
    return service_model().shape_for(name)


def operation(name: str) -> Any:
    """An operation model, e.g. ``CreateVirtualNode``."""
    return service_model().operation_model(name)


def operation_names() -> list[str]:
    """All 38 operation names."""
    return list(service_model().operation_names)
