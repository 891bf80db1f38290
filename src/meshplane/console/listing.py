"""Which part of a large mesh one console page shows: a page per kind, a filter, a focus.

At ten times App Mesh's quotas a mesh holds ~10,000 resources; a page listing all of
them is megabytes of HTML that takes seconds to render and to lay out. A mesh page shows
instead, per section (virtual services, routers, routes, nodes, gateways, gateway routes,
proxies), one page of :data:`PAGE_SIZE` names in name order, with the section's count and
links to the next and previous pages. One filter narrows every section to the names that
contain it (case-insensitive; a route or gateway route also matches on its parent's name).
The topology graph can be focused on one virtual service's neighbourhood.

All of it lives in the page's query string (:class:`View`), so a page's URL is the page: the
event stream's refresh fetches the same view again, links and the weights form keep it.
This module is pure: it decides what to show from names; :mod:`meshplane.console.reading`
reads the names and the shown resources.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

PAGE_SIZE = 50
SECTIONS = ("vs", "vr", "rt", "vn", "vg", "gr", "px")
"""Section ids: the kinds in the order the page shows them, then the proxies."""
TITLES = {
    "vs": "Virtual services",
    "vr": "Virtual routers",
    "rt": "Routes",
    "vn": "Virtual nodes",
    "vg": "Virtual gateways",
    "gr": "Gateway routes",
    "px": "Proxies",
}
MAX_QUERY = 255
"""Longer filters or focus names are cut: no App Mesh name is longer."""

Name = tuple[str, str]
"""``(parent, name)``: the parent is a route's router or a gateway route's gateway, else ``""``."""


@dataclasses.dataclass(frozen=True)
class View:
    """What the page shows, as its query string holds it (every field has a safe default)."""

    query: str = ""
    """The filter: a name must contain it (case-insensitive)."""
    pages: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Section id → page number (1-based); a section not named is on its first page."""
    service: str = ""
    """The virtual service whose neighbourhood the topology draws (``""``: the whole mesh)."""

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> View:
        """The view of a query string's ``params``; anything malformed falls back to defaults."""
        pages: dict[str, int] = {}
        for section in SECTIONS:
            text = params.get(f"{section}_page", "")
            if text.isascii() and text.isdecimal() and 1 < int(text) < 10**9:
                pages[section] = int(text)
        return cls(
            query=params.get("q", "").strip()[:MAX_QUERY],
            pages=pages,
            service=params.get("service", "").strip()[:MAX_QUERY],
        )

    def page(self, section: str) -> int:
        """The page number asked for ``section``."""
        return self.pages.get(section, 1)

    def params(self) -> dict[str, str]:
        """The query parameters of this view, defaults left out, in a stable order."""
        found: dict[str, str] = {}
        if self.query:
            found["q"] = self.query
        if self.service:
            found["service"] = self.service
        for section in SECTIONS:
            if self.pages.get(section, 1) > 1:
                found[f"{section}_page"] = str(self.pages[section])
        return found

    def encoded(self) -> str:
        """The view as a query string (``""`` for the default view)."""
        return urlencode(self.params())

    def turned(self, section: str, page: int) -> View:
        """The same view with ``section`` on ``page``."""
        return dataclasses.replace(self, pages={**self.pages, section: page})

    def focused(self, service: str) -> View:
        """The same view with the topology focused on ``service`` (``""``: the whole mesh)."""
        return dataclasses.replace(self, service=service)


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a section: the names shown and where they sit among the matching ones."""

    section: str
    names: tuple[Name, ...]
    matching: int
    """How many names match the filter (all of them without a filter)."""
    total: int
    """How many names the section has."""
    number: int
    """This page's number, 1-based (the last page when a larger one was asked for)."""
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        """How many pages the matching names fill (at least one)."""
        return max(1, -(-self.matching // self.size))

    @property
    def first(self) -> int:
        """The 1-based position of the first name shown (0 when none is)."""
        return (self.number - 1) * self.size + 1 if self.names else 0

    @property
    def last(self) -> int:
        """The 1-based position of the last name shown (0 when none is)."""
        return self.first + len(self.names) - 1 if self.names else 0


def contains(name: Name, query: str) -> bool:
    """Whether ``name`` (or its parent's name) contains ``query``, ASCII case ignored."""
    lowered = query.lower()
    return not lowered or lowered in name[1].lower() or lowered in name[0].lower()


def number(view: View, section: str, matching: int, size: int = PAGE_SIZE) -> int:
    """The page ``view`` asks for in ``section``, or the last one holding any of ``matching``."""
    return min(view.page(section), max(1, -(-matching // size)))


def paged(section: str, names: Iterable[Name], view: View, size: int | None = None) -> Page:
    """The page of ``names`` that ``view`` asks for: filtered, in (parent, name) order.

    For names held in memory (the proxies); the store pages resources itself
    (:meth:`~meshplane.store.protocols.ReadTransaction.name_page`), with the same order and
    the same filter. ``size`` defaults to :data:`PAGE_SIZE` as it is when called.
    """
    size = PAGE_SIZE if size is None else size
    every = list(names)
    matching = sorted(name for name in every if contains(name, view.query))
    shown = number(view, section, len(matching), size)
    return Page(
        section,
        tuple(matching[(shown - 1) * size : shown * size]),
        len(matching),
        len(every),
        shown,
        size,
    )
