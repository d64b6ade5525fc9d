"""Shared fixtures: a hand-made extract whose right answer is worked out in tests/test_e2e.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from socialsearch.cli import cli

DATA = Path(__file__).parent / "data"


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
