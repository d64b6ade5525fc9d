"""Benchmark of ``search.weekly_search`` on hub-like frames at national scale and beyond.

Run (national scale, ~1.5 min including data generation)::

    python -m pytest benchmarks/test_search_bench.py -p no:cacheprovider \
        --benchmark-columns=min,mean,max,rounds -s

    SOCIALSEARCH_BENCH_SCALE=10 python -m pytest benchmarks/test_search_bench.py ...

or without pytest: ``python benchmarks/test_search_bench.py [scale]``.

The frames are generated directly with numpy/Polars (not by ``socialsearch.synthetic``), shaped
like the hub layout at scale 1.0 = Denmark: 5.9 M residents of whom 1.15 M children, ~2.2 M
relation rows, 1.5 M incidents registered over the 52 weeks ending with the searched week and
~3.5 M incident-person rows. Pseudonyms are random 32-character base64 strings, like keyed
pseudonyms. The history is realistic: the previous week is searched first and its drafts
become the drafted pairs and previous drafts of the measured week.

Peak memory is the resident-set high-water mark of the search alone: ``VmHWM`` is reset
through ``/proc/self/clear_refs`` after the inputs are built (Linux); where that is not
possible, ``ru_maxrss`` of the whole process is reported instead (an upper bound).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from memory import bench_scale, peak_rss_bytes, reset_peak_rss
from pytest_benchmark.fixture import BenchmarkFixture

from socialsearch.catalogue import Catalogue, load_catalogue
from socialsearch.hub.search import History, SearchResult, weekly_search
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")
NATIONAL = {
    "population": 5_900_000,
    "children": 1_150_000,
    "families": 650_000,
    "incidents": 1_500_000,
    "incident_persons": 3_500_000,
    "frequent": 300_000,  # adults who are on many events
}


def catalogue() -> Catalogue:
    """The packaged catalogue (configs/event_codes.toml)."""
    return load_catalogue()


# --- data ----------------------------------------------------------------------------------


def pseudonyms(rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` distinct-with-overwhelming-probability 32-character base64 strings."""
    raw = rng.integers(1, 256, size=(n, 24), dtype=np.uint8)  # no NUL: 'S24' keeps 24 bytes
    return pl.Series(raw.view("S24").ravel()).bin.encode("base64")


def pick(rng: np.random.Generator, values: list[str], n: int) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(rng.integers(0, len(values), n))


def make_frames(scale: float, seed: int = 20261116) -> dict[str, pl.DataFrame]:
    """Hub-layout frames (incidents, persons, population, relations) at ``scale``."""
    rng = np.random.default_rng(seed)
    n = {k: int(v * scale) for k, v in NATIONAL.items()}
    municipalities = [f"{m:03d}" for m in rng.choice(np.arange(101, 861), 98, replace=False)]
    districts = [f"{d}" for d in range(1, 13)]

    # population: the first n_children are 0..17 on the week's Sunday, the rest 18..95
    person = pseudonyms(rng, n["population"])
    sunday = np.datetime64(WEEK.sunday.isoformat())
    child_days = rng.integers(0, 18 * 365, n["children"])
    adult_days = rng.integers(18 * 365 + 5, 95 * 365, n["population"] - n["children"])
    birth = sunday - np.concatenate([child_days, adult_days]).astype("timedelta64[D]")
    population = pl.DataFrame(
        {
            "person": person,
            "municipality": pick(rng, municipalities, n["population"]),
            "birth_date": pl.Series(birth).cast(pl.Date),
        }
    )

    # relations: families of a mother and a father; some household members and custodians
    adults = n["population"] - n["children"]
    family = rng.integers(0, n["families"], n["children"])
    mothers = n["children"] + rng.integers(0, adults, n["families"])
    fathers = n["children"] + rng.integers(0, adults, n["families"])
    kids = np.arange(n["children"])
    parts = []
    for relation, share, adult_idx in (
        ("mother", 0.97, mothers[family]),
        ("father", 0.88, fathers[family]),
        ("household", 0.06, n["children"] + rng.integers(0, adults, n["children"])),
        ("custodian", 0.02, n["children"] + rng.integers(0, adults, n["children"])),
    ):
        keep = rng.random(n["children"]) < share
        parts.append(
            pl.DataFrame(
                {
                    "child": person.gather(kids[keep]),
                    "adult": person.gather(adult_idx[keep]),
                    "relation": pl.repeat(relation, int(keep.sum()), eager=True),
                }
            )
        )
    relations = pl.concat(parts)

    # incidents over the 52 weeks ending with WEEK
    cat = catalogue()
    inc_codes = [c.code for c in cat.codes if c.kind == "incident"]
    off_codes = [c.code for c in cat.codes if c.kind == "offence"]
    other_inc = [f"X{i:03d}" for i in range(60)]
    other_off = [f"9{i:03d}" for i in range(80)]
    m = n["incidents"]
    start = WEEK.lookback_start(52)
    span_us = int((WEEK.end - start) / timedelta(microseconds=1))
    # build the instants in UTC, then present them in Copenhagen time
    start_utc = np.datetime64(int(start.timestamp() * 1_000_000), "us")
    registered = (
        pl.Series("registered_at", start_utc + rng.integers(0, span_us, m).astype("timedelta64[us]"))
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("Europe/Copenhagen")
    )
    occurred = registered - pl.Series(rng.integers(0, 72 * 3600 * 10**6, m)).cast(pl.Duration("us"))
    catalogue_incident = rng.random(m) < 0.3
    incident_code = pl.select(
        pl.when(pl.Series(catalogue_incident))
        .then(pick(rng, inc_codes, m))
        .otherwise(pick(rng, other_inc, m))
    ).to_series()
    has_offence = rng.random(m) < 0.3
    catalogue_offence = rng.random(m) < 0.4
    offence_code = pl.select(
        pl.when(~pl.Series(has_offence))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.Series(catalogue_offence))
        .then(pick(rng, off_codes, m))
        .otherwise(pick(rng, other_off, m))
    ).to_series()
    event_ref = pseudonyms(rng, m)
    incidents = pl.DataFrame(
        {
            "district": pick(rng, districts, m),
            "event_ref": event_ref,
            "occurred_at": occurred,
            "registered_at": registered,
            "municipality": pick(rng, municipalities, m),
            "incident_code": incident_code,
            "offence_code": offence_code,
        }
    )

    # incident persons: 60 % from a pool of frequent adults, 25 % anyone, 10 % children,
    # 3 % unknown to the population, 2 % unresolved (null)
    k = n["incident_persons"]
    u = rng.random(k)
    frequent = n["children"] + rng.integers(0, adults, n["frequent"])
    who = np.where(
        u < 0.60,
        frequent[rng.integers(0, n["frequent"], k)],
        np.where(u < 0.85, rng.integers(0, n["population"], k), rng.integers(0, n["children"], k)),
    )
    pseudo = person.gather(who)
    unknown = pseudonyms(rng, k)
    person_col = pl.select(
        pl.when(pl.Series(u >= 0.98))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.Series(u >= 0.95))
        .then(unknown)
        .otherwise(pseudo)
    ).to_series()
    probabilistic = rng.random(k) < 0.03
    persons = pl.DataFrame(
        {
            "event_ref": event_ref.gather(rng.integers(0, m, k)),
            "person": person_col,
            "role": pick(rng, ["suspect", "victim", "witness", "involved"], k),
            "resolved_by": pl.Series(np.where(probabilistic, "probabilistic", "cpr")),
            "match_probability": pl.Series(
                np.where(probabilistic, rng.uniform(0.8, 1.0, k), np.nan)
            ).fill_nan(None),
        }
    )
    return {
        "incidents": incidents,
        "persons": persons,
        "population": population,
        "relations": relations,
    }


def draft_ids(children: pl.Series, week: str) -> pl.Series:
    """A vectorised stand-in for the keyed draft ids."""
    return children.to_frame().select(pl.concat_str(pl.lit(f"{week}:"), pl.first())).to_series()


def history_from(result: SearchResult) -> History:
    """The history a ledger would hold after ``result``'s week."""
    return History(
        drafted_pairs=result.signals.select("child", "event_ref").unique(),
        previous_drafts=result.drafts.select("child", "draft_id", "week"),
    )


# --- memory --------------------------------------------------------------------------------


def current_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Measured:
    seconds: list[float]
    cpu_seconds: list[float]
    rss_before: int
    peak_rss: int
    result: SearchResult


def measure(run: Callable[[], SearchResult], rounds: int) -> Measured:
    """Time ``run`` ``rounds`` times and record the RSS high-water mark of the runs."""
    before = current_rss_bytes()
    reset_peak_rss()
    seconds, cpu, result = [], [], None
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        result = run()
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert result is not None
    return Measured(seconds, cpu, before, peak_rss_bytes(), result)


# --- benchmark -----------------------------------------------------------------------------


@dataclass
class Setup:
    frames: dict[str, pl.DataFrame]
    history: History
    catalogue: Catalogue
    generate_seconds: float


@pytest.fixture(scope="module")
def setup() -> Setup:
    t0 = time.perf_counter()
    frames = make_frames(bench_scale())
    cat = catalogue()
    previous = weekly_search(
        **frames, catalogue=cat, week=WEEK.shift(-1), history=History.empty(), draft_ids=draft_ids
    )
    return Setup(frames, history_from(previous), cat, time.perf_counter() - t0)


def test_weekly_search(benchmark: BenchmarkFixture, setup: Setup) -> None:
    cpu: list[float] = []

    def run() -> SearchResult:
        c0 = time.process_time()
        result = weekly_search(
            **setup.frames, catalogue=setup.catalogue, week=WEEK, history=setup.history,
            draft_ids=draft_ids,
        )
        cpu.append(time.process_time() - c0)
        return result

    rss_before = current_rss_bytes()
    reset_peak_rss()
    result = benchmark.pedantic(run, rounds=int(os.environ.get("SOCIALSEARCH_BENCH_ROUNDS", "3")),
                                iterations=1, warmup_rounds=0)
    peak = peak_rss_bytes()
    benchmark.extra_info.update(
        scale=bench_scale(),
        polars_threads=pl.thread_pool_size(),
        cpu_seconds=[round(c, 2) for c in cpu],
        load_average=os.getloadavg()[0],
        rows={k: v.height for k, v in setup.frames.items()},
        rss_inputs_gb=round(rss_before / 1e9, 2),
        peak_rss_gb=round(peak / 1e9, 2),
        peak_rss_over_inputs_gb=round((peak - rss_before) / 1e9, 2),
        generate_seconds=round(setup.generate_seconds, 1),
        stats=result.stats,
    )
    print("\n", benchmark.extra_info)
    assert result.drafts.height > 0


def main(scale: float) -> None:
    """Print the figures for docs/performance-search.md."""
    t0 = time.perf_counter()
    frames = make_frames(scale)
    cat = catalogue()
    gen = time.perf_counter() - t0
    print(f"scale {scale}: generated in {gen:.1f}s; rows "
          + ", ".join(f"{k}={v.height:,}" for k, v in frames.items()), flush=True)
    prev = measure(lambda: weekly_search(**frames, catalogue=cat, week=WEEK.shift(-1),
                                         history=History.empty(), draft_ids=draft_ids), 1)
    history = history_from(prev.result)
    got = measure(lambda: weekly_search(**frames, catalogue=cat, week=WEEK, history=history,
                                        draft_ids=draft_ids), int(os.environ.get(
                                            "SOCIALSEARCH_BENCH_ROUNDS", "3")))
    print(f"threads {pl.thread_pool_size()}; search seconds "
          + ", ".join(f"{s:.2f}" for s in got.seconds) + "; CPU seconds (all threads) "
          + ", ".join(f"{s:.2f}" for s in got.cpu_seconds)
          + f"; load average {os.getloadavg()[0]:.1f}")
    print(f"RSS with inputs {got.rss_before / 1e9:.2f} GB; peak during search "
          f"{got.peak_rss / 1e9:.2f} GB (+{(got.peak_rss - got.rss_before) / 1e9:.2f} GB)")
    print(got.result.stats)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else bench_scale())
