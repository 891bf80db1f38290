"""``meshplane get events [--for KIND/NAME]``: the manifest objects' events, as kubectl lists them.

The reconciler records an event when an object changes state (``Created``, ``Waiting``,
``ReconcileError`` …); ``describe`` shows one object's. This lists them all — of the
namespace, of every namespace with ``-A``, or of one object with ``--for`` — oldest first,
with TYPE, REASON, OBJECT, MESSAGE and AGE (since the event last happened; a repeated
event is folded into one with its count, as Kubernetes does). ``-o json`` prints them as
the server answered.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer

WORDS = frozenset({"events", "event", "ev"})
"""What ``get`` accepts for this kind."""


def run(
    call: Any, namespace: str | None, all_namespaces: bool, for_object: str | None, output: str
) -> None:
    """Print the events; ``call(method, path, query=…)`` is ``get``'s signed request."""
    from meshplane.cli import describing  # noqa: PLC0415 - yaml and rich only when listing

    where = namespace or "default"
    if for_object is not None:
        kind, slash, name = for_object.partition("/")
        if not slash or not kind or not name:
            raise ValueError(f"--for must be KIND/NAME, got {for_object!r}")
        answer = call("GET", f"/objects/{kind}/{name}", query={"namespace": where})
        obj = answer["object"]
        about = {
            "kind": obj["kind"],
            "namespace": obj["metadata"].get("namespace", ""),
            "name": obj["metadata"]["name"],
        }
        items = [{**event, "object": about} for event in answer["events"]]
    else:
        query = None if all_namespaces else {"namespace": where}
        items = call("GET", "/events", query=query)["items"]
    if output == "json":
        typer.echo(json.dumps({"items": items}, indent=4))
        return
    if not items:
        typer.echo(
            "No events found" + ("." if all_namespaces else f" in {where} namespace."), err=True
        )
        return
    now = time.time()
    headers = ["NAMESPACE"] if all_namespaces else []
    rows = [[*headers, "TYPE", "REASON", "OBJECT", "MESSAGE", "AGE"]]
    for event in items:
        about = event["object"]
        rows.append(
            [
                *([about["namespace"]] if all_namespaces else []),
                event["type"],
                event["reason"],
                f"{about['kind'].lower()}/{about['name']}",
                event["message"],
                describing.age(now - event["lastTimestamp"]),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        typer.echo("   ".join([*cells, row[-1]]).rstrip())
