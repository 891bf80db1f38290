"""Bad option values as one line for every command: ``error: --api-port must be an integer…``.

typer answers ``--api-port abc`` with a framed usage block of several lines; kubectl and
istioctl say ``error: invalid argument "abc" for "--port" flag`` and where to look. One
handler around the whole CLI (:func:`run`) does that for every command and every option,
so no command has to declare its own integer type. The rule comes from the value's
validation (an integer, a number, one of a set), the hint from the command's path. Other
usage errors (an unknown or missing option) keep typer's rendering.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer
from typer import core

_RULES = {
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
}
"""Pydantic error types (typer validates values with pydantic) → the rule, in words."""


def _name(param: Any) -> str:
    """``--api-port`` (the long form), or ``WORKLOAD`` for an argument."""
    opts = [str(o) for o in getattr(param, "opts", []) or []]
    long = [o for o in opts if o.startswith("--")]
    if long:
        return long[0]
    if opts and opts[0].startswith("-"):
        return opts[0]
    return str(getattr(param, "name", "") or "value").upper()


def _rule(error: typer.BadParameter) -> tuple[str, Any]:
    """The rule broken and the value given (``...`` when it is not known)."""
    cause = error.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        first = errors()[0]
        rule = _RULES.get(first.get("type", ""))
        if rule is not None:
            return rule, first.get("input", ...)
        return str(first.get("msg", error.message)).rstrip(".").lower(), first.get("input", ...)
    return error.message.rstrip(".").lower(), ...


def line(error: typer.BadParameter) -> str:
    """The one line said for ``error`` (no newline)."""
    where = error.ctx.command_path if error.ctx is not None else "meshplane"
    see = f"(see '{where} --help')"
    if type(error).__name__ == "MissingParameter":  # a BadParameter without a value
        kind = "option" if _name(error.param).startswith("-") else "argument"
        return f"error: missing {kind} {_name(error.param)} {see}"
    rule, value = _rule(error)
    given = "" if value is ... else f", got {value!r}"
    return f"error: {_name(error.param)} {rule}{given} {see}"


def run(invoke: Callable[[], Any]) -> NoReturn:
    """Run ``invoke`` (typer's non-standalone ``main``) and exit as the standalone CLI does.

    A bad option value exits 2 with one line instead of a usage block. The root group's
    ``main`` calls this (:class:`meshplane.cli.registry.LazyGroup`), so the console script
    and typer's ``CliRunner`` in tests answer alike.
    """
    try:
        code = invoke()
    except typer.BadParameter as error:
        typer.echo(line(error), err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    except Exception as error:  # another usage error: typer's own rendering, as before
        exit_code = getattr(error, "exit_code", None)
        if not isinstance(exit_code, int) or not hasattr(error, "show"):
            raise
        _show(error)
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _show(error: Any) -> None:
    """A usage error as typer shows it in its standalone mode."""
    if core.HAS_RICH:
        from typer import rich_utils  # noqa: PLC0415 - rich only when an error is shown

        rich_utils.rich_format_error(error)
    else:
        error.show()
