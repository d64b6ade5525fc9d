"""Benchmark fixtures. Benchmarks are collected only when run explicitly, e.g.
``pytest benchmarks/ -p no:cacheprovider``; the helpers live in ``memory.py``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from memory import PeakMemory, bench_scale

from socialsearch.crypto.keys import KeyStore, keys_export
from socialsearch.synthetic import synth

BENCH_WEEK = "2026-W47"


@pytest.fixture
def peak_memory() -> PeakMemory:
    return PeakMemory()


@pytest.fixture(scope="module")
def workspace() -> Path:
    """``SOCIALSEARCH_BENCH_DIR`` (or a temporary folder) holding ``extract-<scale>/`` (made with
    seed 0 for week 2026-W47 when missing), a full keystore ``keys`` and a hub export ``hub-keys``."""
    root = Path(os.environ.get("SOCIALSEARCH_BENCH_DIR") or tempfile.mkdtemp(prefix="ss-bench-"))
    extract = root / f"extract-{bench_scale():g}"
    if not (extract / "population.parquet").is_file():
        synth(extract, scale=bench_scale(), seed=0, week=BENCH_WEEK)
    if not (root / "keys").is_dir():
        KeyStore.init(root / "keys")
    if not (root / "hub-keys").is_dir():
        keys_export(root / "keys", root / "hub-keys", "hub")
    return root
