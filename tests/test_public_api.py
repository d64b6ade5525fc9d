"""The public surface: ``socialsearch.__all__`` is deliberate, and the CLI is a thin layer over it.

Every CLI command (``keys rotate``) is one call of the library function of the same name
(``socialsearch.keys_rotate``); the library never imports click and raises only its own errors.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import socialsearch
from socialsearch.cli import cli

SRC = Path(socialsearch.__file__).parent

#: one function per CLI command, of the same name (``review --import`` is ``import_decisions``)
OPERATIONS = {
    "audit_verify", "catalogue_check", "demo", "drafts_list", "import_decisions", "keys_export", "keys_init",
    "keys_municipality_add", "keys_municipality_init", "keys_rekey", "keys_rotate", "keys_show", "open_drafts",
    "pseudonymise", "reidentify", "review", "run", "stats", "synth",
}
#: CLI commands whose library function has another name (``open`` would shadow the built-in)
RENAMED = {"open": "open_drafts"}
#: the building blocks under them
BUILDING_BLOCKS = {
    "Catalogue", "Category", "Code", "History", "HubExtract", "IsoWeek", "KeyStore", "Ledger", "Pseudonymiser",
    "RawExtracts", "RunReport", "SearchResult", "age_on", "birth_date", "build_documents", "cpr_status",
    "geography", "is_valid_cpr", "load_catalogue", "lock_state", "normalise_cpr", "pseudonymise_extracts",
    "read_hub", "read_raw", "render_html", "resolve", "weekly_search", "write_hub",
}
ERRORS = {
    "SocialsearchError", "UsageError", "InputError", "CatalogueError", "KeyStoreError", "VaultError", "LedgerError",
    "StateLockedError", "AuditError",
}


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every leaf command of ``group`` as (``keys_rotate``, command)."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name}_")
        else:
            full = f"{prefix}{name}".replace("-", "_")
            yield RENAMED.get(full, full), command


def test_all_names_exactly_the_public_surface() -> None:
    assert set(socialsearch.__all__) == OPERATIONS | BUILDING_BLOCKS | ERRORS
    assert len(socialsearch.__all__) == len(set(socialsearch.__all__))
    assert socialsearch.__all__ == sorted(socialsearch.__all__, key=lambda n: (not n[0].isupper(), n))
    for name in socialsearch.__all__:
        assert getattr(socialsearch, name) is not None, name


def test_every_cli_command_has_its_same_named_library_function() -> None:
    commands = dict(_commands(cli))
    assert set(commands) == OPERATIONS - {"import_decisions"}
    for name in commands:
        function = getattr(socialsearch, name)
        assert inspect.isfunction(function), name
        assert function.__module__.startswith("socialsearch."), name
        assert function.__doc__, f"{name} has no docstring"


def test_every_cli_command_calls_exactly_its_library_function() -> None:
    for name, command in _commands(cli):
        assert command.callback is not None
        tree = ast.parse(inspect.getsource(command.callback).lstrip())
        called = {node.func.attr for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == "api"}
        expected = {name, "import_decisions"} if name == "review" else {name}
        assert called == expected, f"`{name}` calls {sorted(called)}"


def test_operations_take_str_or_path_and_weeks_as_str_or_isoweek() -> None:
    for name in sorted(OPERATIONS):
        hints = typing.get_type_hints(getattr(socialsearch, name))
        for parameter, hint in hints.items():
            args = set(typing.get_args(hint)) or {hint}
            if parameter.endswith("_dir") or parameter in ("path", "out", "directory", "input_dir", "catalogue"):
                assert {str, Path} <= args, f"{name}({parameter}: {hint})"
            if parameter == "week" or parameter.endswith("_week"):
                assert {str, socialsearch.IsoWeek} <= args, f"{name}({parameter}: {hint})"


def test_the_library_does_not_use_click() -> None:
    users = [p.name for p in sorted(SRC.glob("*.py"))
             if p.name != "cli.py" and "click" in p.read_text(encoding="utf-8")]
    assert users == []
    code = "import sys, socialsearch; sys.exit('click' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_private_modules_are_underscored_and_not_exported() -> None:
    for name in ("_atomic", "_resources", "_demo", "ledger/_lock", "ledger/_schema", "ledger/_store"):
        assert (SRC / f"{name}.py").is_file(), name
    for name in ("atomic", "resources", "demo", "synth"):
        assert not (SRC / f"{name}.py").exists(), f"{name}.py: private plumbing is underscored"
    assert not any(name.startswith("_") for name in socialsearch.__all__)


def _misuses(root: Path) -> dict[str, typing.Callable[[], object]]:
    """Each operation given a folder that does not exist, or a bad week or draft."""
    nowhere = root / "nowhere"
    keys = root / "keys"
    return {
        "keys_init": lambda: socialsearch.keys_init(keys),  # a second time: refused
        "keys_show": lambda: socialsearch.keys_show(nowhere),
        "keys_rotate": lambda: socialsearch.keys_rotate(nowhere),
        "keys_export": lambda: socialsearch.keys_export(keys, keys, "hub"),
        "keys_rekey": lambda: socialsearch.keys_rekey(nowhere, keys),
        "audit_verify": lambda: socialsearch.audit_verify(nowhere),
        "catalogue_check": lambda: socialsearch.catalogue_check(nowhere / "event_codes.toml"),
        "drafts_list": lambda: socialsearch.drafts_list(root, week="2026-W99"),
        "review": lambda: socialsearch.review(nowhere, "D2026-W47-k1a2b3c4d-0123456789abcdef", "approve", "ok", "AB"),
        "import_decisions": lambda: socialsearch.import_decisions(nowhere, nowhere / "decisions.json"),
        "reidentify": lambda: socialsearch.reidentify(nowhere, keys, "D2026-W47-k1a2b3c4d-0123456789abcdef"),
        "stats": lambda: socialsearch.stats(nowhere, from_week="2026-W47", to_week="2026-W46", out_dir=root / "q"),
        "pseudonymise": lambda: socialsearch.pseudonymise(nowhere, root / "pseudo", keys, week="2026-W47"),
        "run": lambda: socialsearch.run(nowhere, "2026-W47", root / "out", root / "state", keys),
        "synth": lambda: socialsearch.synth(root / "synth", scale=0.001, week="2026-W54"),
        "demo": lambda: socialsearch.demo(keys, week="2026-W47"),  # a folder that is not an earlier demo
        "keys_municipality_init": lambda: socialsearch.keys_municipality_init(root / "m", "999"),  # no such code
        "keys_municipality_add": lambda: socialsearch.keys_municipality_add(keys, nowhere / "municipality.pub"),
        "open_drafts": lambda: socialsearch.open_drafts(nowhere, nowhere),
    }


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operations_refuse_with_their_own_errors(name: str, tmp_path: Path) -> None:
    socialsearch.keys_init(tmp_path / "keys")
    with pytest.raises(socialsearch.SocialsearchError):
        _misuses(tmp_path)[name]()
