"""ACM references off AWS: where a spec names ACM, so every front door can say so.

App Mesh fetched ``acm`` certificates and ``acm`` trusts (ACM Private CA) from AWS.
meshplane cannot reach ACM; translation serves those references from its built-in CA
and records a ``tls-acm-builtin-ca`` warning (``meshplane proxy-status``). This module
finds them in a spec — App Mesh JSON or v1beta2 manifest, the member is ``acm`` in
both — so ``meshplane apply`` warns at once, before any Envoy connects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

NOTE = (
    "ACM is unreachable off AWS; meshplane serves it from its built-in CA "
    "(clients must trust <data-dir>/ca/ca.pem)"
)
"""The sentence a front door appends to each path."""


def paths(value: object, where: str = "spec") -> list[str]:
    """The path of every ``acm`` member under ``value``, in document order."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, child in value.items():
            path = f"{where}.{key}"
            if key == "acm" and child is not None:
                found.append(path)
            else:
                found += paths(child, path)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index, child in enumerate(value):
            found += paths(child, f"{where}[{index}]")
    return found
