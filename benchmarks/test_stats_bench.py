"""Benchmark of ``socialsearch.statistics.stats`` on a quarter of a national ledger.

Run (about 1 min, most of it building the ledger through the real ``Ledger`` API)::

    pytest benchmarks/test_stats_bench.py -p no:cacheprovider --benchmark-columns=min,mean,max,rounds -s

The ledger holds 13 weeks (2026-W27..W39) of ``DRAFTS_PER_WEEK`` drafts each (DESIGN §8: a few
thousand a week for Denmark), children drawn from 60,000 with municipalities weighted by
population, four signals per draft with random categories and police districts, and
``REVIEWS`` decisions. The statistics use every ``--by`` dimension, so the suppression runs over
all linked tables (about 560 cells).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from socialsearch.geography import geography
from socialsearch.ledger import Ledger
from socialsearch.statistics import DIMENSIONS, stats
from socialsearch.weeks import IsoWeek

FIRST = IsoWeek.parse("2026-W27")
WEEKS = 13
DRAFTS_PER_WEEK = 3_000
REVIEWS = 600
CATEGORIES = ["violence", "threats", "drugs", "neglect", "domestic_disturbance", "intoxicated_driving"]


def build_ledger(state: Path, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    geo = geography().municipalities_frame()
    population = geo["population"].to_numpy().astype(float)
    districts = sorted(geography().district_codes)
    children = np.array([f"c{i:07d}" for i in range(60_000)])
    home = rng.choice(geo["municipality"].to_numpy(), size=children.size, p=population / population.sum())
    with Ledger.open(state) as ledger:
        for k in range(WEEKS):
            week = FIRST.shift(k)
            idx = rng.choice(children.size, size=DRAFTS_PER_WEEK, replace=False)
            ids = [f"D{week}-{i}" for i in idx]
            drafts = pl.DataFrame(
                {"draft_id": ids, "week": str(week), "child": children[idx], "municipality": home[idx],
                 "age": rng.integers(0, 18, idx.size),
                 "rule": rng.choice(["immediate", "threshold"], idx.size, p=[0.2, 0.8]),
                 "score": 3, "threshold": 3,
                 "previous_drafts": [[] if rng.random() < 0.8 else ["D-earlier"] for _ in idx]},
                schema_overrides={"previous_drafts": pl.List(pl.String)},
            )
            n = idx.size * 4
            signals = pl.DataFrame(
                {"draft_id": np.repeat(ids, 4), "child": np.repeat(children[idx], 4),
                 "event_ref": [f"e{k}-{j}" for j in range(n)], "person": "p", "role": "suspect",
                 "link": "father", "kind": "offence", "code": "1100", "weight": 1, "new": True,
                 "category": rng.choice(CATEGORIES, n), "district": rng.choice(districts, n),
                 "registered_at": [week.end - timedelta(hours=float(h)) for h in rng.uniform(1, 160, n)]},
                schema_overrides={"registered_at": pl.Datetime("us", "Europe/Copenhagen")},
            )
            ledger.runs.record(week, drafts, signals)
        ids = [r[0] for r in ledger.connection.execute("SELECT draft_id FROM drafts ORDER BY draft_id")]
        for draft in rng.choice(ids, size=REVIEWS, replace=False):
            ledger.reviews.record(str(draft), str(rng.choice(["approve", "dismiss"])), "benchmark", "ABC")


@pytest.fixture(scope="module")
def quarter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    build_ledger(state)
    return state


def test_stats_quarter(benchmark: BenchmarkFixture, quarter: Path, tmp_path: Path) -> None:
    report = benchmark.pedantic(
        stats, args=(quarter,),
        kwargs={"from_week": FIRST, "to_week": FIRST.shift(WEEKS - 1), "out_dir": tmp_path, "by": DIMENSIONS},
        rounds=3, iterations=1,
    )
    assert report.summary["drafts"] == WEEKS * DRAFTS_PER_WEEK
    hidden = sum(v is None for t in report.tables for v in t.cells.values())
    cells = sum(len(t.cells) for t in report.tables)
    print(f"\n{cells} published cells, {hidden} hidden", file=sys.stderr)
