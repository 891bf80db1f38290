"""The console's static files, addressed by their content so browsers keep them.

Every page links the stylesheet, the script and the icon. Served ``no-store`` like the
pages, each navigation fetched all three again (the stylesheet blocks rendering, the
script the ``DOMContentLoaded`` event) and waited on the control plane's loop for them.
Their URLs now carry a digest of the bytes (``console.css?v=3f2a…``): a URL always names
the same bytes, so the answer may be kept a year (``immutable``), and a new release's
files get new URLs. A request with another ``v`` (an old page) gets the current bytes,
not to be kept.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources

TYPES = {
    "console.js": "text/javascript",
    "console.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
KEEP = "public, max-age=31536000, immutable"


@dataclasses.dataclass(frozen=True)
class Asset:
    """One static file: its bytes, type and digest."""

    name: str
    data: bytes
    content_type: str
    digest: str

    @property
    def url(self) -> str:
        """The path pages link: it changes whenever the bytes do."""
        return f"/console/static/{self.name}?v={self.digest}"


@functools.cache
def asset(name: str) -> Asset | None:
    """The static file ``name`` (read once from the package), or ``None`` if there is none."""
    if name not in TYPES:
        return None
    data = importlib.resources.files("meshplane.console").joinpath("static", name).read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    return Asset(name, data, TYPES[name], digest)


def url(name: str) -> str:
    """The versioned path of the static file ``name`` (one that exists)."""
    found = asset(name)
    assert found is not None, name
    return found.url
