"""How ``get``, ``apply`` and the other manifest commands talk to the control plane and print.

The pieces of :mod:`meshplane.cli.manifests` that need no typer: the signed request with
kubectl's error lines, reading ``-f`` files, printing results, tables and documents. The
typer commands call them, and so does :mod:`meshplane.cli.fastpath`, which runs the common
forms of ``get``, ``apply`` and ``proxy-status`` without importing typer (its import and
the commands' construction were most of their start-up). Imports the standard library,
the client and small CLI modules only; rich and yaml inside the functions that print them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshplane import client
from meshplane.cli import signing

if TYPE_CHECKING:
    from rich.console import Console

PREFIX = "/meshplane/v1"
GROUP = "appmesh.k8s.aws"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def echo(message: str, *, err: bool = False, nl: bool = True) -> None:
    """``message`` and a newline on stdout (or stderr), flushed, as ``typer.echo`` writes it.

    Like typer's, it drops ANSI escape sequences (a server's message may carry them) unless
    the stream is a terminal.
    """
    stream = sys.stderr if err else sys.stdout
    if "\x1b" in message and not stream.isatty():
        import re  # noqa: PLC0415 - only for a message with an escape character

        message = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", message)
    stream.write(message + ("\n" if nl else ""))
    stream.flush()


def err(message: str) -> None:
    """One line on stderr."""
    echo(message, err=True)


def console() -> Console:
    from rich.console import Console  # noqa: PLC0415 - the CLI's start-up: only tables need rich

    # Never wrap or cut ARNs when output goes to a pipe or a file.
    return Console(width=None if sys.stdout.isatty() else 1000, highlight=False)


class Failed(Exception):
    """The server refused; ``lines`` are printed and the command exits 1."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def call(
    server: str, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> Any:
    """One request to the control plane; errors become :class:`Failed` in kubectl's words."""
    try:
        return signing.transport(server, timeout=120).call(method, PREFIX + path, body, query=query)
    except client.ControlPlaneError as error:
        answer = error.body
        if not isinstance(answer, dict):
            raise Failed([f"error: the server answered {error.status} {error.phrase}"]) from error
        if "__type" in answer:  # App Mesh's rendering: the gate's refusals (403) and others
            raise Failed(
                [f"Error from server ({answer['__type']}): {answer.get('message')}"]
            ) from error
        reason = answer.get("reason", "")
        lines = answer.get("errors") or [str(answer)]
        if reason == "Invalid":
            raise Failed([f"error: {line}" for line in lines]) from error
        raise Failed([f"Error from server ({reason}): {line}" for line in lines]) from error
    except OSError as error:
        why = getattr(error, "__cause__", None)
        why = getattr(why, "reason", why) or error
        raise Failed(
            [
                f"error: cannot reach the meshplane control plane at {server}: {why} "
                "(is `meshplane serve` running? set --server or MESHPLANE_SERVER)"
            ]
        ) from error


def read_text(path: Path) -> str:
    """A manifest file's text; one error line naming the file if it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        problem = f"{error.reason} at byte {error.start}"
        raise Failed([f"error: {path}: not UTF-8 text ({problem})"]) from None


def read_sources(files: list[str], recursive: bool = False) -> list[dict[str, str]]:
    """Name and text of every manifest ``-f`` names; ``-R`` walks directories down, as kubectl."""
    sources: list[dict[str, str]] = []
    for name in files:
        if name == "-":
            sources.append({"name": "-", "text": sys.stdin.read()})
            continue
        path = Path(name)
        if path.is_dir():
            walked = path.rglob("*") if recursive else path.iterdir()
            found = sorted(p for p in walked if p.suffix in MANIFEST_SUFFIXES and p.is_file())
            sources += [{"name": str(p), "text": read_text(p)} for p in found]
        elif path.is_file():
            sources.append({"name": name, "text": read_text(path)})
        else:
            raise Failed([f'error: the path "{name}" does not exist'])
    if not files:
        raise Failed(["error: must specify one of -f and -k"])
    return sources


def print_results(answer: dict[str, Any], verb: str | None = None, suffix: str = "") -> int:
    """Print one line per result and its warnings; the number of warnings."""
    warned = 0
    for result in answer["results"]:
        if verb == "deleted" and result["action"] != "skipped":
            echo(f'{result["resource"]} "{result["name"]}" deleted')
        else:
            echo(result["line"] + suffix)
        for warning in result["warnings"]:
            err(f"Warning: {warning}")
            warned += 1
    return warned


def show(
    rows: list[dict[str, Any]],
    kind: str,
    output: str | None,
    namespaces: bool,
    header: bool,
    widths: list[int] | None = None,
) -> None:
    """Print ``rows`` as ``get``'s table (without its header for ``-w``'s later rows).

    ``widths`` (``-w``) carries the column widths printed so far: later rows are padded to
    them (kubectl's watch rows line up under the first table) and widen them only when a
    value does not fit; it is updated in place. A watch that started on an empty list
    sizes its columns by the header and the first rows it prints.
    """
    if output == "name":
        print_names(rows, kind)
        sys.stdout.flush()
        return
    from meshplane.cli import describing, plaintables  # noqa: PLC0415 - tables: only here

    now, wide = time.time(), output == "wide"
    least = widths if widths is not None else []
    headers, cells = describing.cells(kind, rows, wide=wide, namespaces=namespaces, now=now)
    plain = plaintables.grid(headers, cells, header=header, min_widths=least)
    if plain is not None:  # a pipe or a file: the same text, without importing rich
        if widths is not None:
            widths[:] = plaintables.widths(headers, cells, least)
        echo(plain)
        sys.stdout.flush()
        return
    grid = describing.table(kind, rows, wide=wide, namespaces=namespaces, now=now, min_widths=least)
    if widths is not None:
        widths[:] = plaintables.widest(least, describing.widths(grid))
    grid.show_header = header
    out = console()
    with out.capture() as captured:
        out.print(grid)
    echo("\n".join(line.rstrip() for line in captured.get().splitlines()))
    sys.stdout.flush()  # a watcher's rows must reach a pipe as they come


def print_documents(items: list[dict[str, Any]], *, single: bool, as_json: bool) -> None:
    for item in items:
        item["metadata"].pop("creationEpoch", None)
    value: Any = items[0] if single else {"apiVersion": "v1", "kind": "List", "items": items}
    if as_json:
        echo(json.dumps(value, indent=4))
    else:
        import yaml  # noqa: PLC0415 - the CLI's start-up: only -o yaml needs it

        echo(yaml.safe_dump(value, sort_keys=False).rstrip())


def fetch(
    server: str, kind: str, name: str | None, where: str, all_namespaces: bool
) -> tuple[list[dict[str, Any]], str]:
    """``get``'s objects (one, or a list in ``where`` or every namespace) and their kind."""
    if name is not None:
        answer = call(server, "GET", f"/objects/{kind}/{name}", query={"namespace": where})
        return [answer["object"]], answer["object"]["kind"]
    query = None if all_namespaces else {"namespace": where}
    answer = call(server, "GET", f"/objects/{kind}", query=query)
    return answer["items"], answer["kind"]


def nothing_found(listed_kind: str, where: str, all_namespaces: bool) -> str:
    """Kubectl's line for an empty list."""
    cluster = listed_kind in ("Mesh", "Namespace")
    return "No resources found" + ("." if all_namespaces or cluster else f" in {where} namespace.")


def print_names(items: list[dict[str, Any]], listed_kind: str) -> None:
    """``-o name``: ``kind/name`` per object."""
    echo("\n".join(resource_name(item.get("kind", listed_kind), item) for item in items))


def resource_name(kind: str, item: dict[str, Any]) -> str:
    """``virtualnode.appmesh.k8s.aws/vn-a``; core kinds (Namespace) carry no group."""
    resource = kind.lower() if kind == "Namespace" else f"{kind.lower()}.{GROUP}"
    return f"{resource}/{item['metadata']['name']}"


def apply(server: str, sources: list[dict[str, str]], namespace: str | None) -> int:
    """``apply -f``: send the manifests, print a line per object; the number of warnings."""
    body = {"sources": sources, "namespace": namespace}
    return print_results(call(server, "POST", "/manifests/apply", body))
