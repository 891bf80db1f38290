"""The ``meshplane`` command table: a command's module is imported only when that command runs.

A CLI process runs one command, yet building every command up front meant importing every
command module (and whatever each imports: rich, the runtime, the translator) and letting
typer inspect every signature, which cost most of a second before ``get`` sent its first
request. Here the root group starts with a placeholder per row of :data:`meshplane.cli.main.
COMMANDS`: enough for ``meshplane --help``, "did you mean" and the completion of command
names, which show a command's name and the first paragraph of its help and nothing more.
When a command is resolved to run (or to complete its own options), its module is imported
and its ``register(cli)`` builds the real command in place of the placeholder, so ``meshplane
get --help``, errors and completion come from typer exactly as before.

Imports typer only; never a command module at import time.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from typing import Any, ClassVar

import typer
import typer.core
import typer.main
from typer import _click


@dataclasses.dataclass(frozen=True)
class Command:
    """One row of the table: the name typed, the module that registers it, its listed help."""

    name: str
    module: str
    """A module with ``register(cli: typer.Typer) -> None`` that adds the command ``name``."""
    help: str
    """The first paragraph of the command's own help, as ``meshplane --help`` lists it (a test
    checks the two agree)."""


class _Placeholder(typer.core.TyperCommand):
    """A command not imported yet: it lists, completes by name and suggests, never runs."""


class LazyGroup(typer.core.TyperGroup):
    """The root group: placeholders first, each replaced by its real command when resolved."""

    table: ClassVar[tuple[Command, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        """Build typer's group, then add a placeholder for every row of :attr:`table`."""
        super().__init__(**attrs)
        for row in self.table:
            self.commands.setdefault(row.name, _Placeholder(name=row.name, help=row.help))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Typer's ``main``; standalone (the console script, ``CliRunner``), errors as one line.

        The one-line usage errors live here rather than around the entry point, so that tests
        invoking the CLI through typer's ``CliRunner`` see what users see (cli/usage.py).
        """
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        from meshplane.cli import usage  # noqa: PLC0415 - only when the CLI runs

        return usage.run(
            lambda: super(LazyGroup, self).main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        )

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        """Typer's resolution (its errors and suggestions), then the real command."""
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, _Placeholder):
            command = self.load(name)
        return name, command, rest

    def load(self, name: str) -> _click.Command:
        """Import the module of command ``name`` and put its real command(s) in the group."""
        row = next(row for row in self.table if row.name == name)
        registrar = typer.Typer()
        importlib.import_module(row.module).register(registrar)
        for built_name, built in typer.main.get_group(registrar).commands.items():
            if isinstance(self.commands.get(built_name), _Placeholder):
                self.commands[built_name] = built
        return self.commands[name]


def group(table: tuple[Command, ...]) -> type[LazyGroup]:
    """A :class:`LazyGroup` class for ``typer.Typer(cls=...)`` that lists ``table``."""
    return type("MeshplaneGroup", (LazyGroup,), {"table": table})
