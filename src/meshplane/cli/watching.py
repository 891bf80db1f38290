"""``meshplane get KIND -w``: the table, then one row per change, as ``kubectl get -w``.

The server holds each ``GET /meshplane/v1/changes?after=R&seen=M`` until its store's
change feed passes revision R (the feed the sync stage and the console follow) or a commit
past M writes a manifest object (status and labels included), whichever replica made it;
at most 30 s, then the same position comes back and the call is made again. Only then are
the objects listed again, and each one whose labels, spec, status or generation differ from
the last row printed for it is printed as a row, without a header, in the first table's
column widths (``manifests._show``); an object that went away is printed once more, as
kubectl does. Ctrl-C ends it (exit 0).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

HOLD_SECONDS = 30
"""How long each call asks the server to hold it when nothing changes."""

Item = dict[str, Any]


def _identity(item: Item) -> tuple[str, str]:
    meta = item["metadata"]
    return (str(meta.get("namespace", "")), str(meta["name"]))


def _state(item: Item) -> str:
    meta = item["metadata"]
    return json.dumps(
        [meta.get("labels"), meta.get("generation"), item.get("spec"), item.get("status")],
        sort_keys=True,
    )


def follow(
    call: Callable[..., Any],
    items: list[Item],
    fetch: Callable[[], list[Item]],
    show: Callable[[list[Item]], None],
) -> None:
    """After ``items`` were printed: wait for changes, ``show`` the rows that changed."""
    seen = {_identity(item): (_state(item), item) for item in items}
    position = call("GET", "/changes", query={"timeout": "0"})
    while True:
        query = {
            "after": str(position["revision"]),
            "seen": str(position["seen"]),
            "timeout": str(HOLD_SECONDS),
        }
        moved = call("GET", "/changes", query=query)
        if (moved["revision"], moved["seen"]) == (position["revision"], position["seen"]):
            continue  # held for HOLD_SECONDS with nothing new: ask again
        position = moved
        current = {_identity(item): (_state(item), item) for item in fetch()}
        changed = [
            item for key, (state, item) in current.items() if seen.get(key, ("", {}))[0] != state
        ]
        gone = [item for key, (_, item) in seen.items() if key not in current]
        if changed or gone:
            show(changed + gone)
        seen = current
