"""The library's defaults are the command line's: each command calls the function of the same name,
and a default left out gives the same result from Python as from the shell."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

import socialsearch as api
from socialsearch.cli import cli

# A CLI parameter whose function parameter has another name: (command, CLI name) -> function name.
RENAMED = {
    ("synth", "out_dir"): "out",
    ("keys_export", "out_dir"): "out",
    ("pseudonymise", "catalogue_path"): "catalogue",
    ("run", "catalogue_path"): "catalogue",
    ("open", "drafts_dir"): "drafts",
    ("open", "keys_dir"): "keys",
    ("open", "out_dir"): "out",
    **{(c, "keys_dir"): "directory"
       for c in ("keys_init", "keys_show", "keys_rotate", "keys_export", "keys_municipality_init")},
}
#: commands whose function has another name (``open`` would shadow the built-in)
FUNCTIONS = {"open": "open_drafts"}
# CLI parameters with no counterpart in the function: how the command prints, or a second mode.
CLI_ONLY = {("drafts_list", "as_json"), ("review", "import_file")}


def commands(group: click.Group = cli, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name}_")
        else:
            yield f"{prefix}{name}", command


def received(param: click.Parameter, ctx: click.Context) -> Any:
    """What the command gets for ``param`` when it is left out."""
    value = param.get_default(ctx, call=True)
    if value is None or type(value).__name__ == "Sentinel":  # no default (click 8.3 calls it UNSET)
        if isinstance(param, click.Option) and param.is_flag:
            return False
        return () if param.multiple else None
    return value


def same(cli_default: Any, py_default: Any) -> bool:
    if isinstance(cli_default, Path) or isinstance(py_default, Path):
        return str(cli_default) == str(py_default)
    if isinstance(cli_default, list | tuple) and isinstance(py_default, list | tuple):
        return tuple(cli_default) == tuple(py_default)
    return bool(cli_default == py_default)


@pytest.mark.parametrize(("name", "command"), list(commands()), ids=[n for n, _ in commands()])
def test_every_cli_default_is_the_librarys(name: str, command: click.Command) -> None:
    function = getattr(api, FUNCTIONS.get(name, name))
    signature = inspect.signature(function).parameters
    ctx = click.Context(command)
    for param in command.params:
        if param.name in ("verbose", "quiet") or (name, param.name) in CLI_ONLY:
            continue
        assert param.name is not None
        target = RENAMED.get((name, param.name), param.name)
        assert target in signature, f"{name}: --{param.name} has no parameter {target} in {function.__name__}()"
        cli_default = received(param, ctx)
        py_default = signature[target].default
        if py_default is inspect.Parameter.empty:
            assert cli_default in (None, False, ()) or param.required, (
                f"{name}: the CLI defaults {param.name} to {cli_default!r}; the library requires it")
        elif param.required:
            continue  # the CLI asks for it; the library may offer a default
        else:
            assert same(cli_default, py_default) or (cli_default is None and py_default in (None, (), False)), (
                f"{name}: the CLI defaults {param.name} to {cli_default!r}, {function.__name__}() to {py_default!r}")


def test_synth_from_python_is_as_small_as_from_the_shell() -> None:
    assert inspect.signature(api.synth).parameters["scale"].default == 0.01
