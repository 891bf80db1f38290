"""Reading YAML that may be hostile: no aliases, a bounded size and document count.

The billion-laughs manifest is 544 bytes of nested aliases that expand to
millions of nodes: it froze the control plane for 11 s, and 605 bytes drove it
past 7 GB. App Mesh manifests never need aliases (``kubectl`` users write each
object out; the controller's CRDs hold no repeated structure worth anchoring),
so meshplane refuses them outright rather than guessing a "safe" expansion
bound: an anchor (``&a``) is harmless, the first alias (``*a``) ends the read
before anything is expanded. Without aliases the parsed value is linear in the
text, so a cap on the text's size and on the number of documents bounds memory
and time; both are checked before the parser builds anything.

Every refusal is one line that names the rule, e.g. ``big.yaml document 1: YAML
aliases are not accepted in manifests (*lol at line 3 column 8); write the value
out (rule yaml-no-aliases)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

MAX_SOURCE_BYTES = 4 * 1024 * 1024
"""The largest manifest text read at once: the API's body limit, far above any real mesh."""
MAX_DOCUMENTS = 1000
"""Documents one apply may carry: ten times App Mesh's largest default quota per kind."""


class Refused(ValueError):
    """The text breaks one of the limits above; ``str()`` is the one-line reason.

    ``whole`` is true when the reason is about the source as a whole (its size or
    document count) rather than about the document being read.
    """

    def __init__(self, reason: str, *, whole: bool = False) -> None:
        """Keep the reason and whether it concerns the whole source."""
        super().__init__(reason)
        self.whole = whole


class _AliasFree(yaml.SafeLoader):
    """PyYAML's safe loader, refusing the first alias it meets before composing it."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML's stubs
            mark = event.start_mark
            raise Refused(
                f"YAML aliases are not accepted in manifests (*{event.anchor} at line "
                f"{mark.line + 1} column {mark.column + 1}); write the value out "
                "(rule yaml-no-aliases)"
            )
        return super().compose_node(parent, index)


def check_size(text: str) -> None:
    """Refuse ``text`` larger than :data:`MAX_SOURCE_BYTES` (measured in UTF-8)."""
    # len(text) bounds the UTF-8 size from below and by 4x from above: skip encoding small texts.
    size = len(text) if len(text) * 4 <= MAX_SOURCE_BYTES else len(text.encode("utf-8", "replace"))
    if size > MAX_SOURCE_BYTES:
        raise Refused(
            f"{size} bytes of manifests in one request; meshplane reads at most "
            f"{MAX_SOURCE_BYTES} (rule yaml-max-size)",
            whole=True,
        )


def load_all(text: str) -> Iterator[Any]:
    """Each document of ``text`` (``None`` for empty ones), refusing aliases and excess.

    Raises :class:`Refused` for a breached limit and :class:`yaml.YAMLError` for
    malformed YAML, like :func:`yaml.safe_load_all`.
    """
    check_size(text)
    loader = _AliasFree(text)
    try:
        count = 0
        while loader.check_data():  # type: ignore[no-untyped-call]  # PyYAML's stubs
            count += 1
            if count > MAX_DOCUMENTS:
                raise Refused(
                    f"more than {MAX_DOCUMENTS} YAML documents in one source; split it "
                    "(rule yaml-max-documents)",
                    whole=True,
                )
            yield loader.get_data()
    finally:
        loader.dispose()
