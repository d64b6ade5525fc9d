"""Shared fixtures: a hand-made extract whose right answer is worked out in tests/test_e2e.py."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

from socialsearch.cli import cli

DATA = Path(__file__).parent / "data"

# No timing in tests: a property holds however loaded the machine is (CI shares two cores), so
# hypothesis's per-example deadline is off everywhere, not only where a test said so.
settings.register_profile("socialsearch", deadline=None)
settings.load_profile("socialsearch")


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """A copy of ``tests/data/scenario`` (raw extracts, three districts) in a temporary folder."""
    target = tmp_path / "extract"
    shutil.copytree(DATA / "scenario", target)
    return target


@pytest.fixture
def catalogue_file() -> Path:
    """The small test catalogue the hand-made scenario was worked out with."""
    return DATA / "catalogue.toml"


def invoke(*args: str | Path) -> tuple[int, str]:
    """Run the command line in process: (exit code, everything it printed)."""
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """A new full keystore made through the command line."""
    code, out = invoke("keys", "init", "--keys", tmp_path / "keys")
    assert code == 0, out
    return tmp_path / "keys"


def tamper(state: Path, *statements: str, recreate: bool = True) -> None:
    """Edit the ledger's tables as an attacker with sqlite3 would: drop every trigger, run the
    statements, and (unless ``recreate=False``) put the triggers back."""
    conn = sqlite3.connect(state / "ledger.sqlite", isolation_level=None)
    try:
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        for statement in statements:
            conn.execute(statement)
        if recreate:
            for _, sql in triggers:
                conn.execute(sql)
    finally:
        conn.close()
