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


# ------------------------------------------------------------------------------- one public line
def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``socialsearch.crypto.keys``); the native
    extension by its type stub."""
    found = {}
    for path in sorted([*SRC.rglob("*.py"), *SRC.rglob("*.pyi")]):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _top_level_names(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names += [e.id for e in ([target] if isinstance(target, ast.Name) else getattr(target, "elts", []))
                          if isinstance(e, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def test_no_module_imports_another_modules_private_name() -> None:
    """A name with a leading underscore is its module's own; sharing it means making it part of
    the module's ``__all__`` (or moving it to a private module of the package)."""
    modules = _modules()
    found = []
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if not (node.level or (node.module or "").startswith("socialsearch")):
                continue
            base = package[: len(package) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and f"{source}.{alias.name}" not in modules and source != name:
                    found.append(f"{name} imports {source}.{alias.name}")
    assert found == []


def test_every_public_name_is_in_its_modules_all() -> None:
    """Each public module says what it offers: every top-level name without a leading underscore is
    in its ``__all__`` (the package's ``__all__`` is the API; a module's ``__all__`` is what the
    package's other modules may use); private modules (``_reading``, ``synthetic._people``) keep
    their names to their package. The CLI's click commands are registered by their decorators."""
    import importlib

    loose = []
    for name, path in _modules().items():
        if any(part.startswith("_") for part in name.split(".")[1:]):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [n for n in _top_level_names(tree) if not n.startswith("_") and n != "log"]
        if not names:
            continue
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{name} has no __all__"
        for n in exported:
            assert hasattr(module, n), f"{name}.__all__ names {n}, which it does not define"
        loose += [f"{name}.{n}" for n in names
                  if n not in exported and not isinstance(getattr(module, n, None), click.Command)]
    assert loose == []
