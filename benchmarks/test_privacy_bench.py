"""Benchmark of the measured privacy attacks (``socialsearch.privacy_report``) on synthetic Denmarks.

Run (the issue's setting, scale 0.05, seed 11, week 2026-W47, about two minutes with the data)::

    python -m pytest benchmarks/test_privacy_bench.py -p no:cacheprovider -s -k issue

at national scale (``SOCIALSEARCH_BENCH_SCALE``, default 1.0; synth and five station runs come
first)::

    python -m pytest benchmarks/test_privacy_bench.py -p no:cacheprovider -s -k national

and over more weeks with ``SOCIALSEARCH_BENCH_WEEKS`` (default 4, at most 52: synth draws the
52 weeks of events that end with W; ``SOCIALSEARCH_BENCH_WEEKS=52`` runs one station run per week
first).

Each test makes (or reuses, in ``SOCIALSEARCH_BENCH_DIR``) the raw extracts, a keystore, the hub
extracts of the weeks that end with W (in ``hub-v<format version>-<week>``) and W again after a key
rotation, then times loading the register and :func:`socialsearch.privacy_report.measure` (model A
over the latest week, four weeks and all the weeks, B, C), prints the report's tables, the wall and
CPU seconds, the load average and the peak resident memory of the measurement. The same report
from the command line::

    python -m socialsearch.privacy_report DIR/hub-v4-2026-W44 DIR/hub-v4-2026-W45 DIR/hub-v4-2026-W46 \
        DIR/hub-v4-2026-W47 --register DIR/raw --keys DIR/keys-rotated --rotated DIR/hub-v4-2026-W47-rotated
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from memory import PeakMemory, bench_scale
from pytest_benchmark.fixture import BenchmarkFixture

from socialsearch.crypto.keys import KeyStore, keys_rotate
from socialsearch.hub_extract import HUB_VERSION, read_hub
from socialsearch.privacy_report import load_register, measure, render
from socialsearch.station.pipeline import pseudonymise
from socialsearch.synthetic import synth
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")
SEED = 11


def bench_weeks() -> int:
    """``SOCIALSEARCH_BENCH_WEEKS``: how many weekly extracts, ending with :data:`WEEK` (default 4, at most
    52: synth draws 52 weeks of events)."""
    return int(os.environ.get("SOCIALSEARCH_BENCH_WEEKS", "4"))


def _hub_dir(root: Path, week: IsoWeek) -> Path:
    """One hub extract folder per week and format version (extracts of another format are kept apart)."""
    return root / f"hub-v{HUB_VERSION}-{week}"


def _world(scale: float, n_weeks: int) -> Path:
    """The raw extracts, keystores and hub extracts for ``scale`` (made once, then reused)."""
    base = Path(os.environ.get("SOCIALSEARCH_BENCH_DIR") or tempfile.gettempdir())
    root = base / f"privacy-{scale:g}-seed{SEED}"
    if not (root / "raw" / "population.parquet").is_file():
        shutil.rmtree(root, ignore_errors=True)
        synth(root / "raw", scale=scale, seed=SEED, week=WEEK)
    if not (root / "keys").is_dir():
        KeyStore.init(root / "keys")
    for week in (WEEK.shift(-i) for i in range(n_weeks - 1, -1, -1)):
        if not _hub_dir(root, week).is_dir():
            pseudonymise(root / "raw", _hub_dir(root, week), root / "keys", week=week)
    if not (root / "keys-rotated").is_dir():
        shutil.copytree(root / "keys", root / "keys-rotated")
        old = KeyStore.load(root / "keys").primary_key_id
        added = keys_rotate(root / "keys-rotated")
        keys_rotate(root / "keys-rotated", promote=next(k for k in added.key_ids if k != old))
    rotated = root / f"hub-v{HUB_VERSION}-{WEEK}-rotated"
    if not rotated.is_dir():
        pseudonymise(root / "raw", rotated, root / "keys-rotated", week=WEEK)
    return root


def _measure(scale: float, benchmark: BenchmarkFixture, peak_memory: PeakMemory) -> dict[str, Any]:
    n_weeks = bench_weeks()
    root = _world(scale, n_weeks)
    weeks = [WEEK.shift(-i) for i in range(n_weeks - 1, -1, -1)]
    hubs = [read_hub(_hub_dir(root, w)) for w in weeks]
    rotated = read_hub(root / f"hub-v{HUB_VERSION}-{WEEK}-rotated")
    keystore = KeyStore.load(root / "keys-rotated")
    out: dict[str, Any] = {}

    def once() -> None:
        peak_memory.reset()
        started, cpu = time.perf_counter(), time.process_time()
        register = load_register(root / "raw")
        loaded, cpu_loaded = time.perf_counter(), time.process_time()
        out["report"] = measure(hubs, register, keystore=keystore, rotated=rotated,
                                spans=sorted({1, min(4, n_weeks), n_weeks}))
        out["seconds"] = (loaded - started, time.perf_counter() - loaded)
        out["cpu"] = (cpu_loaded - cpu, time.process_time() - cpu_loaded)
        out["mib"] = peak_memory.mib()

    benchmark.pedantic(once, rounds=1, iterations=1)
    (load, attacks), (load_cpu, attacks_cpu) = out["seconds"], out["cpu"]
    print(f"\nscale {scale:g}, seed {SEED}, weeks {weeks[0]}..{WEEK}, hub format {hubs[-1].manifest['version']}:"
          f" register read in {load:.1f} s ({load_cpu:.1f} CPU s), attacks {attacks:.1f} s ({attacks_cpu:.1f} CPU s),"
          f" peak {out['mib']:,.0f} MiB{'' if peak_memory.exact else ' (whole process)'}; load average"
          f" {os.getloadavg()[0]:.1f}")
    print(render(out["report"]))
    return dict(out["report"])


def test_privacy_report_issue_setting(benchmark: BenchmarkFixture, peak_memory: PeakMemory) -> None:
    report = _measure(0.05, benchmark, peak_memory)
    assert report["register"]["one week"]["child"]["shipped"] > 0


@pytest.mark.skipif(bench_scale() <= 0.05, reason="SOCIALSEARCH_BENCH_SCALE is the issue's scale already")
def test_privacy_report_national(benchmark: BenchmarkFixture, peak_memory: PeakMemory) -> None:
    report = _measure(bench_scale(), benchmark, peak_memory)
    assert report["register"]["one week"]["child"]["shipped"] > 0
