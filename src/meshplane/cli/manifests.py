"""``meshplane apply / get / describe / delete / label``: manifests, in kubectl's manner.

A thin client of the control plane's ``/meshplane/v1/`` endpoints (chosen with
``--server`` or ``MESHPLANE_SERVER``): files are read here, everything else —
parsing, validation, reconciliation — happens in the server, so every terminal
sees the same objects. Output and exit codes follow kubectl: one line per
object, tables with the columns users expect, 0 on success and 1 on any error.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from meshplane import client
from meshplane.cli import calling, jsonpath, labelselectors, printing, signing
from meshplane.cli.calling import Failed as _Failed
from meshplane.cli.calling import call as _call
from meshplane.cli.calling import print_documents as _print_documents
from meshplane.cli.calling import print_results as _print_results
from meshplane.cli.calling import read_sources as _read_sources
from meshplane.cli.calling import show as _show
from meshplane.model import selectors

DEFAULT_SERVER = "http://127.0.0.1:9080"
MANIFEST_SUFFIXES = calling.MANIFEST_SUFFIXES
"""What ``-f DIR`` reads (``analyze -f`` too)."""

Server = Annotated[
    str,
    typer.Option("--server", "-s", envvar="MESHPLANE_SERVER", help="The control plane's URL."),
]
Namespace = Annotated[str | None, typer.Option("--namespace", "-n", help="The namespace.")]
Files = Annotated[
    list[str],
    typer.Option("--filename", "-f", help="A manifest file, a directory of them, or - for stdin."),
]
Recursive = Annotated[
    bool,
    typer.Option(
        "--recursive", "-R", help="Read the directories of -f and all directories below them."
    ),
]


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _run(action: Any) -> None:
    try:
        action()
    except _Failed as failure:
        for line in failure.lines:
            _err(line)
        raise typer.Exit(1) from failure


def apply(
    files: Files = [],  # noqa: B006 - typer reads the default
    recursive: Recursive = False,
    namespace: Namespace = None,
    server: Server = DEFAULT_SERVER,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Validate offline, change nothing; a server that answers is asked (read-only) "
            "which API-created objects the apply would adopt.",
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Return once every connected Envoy ACKed (fail on NACK)."),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds --wait waits before it fails.")
    ] = 30.0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when the apply printed a warning.")
    ] = False,
) -> None:
    """Create or update objects from manifests (all documents are checked before any is applied).

    Documents of kinds Kubernetes runs (Deployment, Ingress, RBAC, …) are skipped with one line
    each, so published walkthrough files and ``helm template`` output apply as they are.
    """
    from meshplane.cli import applying  # noqa: PLC0415 - only apply needs it

    def act() -> None:
        sources = _read_sources(files, recursive)
        if dry_run:
            try:
                answer = applying.dry_run(sources, namespace)
            except Exception as error:  # the front door's refusals: ManifestError and others
                problems = getattr(error, "problems", None) or [str(error)]
                raise _Failed([f"error: {line}" for line in problems]) from error
            body = {"sources": sources, "namespace": namespace}
            notes = applying.add_adoptions(answer, server, body)
            warned = _print_results(answer, suffix=" (dry run)")
            for note in notes:
                _err(f"Warning: {note}")
            warned += len(notes)
        else:
            warned = calling.apply(server, sources, namespace)
        if wait and not dry_run:
            try:
                typer.echo(applying.wait(signing.connect(server, timeout=10), timeout))
            except applying.WaitFailed as failed:
                raise _Failed(failed.lines) from failed
            except (OSError, client.ControlPlaneError) as error:
                raise _Failed([f"error: waiting for the proxies: {error}"]) from error
        if strict and warned:
            raise _Failed([f"error: {warned} warning(s) and --strict"])

    _run(act)


def get(
    kind: Annotated[str, typer.Argument(help="virtualnodes, vn, mesh, namespaces, …")],
    name: Annotated[str | None, typer.Argument()] = None,
    namespace: Namespace = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List across namespaces.")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=SPEC.",
        ),
    ] = None,
    selector: Annotated[
        str | None,
        typer.Option(
            "--selector",
            "-l",
            help="Label selector: KEY=VALUE, KEY!=VALUE, KEY, !KEY joined by ','.",
        ),
    ] = None,
    sort_by: Annotated[
        str | None,
        typer.Option("--sort-by", help="Sort the list by a JSONPath field, e.g. .metadata.name."),
    ] = None,
    server: Server = DEFAULT_SERVER,
    watch: Annotated[
        bool,
        typer.Option("--watch", "-w", help="After the list, print a row per change until Ctrl-C."),
    ] = False,
    for_object: Annotated[
        str | None,
        typer.Option("--for", help="get events: only those of KIND/NAME (e.g. vn/vn-a)."),
    ] = None,
) -> None:
    """List objects, or show one, with the columns users expect (ARN, ACTIVE, AGE).

    `get events` lists the objects' events (TYPE, REASON, OBJECT, MESSAGE, AGE).
    """
    from meshplane.cli import events  # noqa: PLC0415 - small; its imports are lazy

    if kind in events.WORDS:
        _run(lambda: _events(server, namespace, all_namespaces, for_object, output or ""))
        return
    format_, _, argument = (output or "").partition("=")
    _check_flags(output, format_, argument, selector is not None and name is not None, watch)
    try:
        # Refuse bad templates and selectors before asking the server anything.
        wanted = labelselectors.parse(selector) if selector is not None else None
        if format_ == "jsonpath":
            jsonpath.parse(argument)
        if format_ == "custom-columns":
            printing.custom_columns(argument, [])
        if sort_by is not None:
            jsonpath.parse_path(sort_by)
    except (jsonpath.Unsupported, labelselectors.Invalid) as refused:
        _err(f"error: {refused}")
        raise typer.Exit(1) from refused

    def act() -> None:
        where = namespace or "default"
        items, listed_kind = calling.fetch(server, kind, name, where, all_namespaces)
        if wanted is not None:
            items = [
                item
                for item in items
                if selectors.matches(wanted, item["metadata"].get("labels") or {})
            ]
        if sort_by is not None:
            items = printing.sort_by(sort_by, items)
        if output in ("yaml", "json"):
            _print_documents(items, single=name is not None, as_json=output == "json")
            return

        widths: list[int] = []  # the first table's columns: -w's later rows keep them

        def show(rows: list[dict[str, Any]], header: bool = True) -> None:
            _show(rows, listed_kind, output, all_namespaces, header, widths)

        if _print_scripted(output or "", items, listed_kind, single=name is not None):
            if watch and output == "name":
                _watch(server, kind, name, where, all_namespaces, wanted, items, show)
            return
        if not items:
            _err(calling.nothing_found(listed_kind, where, all_namespaces))
            if not watch:
                return

        if items:
            show(items)
        if watch:
            _watch(server, kind, name, where, all_namespaces, wanted, items, show)

    _run(act)


def _check_flags(
    output: str | None, format_: str, argument: str, named_and_selected: bool, watch: bool
) -> None:
    """Exit 1 with kubectl's line for ``get`` flags that cannot work together."""
    problem = None
    if output not in (None, "wide", "yaml", "json", "name") and not (
        format_ in ("jsonpath", "custom-columns") and argument
    ):
        problem = f'unable to match a printer suitable for the output format "{output}"'
    elif named_and_selected:
        problem = "name cannot be provided when a selector is specified"
    elif watch and output not in (None, "wide", "name"):
        problem = "--watch prints table rows or names: use it without -o, or with -o wide|name"
    if problem is not None:
        _err(f"error: {problem}")
        raise typer.Exit(1)


def _events(
    server: str, namespace: str | None, all_namespaces: bool, for_object: str | None, output: str
) -> None:
    """``get events``: :mod:`meshplane.cli.events` over this command's signed calls."""
    from meshplane.cli import events  # noqa: PLC0415

    def call(method: str, path: str, query: dict[str, str] | None = None) -> Any:
        return _call(server, method, path, query=query)

    try:
        events.run(call, namespace, all_namespaces, for_object, output)
    except ValueError as error:
        raise _Failed([f"error: {error}"]) from error


def _watch(
    server: str,
    kind: str,
    name: str | None,
    where: str,
    all_namespaces: bool,
    wanted: Any,
    items: list[dict[str, Any]],
    show: Any,
) -> None:
    """``get -w``: a row per changed object until Ctrl-C (:mod:`meshplane.cli.watching`)."""
    from meshplane.cli import watching  # noqa: PLC0415

    def call(method: str, path: str, query: dict[str, str] | None = None) -> Any:
        return _call(server, method, path, query=query)

    def fetch() -> list[dict[str, Any]]:
        if name is not None:
            try:
                return [call("GET", f"/objects/{kind}/{name}", {"namespace": where})["object"]]
            except _Failed:  # deleted meanwhile: printed once more as gone
                return []
        found = call("GET", f"/objects/{kind}", None if all_namespaces else {"namespace": where})
        return [
            item
            for item in found["items"]
            if wanted is None or selectors.matches(wanted, item["metadata"].get("labels") or {})
        ]

    try:
        watching.follow(call, items, fetch, lambda rows: show(rows, header=False))
    except KeyboardInterrupt:  # Ctrl-C ends a watch, as it ends kubectl get -w
        raise typer.Exit(0) from None


def _print_scripted(
    output: str, items: list[dict[str, Any]], listed_kind: str, *, single: bool
) -> bool:
    """Print ``-o name|jsonpath=…|custom-columns=…``; False for the other formats.

    An empty list falls through to "No resources found" except for jsonpath,
    which kubectl renders over the empty List (printing only its literals).
    """
    format_, _, argument = output.partition("=")
    if format_ in ("jsonpath", "custom-columns"):
        for item in items:  # an internal field (AGE's source): -o json does not show it either
            item["metadata"].pop("creationEpoch", None)
    if output == "name" and items:
        calling.print_names(items, listed_kind)
        return True
    if format_ == "jsonpath":
        typer.echo(printing.jsonpath_text(argument, items, single=single), nl=False)
        return True
    if format_ == "custom-columns" and items:
        typer.echo(printing.custom_columns(argument, items))
        return True
    return False


def describe(
    kind: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument()],
    namespace: Namespace = None,
    server: Server = DEFAULT_SERVER,
) -> None:
    """Show an object's spec, status, conditions and recent events (why it is not Active)."""

    def act() -> None:
        query = {"namespace": namespace or "default"}
        answer = _call(server, "GET", f"/objects/{kind}/{name}", query=query)
        from meshplane.cli import describing  # noqa: PLC0415 - see get

        page = describing.describe(
            answer["object"], answer["events"], time.time(), answer.get("tls")
        )
        typer.echo(page)

    _run(act)


def delete(
    kind: Annotated[str | None, typer.Argument()] = None,
    name: Annotated[str | None, typer.Argument()] = None,
    files: Files = [],  # noqa: B006 - typer reads the default
    recursive: Recursive = False,
    namespace: Namespace = None,
    server: Server = DEFAULT_SERVER,
) -> None:
    """Delete objects named by manifests or by KIND NAME; a Mesh waits for its members."""

    def act() -> None:
        if files:
            body = {"sources": _read_sources(files, recursive), "namespace": namespace}
            _print_results(_call(server, "POST", "/manifests/delete", body), "deleted")
            return
        if kind is None or name is None:
            raise _Failed(["error: you must provide one or more resources by argument or filename"])
        query = {"namespace": namespace or "default"}
        answer = _call(server, "DELETE", f"/objects/{kind}/{name}", query=query)
        _print_results(answer, "deleted")

    _run(act)


def label(
    kind: Annotated[str, typer.Argument(help="namespace (the only kind meshplane labels)")],
    name: Annotated[str, typer.Argument()],
    pairs: Annotated[list[str], typer.Argument(help="key=value to set, key- to remove")],
    overwrite: Annotated[bool, typer.Option(help="Allow changing an existing value.")] = False,
    server: Server = DEFAULT_SERVER,
) -> None:
    """Label a namespace (``mesh=demos`` joins it to the mesh selecting that label)."""

    def act() -> None:
        if kind.lower() not in ("namespace", "namespaces", "ns"):
            raise _Failed([f"error: meshplane labels namespaces only, not {kind}"])
        labels: dict[str, str | None] = {}
        for pair in pairs:
            if pair.endswith("-") and "=" not in pair:
                labels[pair[:-1]] = None
            elif "=" in pair:
                key, value = pair.split("=", 1)
                labels[key] = value
            else:
                raise _Failed([f"error: invalid label spec: {pair}"])
        body = {"labels": labels, "overwrite": overwrite}
        _print_results(_call(server, "POST", f"/namespaces/{name}/labels", body))

    _run(act)


def register(cli: typer.Typer) -> None:
    """Add the manifest commands to the ``meshplane`` application."""
    for command in (apply, get, describe, delete, label):
        cli.command()(command)
