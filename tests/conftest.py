"""Shared fixtures: a hand-made extract whose right answer is worked out in tests/test_e2e.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
