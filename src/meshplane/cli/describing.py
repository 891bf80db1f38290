"""How manifest objects read in a terminal: kubectl-style ``get`` tables and ``describe`` pages.

Pure functions of the documents the control plane returns (and "now", for
ages), so the output is tested without a server.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

_ARN_FIELD = {
    "Mesh": "meshARN",
    "VirtualNode": "virtualNodeARN",
    "VirtualRouter": "virtualRouterARN",
    "VirtualService": "virtualServiceARN",
    "VirtualGateway": "virtualGatewayARN",
    "GatewayRoute": "gatewayRouteARN",
}


def age(seconds: float) -> str:
    """The short age kubectl prints: ``45s``, ``12m``, ``5h``, ``3d``."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 180 * 60:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def active(document: dict[str, Any]) -> str:
    """The ``<Kind>Active`` condition's status, or ``False`` before the first reconcile."""
    wanted = f"{document['kind']}Active"
    for condition in document.get("status", {}).get("conditions") or []:
        if condition.get("type") == wanted:
            return str(condition.get("status"))
    return "False"


def _labels(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or "<none>"


def _row(kind: str, doc: dict[str, Any], now: float, wide: bool) -> list[str]:
    meta, spec, status = doc["metadata"], doc.get("spec") or {}, doc.get("status") or {}
    when = age(now - meta.get("creationEpoch", now))
    if kind == "Namespace":
        state = "Terminating" if "deletionTimestamp" in meta else "Active"
        return [meta["name"], state, when] + ([_labels(meta.get("labels"))] if wide else [])
    if kind == "Service":
        ports = ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
        return [meta["name"], "ClusterIP", ports or "<none>", when]
    if kind == "BackendGroup":
        return [meta["name"], when]
    row = [meta["name"], status.get(_ARN_FIELD[kind], ""), active(doc), when]
    if wide:
        row += [str(spec.get("awsName", "")), (spec.get("meshRef") or {}).get("name", "<none>")]
        if kind == "VirtualRouter":
            row.append(",".join(status.get("routeARNs") or {}) or "<none>")
            row.append(_weights(spec) or "<none>")
    return row


def _weights(spec: dict[str, Any]) -> str:
    """Each route's weighted targets: ``route: node=50,node=50; route: …``."""
    shown = []
    for route in spec.get("routes") or []:
        kind = next(
            (k for k in ("httpRoute", "http2Route", "grpcRoute", "tcpRoute") if k in route), ""
        )
        targets = ((route.get(kind) or {}).get("action") or {}).get("weightedTargets") or []
        pairs = ",".join(
            f"{(t.get('virtualNodeRef') or {}).get('name', '?')}={t.get('weight', 0)}"
            for t in targets
        )
        shown.append(f"{route.get('name', '?')}: {pairs}")
    return "; ".join(shown)


def _headers(kind: str, wide: bool) -> list[str]:
    if kind == "Namespace":
        return ["NAME", "STATUS", "AGE"] + (["LABELS"] if wide else [])
    if kind == "Service":
        return ["NAME", "TYPE", "PORT(S)", "AGE"]
    if kind == "BackendGroup":
        return ["NAME", "AGE"]
    extra = ["AWS NAME", "MESH"] + (["ROUTES", "WEIGHTS"] if kind == "VirtualRouter" else [])
    return ["NAME", "ARN", "ACTIVE", "AGE"] + (extra if wide else [])


def cells(
    kind: str, documents: list[dict[str, Any]], *, wide: bool, namespaces: bool, now: float
) -> tuple[list[str], list[list[str]]]:
    """The ``get`` table of ``documents`` (all of one kind): its headers and its rows."""
    namespaced = namespaces and kind not in ("Mesh", "Namespace")
    headers = (["NAMESPACE"] if namespaced else []) + _headers(kind, wide)
    rows = [
        ([doc["metadata"].get("namespace", "")] if namespaced else []) + _row(kind, doc, now, wide)
        for doc in documents
    ]
    return headers, rows


def table(
    kind: str,
    documents: list[dict[str, Any]],
    *,
    wide: bool,
    namespaces: bool,
    now: float,
    min_widths: Sequence[int] = (),
) -> Table:
    """The ``get`` table of ``documents`` as a rich table (for a terminal: bold headers).

    ``min_widths`` are columns' widths to keep (``get -w``'s later rows line up with the
    first table's, as kubectl's do); a longer value still widens its column.
    """
    from rich.table import Table  # noqa: PLC0415 - a pipe gets cli/plaintables.py's instead

    headers, rows = cells(kind, documents, wide=wide, namespaces=namespaces, now=now)
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header, least in itertools.zip_longest(headers, min_widths[: len(headers)]):
        grid.add_column(header, no_wrap=True, overflow="ignore", min_width=least)
    for row in rows:
        grid.add_row(*row)
    return grid


def widths(grid: Table) -> list[int]:
    """Each column's width in cells, its header included (what later rows line up with)."""
    from rich.cells import cell_len  # noqa: PLC0415 - rich is loaded with the table already

    return [
        max([cell_len(str(column.header))] + [cell_len(str(cell)) for cell in column.cells])
        for column in grid.columns
    ]


def _block(value: Any, indent: str) -> list[str]:
    import yaml  # noqa: PLC0415 - `get`'s tables come from here too, and never need yaml

    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip()
    return [indent + line for line in text.splitlines()]


def _certificate(found: dict[str, Any] | None) -> str:
    if found is None:
        return "<none>"
    name = found.get("secretName") or found.get("certificateArn") or found.get("certificateChain")
    text = f"{found['source']} {name}"
    if found.get("servedBy") and found["servedBy"] != "file":
        text += f" (served by the {found['servedBy']})"
    sans = found.get("sans")
    if sans is not None:
        text += f", SANs {', '.join(sans) or '<none>'}"
    return text


def _validation(found: dict[str, Any] | None) -> str:
    if found is None:
        return "<none>"
    trust = found["trust"]
    name = (
        trust.get("secretName")
        or trust.get("certificateChain")
        or ", ".join(trust.get("certificateAuthorityArns") or [])
    )
    text = f"trust {trust['source']} {name}"
    if trust.get("servedBy"):
        text += f" (served by the {trust['servedBy']})"
    sans = found["subjectAlternativeNames"]
    return text + (f"; SANs {', '.join(sans)}" if sans else "; any SAN")


def tls_lines(state: dict[str, Any]) -> list[str]:
    """The ``TLS:`` block of describe: what each listener and backend really runs."""
    lines = [
        "TLS:",
        f"  Identity:        {state['identity']}",
        f"  Automatic mTLS:  {state['automaticMtls'] or '<none>'}",
        "  Listeners:" if state["listeners"] else "  Listeners:  <none>",
    ]
    for entry in state["listeners"]:
        mode = entry["mode"] + (" mutual" if entry["mutual"] else "")
        skipped = f" -- {entry['skipped']}" if entry.get("skipped") else ""
        lines.append(
            f"    {entry['port']}/{entry['protocol']}:  {mode} ({entry['source']}){skipped}"
        )
        if entry["certificate"] is not None:
            lines.append(f"      Certificate:  {_certificate(entry['certificate'])}")
        if entry["validation"] is not None:
            lines.append(f"      Validation:   {_validation(entry['validation'])}")
    lines.append("  Backends:" if state["backends"] else "  Backends:  <none>")
    for backend in state["backends"]:
        origin = backend["clientPolicy"]
        if origin is None:
            policy = "no client policy"
        else:
            ports = ",".join(str(p) for p in backend["ports"]) or "all"
            enforce = "enforced" if backend["enforce"] else "not enforced"
            policy = f"client policy from {origin} ({enforce}, ports {ports})"
        lines.append(f"    {backend['virtualService']}:  {policy}")
        if origin is not None:
            lines.append(f"      Certificate:  {_certificate(backend['certificate'])}")
            lines.append(f"      Validation:   {_validation(backend['validation'])}")
        for target in backend["targets"]:
            checks = ", ".join(target["expectedSans"]) or "no SAN"
            presented = target["presentedSans"]
            shown = ", ".join(presented) if presented is not None else "unknown"
            flag = "  SAN MISMATCH" if target["sanMismatch"] else ""
            lines.append(
                f"      -> {target['virtualNode']} port {target['port']}:  {target['tls']} "
                f"({target['decidedBy']}); checks {checks}; it presents {shown}{flag}"
            )
    return lines


def describe(
    doc: dict[str, Any],
    events: list[dict[str, Any]],
    now: float,
    tls: dict[str, Any] | None = None,
) -> str:
    """The ``describe`` page: identity, spec, status with conditions, TLS, and recent events.

    ``tls`` is the effective TLS state the control plane computed for a VirtualNode or
    VirtualGateway; its problems are listed with the conditions.
    """
    meta = doc["metadata"]
    lines = [f"Name:         {meta['name']}"]
    if "namespace" in meta:
        lines.append(f"Namespace:    {meta['namespace']}")
    lines += [
        f"Labels:       {_labels(meta.get('labels'))}",
        f"Annotations:  {_labels(meta.get('annotations'))}",
        f"API Version:  {doc['apiVersion']}",
        f"Kind:         {doc['kind']}",
        "Metadata:",
        f"  Creation Timestamp:  {meta['creationTimestamp']}",
        f"  Generation:          {meta['generation']}",
        f"  UID:                 {meta['uid']}",
    ]
    if "deletionTimestamp" in meta:
        lines.append(f"  Deletion Timestamp:  {meta['deletionTimestamp']}")
    if doc.get("spec"):
        lines += ["Spec:", *_block(doc["spec"], "  ")]
    status = dict(doc.get("status") or {})
    conditions = list(status.pop("conditions", []) or [])
    if tls is not None:
        conditions += tls["conditions"]
    lines.append("Status:")
    for key, value in status.items():
        if isinstance(value, dict):
            lines += [f"  {key}:", *_block(value, "    ")]
        else:
            lines.append(f"  {key}:  {value}")
    if conditions:
        lines.append("  Conditions:")
        for condition in conditions:
            lines.append(f"    Type:                  {condition.get('type')}")
            lines.append(f"    Status:                {condition.get('status')}")
            if condition.get("lastTransitionTime"):
                lines.append(f"    Last Transition Time:  {condition['lastTransitionTime']}")
            if condition.get("reason"):
                lines.append(f"    Reason:                {condition['reason']}")
                lines.append(f"    Message:               {condition.get('message', '')}")
    if tls is not None:
        lines += tls_lines(tls)
    if doc["kind"] == "VirtualNode":
        from meshplane.translate import cloudmap  # noqa: PLC0415 - the translator: describe only

        emulated = cloudmap.manifest_note("virtualnode", meta["name"], doc.get("spec") or {})
        if emulated is not None:
            lines += ["Warnings:", f"  cloudmap-emulated: {emulated}"]
    if not events:
        lines.append("Events:  <none>")
        return "\n".join(lines)
    rows = [
        ("Type", "Reason", "Age", "Count", "Message"),
        ("----", "------", "----", "-----", "-------"),
    ]
    rows += [
        (e["type"], e["reason"], age(now - e["lastTimestamp"]), str(e["count"]), e["message"])
        for e in events
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines.append("Events:")
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:4])]
        lines.append("  " + "  ".join([*cells, row[4]]))
    return "\n".join(lines)
