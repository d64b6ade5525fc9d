"""The whole weekly job at national scale: a source station pseudonymises, the hub runs the week.

Run (national scale; the synthetic extract is generated once and kept under
``SOCIALSEARCH_BENCH_DIR``, default a temporary folder)::

    python -m pytest benchmarks/test_pipeline_bench.py -p no:cacheprovider -s \
        --benchmark-columns=min,mean,max,rounds
    SOCIALSEARCH_BENCH_SCALE=0.1 python -m pytest benchmarks/test_pipeline_bench.py -s

Two measurements, each with its peak resident memory (``VmHWM`` reset before the step):

* ``pseudonymise``: read and validate the raw extracts, pseudonymise (HMAC once per distinct
  CPR number), seal the per-value vault columns, encode names of people without a valid CPR
  and of the whole population, write the hub layout;
* ``run``: the hub's weekly run on the pseudonymised extracts with a hub keystore (read,
  fuzzy resolution, search, drafts JSON + HTML, vault, ledger) on a fresh state folder,
  with the seconds of each stage.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from memory import bench_scale

from socialsearch.hub import run
from socialsearch.keys import KeyStore, keys_export
from socialsearch.station import pseudonymise_dir
from socialsearch.synthetic import synth
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")


@pytest.fixture(scope="module")
def workspace() -> Path:
    root = Path(os.environ.get("SOCIALSEARCH_BENCH_DIR") or tempfile.mkdtemp(prefix="ss-bench-"))
    scale = bench_scale()
    extract = root / f"extract-{scale:g}"
    if not (extract / "population.parquet").is_file():
        start = time.perf_counter()
        synth(extract, scale=scale, seed=0, week=WEEK)
        print(f"\nsynthesised scale {scale:g} in {time.perf_counter() - start:.1f} s")
    keys = root / "keys"
    if not keys.is_dir():
        KeyStore.init(keys)
        keys_export(keys, root / "hub-keys", "hub")
    return root


def test_pseudonymise_national(benchmark, workspace: Path, peak_memory) -> None:
    extract = workspace / f"extract-{bench_scale():g}"
    pseudo = workspace / f"pseudo-{bench_scale():g}"

    def step() -> dict:
        shutil.rmtree(pseudo, ignore_errors=True)
        return pseudonymise_dir(extract, pseudo, workspace / "keys")

    peak_memory.reset()
    report = benchmark.pedantic(step, rounds=1, iterations=1)
    benchmark.extra_info.update(scale=bench_scale(), peak_rss_mib=round(peak_memory.mib()), rows=report["rows"])
    print(f"\npseudonymise: peak RSS {peak_memory.mib():.0f} MiB, rows {report['rows']}")


def test_weekly_run_at_hub_national(benchmark, workspace: Path, peak_memory) -> None:
    pseudo = workspace / f"pseudo-{bench_scale():g}"
    if not (pseudo / "manifest.json").is_file():
        pseudonymise_dir(workspace / f"extract-{bench_scale():g}", pseudo, workspace / "keys")
    reports = []

    def step() -> None:
        for sub in ("out", "state"):
            shutil.rmtree(workspace / sub, ignore_errors=True)
        reports.append(run(input_dir=pseudo, week=WEEK, out_dir=workspace / "out",
                                state_dir=workspace / "state", keys_dir=workspace / "hub-keys"))

    peak_memory.reset()
    benchmark.pedantic(step, rounds=2, iterations=1)
    report = reports[-1]
    benchmark.extra_info.update(scale=bench_scale(), peak_rss_mib=round(peak_memory.mib()),
                                drafts=report.drafts, stages=report.timings,
                                persons=report.summary["persons"])
    print(f"\nrun: {report.drafts} drafts, stages {report.timings}, peak RSS {peak_memory.mib():.0f} MiB, "
          f"persons {report.summary['persons']}")
