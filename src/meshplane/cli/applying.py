"""What ``meshplane apply`` does besides applying: ``--dry-run``, ``--wait`` and ``--strict``.

* ``--dry-run`` validates offline: the files are applied to a throwaway control plane
  built in a temporary directory (the same parsing, App Mesh validation, conversion and
  translation warnings as the server), and nothing is changed anywhere. Like a fresh server,
  it knows only what the files hold, so a file that names a mesh it does not define is
  judged without that mesh. One question only the server can answer is asked of it when it
  answers, read-only (``POST /meshplane/v1/manifests/adoptions``): which resources created
  through the App Mesh API the apply would adopt — the same warnings a real apply prints.
  An unreachable server is not an error: the dry run stays offline.
* ``--wait [--timeout S]`` returns once every connected Envoy ACKed the store revision the
  apply produced (the server's own verdict, ``GET /meshplane/v1/proxies?waitForRevision=``),
  and fails at once when one NACKs it, with Envoy's message; after ``S`` seconds it fails
  naming the proxies that lag.
* ``--strict`` exits 1 when the apply printed a warning (kubectl's ``--warnings-as-errors``:
  the change is applied, the exit code says it needs a look).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshplane import client

WAIT_STEP = 1.0
"""Seconds of each server-side wait, so a NACK ends the wait within a second."""


class WaitFailed(Exception):
    """A proxy NACKed the change, or not every proxy ACKed it in time; lines say which."""

    def __init__(self, lines: list[str]) -> None:
        """Keep the lines to print."""
        super().__init__("\n".join(lines))
        self.lines = lines


def dry_run(
    sources: list[dict[str, str]],
    namespace: str | None,
    inspect: Callable[[Any], None] = lambda _plane: None,
) -> dict[str, Any]:
    """The apply answer a fresh control plane would give for ``sources``; nothing is kept.

    ``inspect`` sees that control plane (``meshplane.app.ControlPlane``) after the apply,
    before it is thrown away (``analyze`` reads its store).
    """
    # The control plane's modules are imported only for a dry run (see cli/main.py's serve).
    from meshplane import app, settings  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="meshplane-dry-run-") as scratch:
        config = settings.load(
            environ={}, data_dir=Path(scratch), api_port=0, xds_port=0, auth="none"
        )
        plane = app.build(config)
        try:
            outcomes = plane.front_door.apply([(s["name"], s["text"]) for s in sources], namespace)
            inspect(plane)
        finally:
            plane.store.close()
    return {"results": [outcome.to_json() for outcome in outcomes]}


ADOPTIONS_TIMEOUT = 5.0
"""Seconds a dry run waits for the server's adoption answer before staying offline."""


def add_adoptions(answer: dict[str, Any], server: str, body: dict[str, Any]) -> list[str]:
    """Put the server's adoption warnings on ``answer``'s lines; lines to print besides.

    A server that does not answer leaves the dry run offline (nothing added); one that
    refuses the batch or the caller says so in the returned lines, as warnings.
    """
    from meshplane.cli import signing  # noqa: PLC0415 - the client only when asked

    try:
        plane = signing.connect(server, timeout=ADOPTIONS_TIMEOUT)
    except Exception as error:
        return [f"adoptions not checked against {server}: {error}"]
    try:
        found = plane.call("POST", "/meshplane/v1/manifests/adoptions", body)
    except OSError:
        return []
    except client.ControlPlaneError as error:
        if error.status == 404:  # a server from before the question existed
            return []
        lines = (error.body.get("errors") if isinstance(error.body, dict) else None) or [
            error.message
        ]
        if error.status == 422:
            return [f"the server would refuse this apply: {line}" for line in lines]
        return [f"adoptions not checked against {server}: {line}" for line in lines]
    by_name = {(r["resource"], r["name"]): r["warnings"] for r in found["results"]}
    for result in answer["results"]:
        adopted = by_name.get((result.get("resource"), result.get("name")), [])
        result["warnings"] = [*adopted, *result["warnings"]]
    return []


def _nacks(report: client.ProxiesReport) -> list[str]:
    return [
        f"error: {proxy['key']} NACKED {type_name}: {t['lastNack']}"
        for proxy in report.connected
        if proxy["state"] == "NACKED"
        for type_name, t in sorted(proxy["types"].items())
        if t["lastNack"] and t["acked"] != t["sent"]
    ]


def wait(plane: client.MeshplaneClient, timeout: float) -> str:
    """Wait until every connected proxy runs the current revision; the line to print."""
    revision = plane.health().revision
    deadline = time.monotonic() + timeout
    while True:
        step = max(0.0, min(WAIT_STEP, deadline - time.monotonic()))
        query = {"waitForRevision": str(revision), "timeout": f"{step:g}"}
        answer = plane.call("GET", "/meshplane/v1/proxies", query=query, timeout=step + 10)
        report = client.ProxiesReport(answer["revision"], answer["converged"], answer["proxies"])
        if report.converged:
            count = len(report.connected)
            return f"revision {revision}: all {count} connected proxies ACKed it"
        nacked = _nacks(report)
        if nacked:
            raise WaitFailed(nacked)
        if time.monotonic() >= deadline:
            lagging = [f"{p['key']} ({p['state']})" for p in report.connected]
            raise WaitFailed(
                [
                    f"error: timed out after {timeout:g}s waiting for revision {revision}: "
                    + ", ".join(p for p in lagging if not p.endswith("(SYNCED)"))
                ]
            )
