"""Benchmark of the ledger at a year of national volume: recording a week, verifying, listing.

Run::

    pytest benchmarks/test_ledger_bench.py -p no:cacheprovider --benchmark-columns=min,mean,max,rounds -s

or without pytest: ``python benchmarks/test_ledger_bench.py [weeks] [drafts_per_week]``.

The ledger holds ``WEEKS`` weeks of ``DRAFTS`` drafts each (national scale emits 600–3,200 a
week, see docs/performance-search.md), 8 signals per draft and one decision per draft, every
row bound to the audit chain. Measured: ``runs.check`` + ``runs.record`` of the next week (what
a weekly run adds), ``audit_verify`` (the whole chain and every table, as ``reidentify`` does
before it opens anything) and ``drafts.list``. (Under pytest the first round of
``test_record_next_week`` records the week; later rounds replay it.)

Measured 2026-12-01 on the shared 2-core development machine, CPU seconds
(``python benchmarks/test_ledger_bench.py 52 3000``): building 52 weeks 82 s wall, ledger
564 MiB; ``runs.check`` 0.52 s and ``runs.record`` 0.49 s for the 53rd week; ``audit_verify``
8.4 s (156,053 entries, 159,000 drafts, 1,272,000 signals, 156,000 reviews); ``drafts.list``
of everything 2.9 s, of one week and municipality 0.18 s; peak RSS 0.59 GB.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pytest

from socialsearch.ledger import Decision, Ledger, integrity
from socialsearch.weeks import IsoWeek

WEEKS = int(os.environ.get("SOCIALSEARCH_BENCH_LEDGER_WEEKS", "52"))
DRAFTS = int(os.environ.get("SOCIALSEARCH_BENCH_LEDGER_DRAFTS", "3000"))
SIGNALS = 8
FIRST = IsoWeek.parse("2025-W48")
PERSONS = pl.List(pl.Struct({"pseudonym": pl.String, "link": pl.String}))


def week_frames(week: IsoWeek, drafts: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drafts and signals of one week with distinct pseudonyms (vectorised)."""
    w = str(week)
    n = pl.int_range(drafts, eager=True)
    d = pl.DataFrame({"i": n}).select(
        draft_id=pl.format("D{}-k1-{}", pl.lit(w), pl.col("i")),
        week=pl.lit(w),
        child=pl.format("k1.child-{}-{}", pl.lit(w), pl.col("i")),
        municipality=(101 + pl.col("i") % 98 * 4).cast(pl.String).str.zfill(3),
        age=(pl.col("i") % 18).cast(pl.Int64),
        rule=pl.when(pl.col("i") % 3 == 0).then(pl.lit("immediate")).otherwise(pl.lit("threshold")),
        score=pl.lit(4, pl.Int64), threshold=pl.lit(3, pl.Int64),
        n_signals=pl.lit(SIGNALS, pl.Int64), n_new_signals=pl.lit(2, pl.Int64),
        persons=pl.concat_list(pl.struct(pseudonym=pl.format("k1.adult-{}-{}", pl.lit(w), pl.col("i")),
                                         link=pl.lit("father"))).cast(PERSONS),
        previous_drafts=pl.lit([], dtype=pl.List(pl.String)),
    )
    s = d.select("draft_id", "child").join(pl.DataFrame({"j": pl.int_range(SIGNALS, eager=True)}), how="cross")
    s = s.with_columns(
        event_ref=pl.format("e.k1.{}-{}", pl.col("draft_id"), pl.col("j")),
        person=pl.col("child"), role=pl.lit("victim"), link=pl.lit("self"), kind=pl.lit("offence"),
        code=pl.lit("1100"), category=pl.lit("violence"), weight=pl.lit(2, pl.Int64),
        registered_at=pl.lit("2026-11-17T10:00:00+01:00"), new=pl.col("j") < 2,
        resolved_by=pl.lit("cpr"), match_probability=pl.lit(None, pl.Float64), district=pl.lit("KBH"),
    ).drop("j")
    return d, s


def build(state: Path, weeks: int, drafts: int) -> None:
    with Ledger.open(state) as ledger:
        ledger.connection.execute("PRAGMA synchronous=OFF")  # building only
        for k in range(weeks):
            week = FIRST.shift(k)
            d, s = week_frames(week, drafts)
            ledger.runs.record(week, d, s, {"key_id": "k1"})
            ledger.reviews.record_many([Decision(i, "dismiss", "kendt", "ABC") for i in d["draft_id"]])


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger")
    build(path, WEEKS, DRAFTS)
    return path


def test_record_next_week(benchmark, state: Path) -> None:  # type: ignore[no-untyped-def]
    week = FIRST.shift(WEEKS)
    d, s = week_frames(week, DRAFTS)

    def once() -> None:
        with Ledger.open(state) as ledger:
            ledger.runs.check(week, d, s, "k1")
            ledger.runs.record(week, d, s, {"key_id": "k1"})

    benchmark.pedantic(once, rounds=3, iterations=1)


def test_audit_verify(benchmark, state: Path) -> None:  # type: ignore[no-untyped-def]
    report = benchmark.pedantic(integrity.audit_verify, args=(state,), rounds=3, iterations=1)
    assert report.rows["drafts"] >= WEEKS * DRAFTS


def test_drafts_list_all(benchmark, state: Path) -> None:  # type: ignore[no-untyped-def]
    def once() -> int:
        with Ledger.open(state, readonly=True) as ledger:
            return len(ledger.drafts.list())

    assert benchmark.pedantic(once, rounds=3, iterations=1) >= WEEKS * DRAFTS


if __name__ == "__main__":
    weeks = int(sys.argv[1]) if len(sys.argv) > 1 else WEEKS
    drafts = int(sys.argv[2]) if len(sys.argv) > 2 else DRAFTS
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        build(Path(tmp), weeks, drafts)
        print(f"built {weeks} weeks x {drafts} drafts x {SIGNALS} signals in {time.perf_counter() - t:.1f} s; "
              f"ledger {os.path.getsize(Path(tmp) / 'ledger.sqlite') / 2**20:.0f} MiB")
        week = FIRST.shift(weeks)
        d, s = week_frames(week, drafts)
        clock = time.process_time  # CPU seconds: the machine may be shared
        with Ledger.open(tmp) as ledger:
            t = clock()
            ledger.runs.check(week, d, s, "k1")
            t1 = clock()
            ledger.runs.record(week, d, s, {"key_id": "k1"})
            t2 = clock()
        print(f"runs.check {t1 - t:.2f} CPU s, runs.record {t2 - t1:.2f} CPU s")
        t = clock()
        report = integrity.audit_verify(tmp)
        print(f"audit_verify {clock() - t:.2f} CPU s: {report}")
        with Ledger.open(tmp, readonly=True) as ledger:
            t = clock()
            n = len(ledger.drafts.list())
            t1 = clock()
            m = len(ledger.drafts.list(week=str(week), municipality="101"))
            t2 = clock()
        print(f"drafts.list {t1 - t:.2f} CPU s ({n} drafts); one week and municipality {t2 - t1:.2f} CPU s ({m})")
