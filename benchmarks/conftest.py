"""Benchmark fixtures. Benchmarks are collected only when run explicitly, e.g.
``pytest benchmarks/ -p no:cacheprovider``; the helpers live in ``memory.py``."""

from __future__ import annotations

import pytest
from memory import PeakMemory


@pytest.fixture
def peak_memory() -> PeakMemory:
    return PeakMemory()
