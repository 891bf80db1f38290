"""The ``meshplane`` console script: the common ``get``, ``apply``, ``proxy-status`` without typer.

Everything else goes to typer (:mod:`meshplane.cli.main`) as before.

Importing typer and building a command from its signature cost more than the 100 ms a
client command may take to start (typer 0.29 alone ~70 ms of CPU, its pydantic adapters
~100 ms more), while these three commands are run all day by people and scripts. So
``meshplane get virtualservices -n demos``, ``meshplane apply -f x.yaml`` and ``meshplane
proxy-status`` are parsed here, from a table of the options each supports, and run the
same code the typer commands run (:mod:`meshplane.cli.calling`,
:func:`meshplane.cli.proxystatus.run`). Anything else — ``--help``, an option this table
does not know (``get -w``, ``apply --wait``, ``-l``…), a value that looks like an option, a
missing or extra argument, shell completion — is handed to typer untouched, so help, errors
and completion stay typer's, byte for byte. ``tests/cli/test_fastpath.py`` checks the table
against typer's commands and both paths' output on the same command lines.

Imports only the standard library and typer-free modules.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

FLAG, VALUE, VALUES = "flag", "value", "values"
"""An option's kind: a boolean flag, one value (the last given wins), or a repeatable one."""

Options = dict[str, tuple[str, str]]
"""Each accepted spelling (``--namespace``, ``-n``) → the parameter it sets and its kind."""

SERVER_ENV = "MESHPLANE_SERVER"
DEFAULT_SERVER = "http://127.0.0.1:9080"
EVENT_WORDS = frozenset({"events", "event", "ev"})
"""``get events`` (:data:`meshplane.cli.events.WORDS`) is typer's: it is rare and imports typer."""
OUTPUTS = frozenset({"wide", "name", "json", "yaml"})
"""The ``get -o`` formats run here; jsonpath and custom-columns go to typer."""


def _spellings(**params: tuple[str, tuple[str, ...]]) -> Options:
    return {flag: (param, kind) for param, (kind, flags) in params.items() for flag in flags}


COMMANDS: dict[str, tuple[Options, tuple[str, ...], int]] = {
    "get": (
        _spellings(
            namespace=(VALUE, ("--namespace", "-n")),
            all_namespaces=(FLAG, ("--all-namespaces", "-A")),
            output=(VALUE, ("--output", "-o")),
            server=(VALUE, ("--server", "-s")),
        ),
        ("kind", "name"),
        1,
    ),
    "apply": (
        _spellings(
            files=(VALUES, ("--filename", "-f")),
            recursive=(FLAG, ("--recursive", "-R")),
            namespace=(VALUE, ("--namespace", "-n")),
            server=(VALUE, ("--server", "-s")),
            strict=(FLAG, ("--strict",)),
        ),
        (),
        0,
    ),
    "proxy-status": (
        _spellings(
            server=(VALUE, ("--server", "-s")),
            output=(VALUE, ("--output", "-o")),
        ),
        (),
        0,
    ),
}
"""Per command: the options run here, the positional arguments' names, how many are required."""


def parse(
    words: list[str], options: Options, arguments: tuple[str, ...], required: int
) -> dict[str, object] | None:
    """The parameters ``words`` set, as typer would pass them; ``None`` for typer to decide."""
    values: dict[str, object] = {}
    positional: list[str] = []
    at = 0
    while at < len(words):
        word = words[at]
        at += 1
        if not word.startswith("-"):
            positional.append(word)
            continue
        spelling, equals, attached = (
            word.partition("=") if word.startswith("--") else (word, "", "")
        )
        param, kind = options.get(spelling, ("", ""))
        if not param or (kind == FLAG and equals):
            return None  # unknown, "--", "-", "-xvalue", "--flag=x": typer's to parse or refuse
        if kind == FLAG:
            values[param] = True
            continue
        if not equals:
            if at == len(words) or (words[at].startswith("-") and words[at] != "-"):
                return None  # a missing value: typer's error
            attached, at = words[at], at + 1
        if kind == VALUES:
            values.setdefault(param, [])
            values[param].append(attached)  # type: ignore[attr-defined]
        else:
            values[param] = attached
    if not required <= len(positional) <= len(arguments):
        return None
    values.update(zip(arguments, positional, strict=False))
    return values


def _server(values: dict[str, object]) -> str:
    return str(values.get("server") or os.environ.get(SERVER_ENV) or DEFAULT_SERVER)


def _failed(failure: Exception) -> int:
    from meshplane.cli import calling  # noqa: PLC0415

    for line in getattr(failure, "lines", [str(failure)]):
        calling.err(line)
    return 1


def _get(values: dict[str, object]) -> int | None:
    kind, name = str(values["kind"]), values.get("name")
    output = values.get("output")
    if kind in EVENT_WORDS or (output is not None and output not in OUTPUTS):
        return None
    from meshplane.cli import calling  # noqa: PLC0415

    all_namespaces = bool(values.get("all_namespaces"))
    where = str(values.get("namespace") or "default")
    single = name is not None
    try:
        items, listed = calling.fetch(
            _server(values), kind, None if name is None else str(name), where, all_namespaces
        )
    except calling.Failed as failure:
        return _failed(failure)
    if output in ("yaml", "json"):
        calling.print_documents(items, single=single, as_json=output == "json")
    elif output == "name" and items:
        calling.print_names(items, listed)
    elif not items:
        calling.err(calling.nothing_found(listed, where, all_namespaces))
    else:
        calling.show(items, listed, None if output is None else str(output), all_namespaces, True)
    return 0


def _apply(values: dict[str, object]) -> int | None:
    from meshplane.cli import calling  # noqa: PLC0415

    files = values.get("files") or []
    assert isinstance(files, list)
    namespace = values.get("namespace")
    try:
        sources = calling.read_sources(files, bool(values.get("recursive")))
        warned = calling.apply(
            _server(values), sources, None if namespace is None else str(namespace)
        )
        if values.get("strict") and warned:
            raise calling.Failed([f"error: {warned} warning(s) and --strict"])
    except calling.Failed as failure:
        return _failed(failure)
    return 0


def _proxy_status(values: dict[str, object]) -> int | None:
    from meshplane.cli import proxystatus  # noqa: PLC0415

    return proxystatus.run(_server(values), str(values.get("output", "table")))


RUNNERS: dict[str, Callable[[dict[str, object]], int | None]] = {
    "get": _get,
    "apply": _apply,
    "proxy-status": _proxy_status,
}


def run(argv: list[str]) -> int | None:
    """Run ``argv`` here and return its exit code, or ``None`` (nothing printed) for typer."""
    if argv == ["--version"]:  # what the root's --version callback prints
        from meshplane import __version__  # noqa: PLC0415

        sys.stdout.write(f"meshplane {__version__}\n")
        return 0
    if not argv or argv[0] not in COMMANDS or "_MESHPLANE_COMPLETE" in os.environ:
        return None
    options, arguments, required = COMMANDS[argv[0]]
    values = parse(argv[1:], options, arguments, required)
    if values is None:
        return None
    try:
        return RUNNERS[argv[0]](values)
    except KeyboardInterrupt:  # as typer ends on Ctrl-C: 130, nothing printed
        return 130
    except BrokenPipeError:  # as typer ends when the reader of a pipe is gone (`| head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1


def main() -> None:
    """Console-script entry point: the fast path, else typer's CLI (one-line usage errors)."""
    code = run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from meshplane.cli import main as typer_main  # noqa: PLC0415 - only when typer is needed

    typer_main.main()
