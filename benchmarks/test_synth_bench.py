"""Benchmark of ``socialsearch.synthetic.synth`` (the synthetic Denmark) at national scale.

Run (scale 1.0 = Denmark, about half a minute on 2 idle cores; anything at scale 0.2 or more
under the shared big-memory lock)::

    flock /tmp/socialsearch-bigmem.lock .venv/bin/pytest benchmarks/test_synth_bench.py \
        -p no:cacheprovider --benchmark-columns=min,mean,max,rounds -s

    SOCIALSEARCH_BENCH_SCALE=0.1 .venv/bin/pytest benchmarks/test_synth_bench.py ...

or without pytest: ``python benchmarks/test_synth_bench.py [scale] [out_dir] [--no-structure | --stages]``
(``--stages``: seconds and peak memory of each stage instead).
Ten Denmarks (about 60 million people; peak about 11 GB, several minutes)::

    flock /tmp/socialsearch-bigmem.lock .venv/bin/python benchmarks/test_synth_bench.py 10 /tmp/x10 --no-structure

Reported (``benchmark.extra_info`` and printed): wall seconds and process CPU seconds of one
``synth`` call, peak resident memory, the row counts per table, and the structure of the
synthetic Denmark (relations by type, single-custodian and cross-municipality shares, the
fallback share, and the name model's figures: -sen share, top surnames, origins, double given
names, hyphens, namesakes with the same birth date). ``--no-structure`` skips reading the output
back (at 10× that reading needs more memory than the generator). Peak memory is ``VmHWM`` after
resetting it through ``/proc/self/clear_refs`` just before the call (Linux); where that is not
possible, ``ru_maxrss`` of the whole process.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from memory import bench_scale, peak_rss_mib, reset_peak_rss

from socialsearch.synthetic import SynthSummary, synth
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")


def measure(scale: float, out: Path, seed: int = 0) -> tuple[SynthSummary, dict[str, Any]]:
    """Run ``synth`` once and return its summary and the measurements."""
    reset = reset_peak_rss()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    summary = synth(out, scale=scale, seed=seed, week=WEEK)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    info: dict[str, Any] = {
        "scale": scale,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_is_call_only": reset,
        "rows": summary.rows,
        "people": summary.people,
        "children": summary.children,
        "families": summary.families,
    }
    return summary, info


def structure(out: Path) -> dict[str, Any]:
    """Relations by type, single-custodian and cross-municipality shares, fallback share."""
    digits = pl.col("cpr").str.replace_all("-", "", literal=True)
    pop = pl.scan_parquet(out / "population.parquet").select(digits.alias("cpr"), "municipality")
    rel = pl.scan_parquet(out / "relations.parquet").with_columns(
        pl.col("child_cpr", "adult_cpr").str.replace_all("-", "", literal=True))
    by_type = dict(rel.group_by("relation").len().collect().sort("relation").iter_rows())
    per_child = rel.group_by("child_cpr").agg(
        custodians=(pl.col("relation") == "custodian").sum(),
        household=(pl.col("relation") == "household").any(),
    ).collect()
    parents = (
        rel.filter(pl.col("relation").is_in(["mother", "father"]))
        .join(pop, left_on="child_cpr", right_on="cpr")
        .join(pop, left_on="adult_cpr", right_on="cpr", suffix="_adult")
        .group_by("child_cpr").agg(apart=(pl.col("municipality") != pl.col("municipality_adult")).any())
        .collect()
    )
    names = name_figures(out)
    persons = pl.scan_parquet(out / "incident_persons" / "*.parquet").select("cpr").collect()
    truth = pl.read_parquet(out / "truth" / "fallback.parquet")
    incidents = pl.scan_parquet(out / "incidents" / "*.parquet").join(
        pl.scan_parquet(out / "truth" / "incidents.parquet"), on=["district", "incident_id"])
    kinds = incidents.group_by(
        kind=pl.when("in_catalogue").then(pl.lit("catalogue"))
        .when(pl.col("offence_code") != "").then(pl.lit("other offence"))
        .otherwise(pl.lit("other incident"))
    ).len().collect()
    return {
        "relations_by_type": by_type,
        "children_with_relations": per_child.height,
        "single_custodian_share": round(float((per_child["custodians"] == 1).mean()), 4),  # type: ignore[arg-type]
        "household_adult_share": round(float(per_child["household"].mean()), 4),  # type: ignore[arg-type]
        "parent_in_other_municipality_share": round(float(parents["apart"].mean()), 4),  # type: ignore[arg-type]
        "fallback_share": round(truth.height / max(persons.height, 1), 4),
        "fallback_by_kind": dict(truth.group_by("kind").len().sort("kind").iter_rows()),
        "incidents_by_kind": dict(kinds.sort("kind").iter_rows()),
        "names": names,
    }


def name_figures(out: Path) -> dict[str, Any]:
    """The name model as measured on the output (population joined with truth/people)."""
    digits = pl.col("cpr").str.replace_all("-", "", literal=True)
    pop = pl.scan_parquet(out / "population.parquet").select(digits.alias("cpr"), "given_name", "surname")
    truth = pl.scan_parquet(out / "truth" / "people.parquet").select("cpr", "birth_date", "origin")
    frame = pop.join(truth, on="cpr").with_columns(last=pl.col("surname").str.split(" ").list.last()).collect()
    n = frame.height
    top = frame.group_by("last").len().sort("len", descending=True).head(12)
    same = frame.group_by("given_name", "surname", "birth_date").len().filter(pl.col("len") > 1)
    origins = frame.group_by("origin").len().sort("len", descending=True).head(10)

    def share(expr: pl.Expr) -> float:
        return round(float(frame.select(expr.mean()).item()), 4)

    return {
        "people": n,
        "sen_share": share(pl.col("last").str.ends_with("sen")),
        "top_surnames": {name: [count, round(count / n, 4)] for name, count in top.iter_rows()},
        "distinct_surnames": frame["surname"].n_unique(),
        "distinct_last_surnames": frame["last"].n_unique(),
        "foreign_origin_share": share(pl.col("origin") != "dk"),
        "origins": dict(origins.iter_rows()),
        "double_given_share": share(pl.col("given_name").str.contains(" ", literal=True)),
        "middle_name_share": share(pl.col("surname").str.contains(" ", literal=True)),
        "hyphenated_share": share(pl.col("surname").str.contains("-", literal=True)),
        "namesake_groups_same_birth_date": same.height,
        "people_in_namesake_groups": same.select(pl.col("len").sum()).item(),
        "people_in_namesake_groups_share": round(same.select(pl.col("len").sum()).item() / max(n, 1), 5),
        "largest_namesake_group": same.select(pl.col("len").max()).item() if same.height else 0,
    }


@pytest.mark.benchmark(group="synth")
def test_synth_national(benchmark: Any, tmp_path: Path) -> None:
    scale = bench_scale()
    result: dict[str, Any] = {}

    def run() -> None:
        _, info = measure(scale, tmp_path / "extract")
        result.update(info)

    benchmark.pedantic(run, rounds=1, iterations=1)
    result["structure"] = structure(tmp_path / "extract")
    benchmark.extra_info.update(result)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    assert result["rows"]["population"] > 0


def stage_profile(scale: float, out: Path) -> dict[str, dict[str, float]]:
    """Seconds and peak memory (``VmHWM`` reset per call) of each stage of one ``synth`` call.

    The stages are the module's own functions, wrapped for the duration of the call.
    """
    import socialsearch.synthetic as synthetic

    stages: dict[str, dict[str, float]] = {}

    def record(name: str, seconds: float) -> None:
        stage = stages.setdefault(name, {"seconds": 0.0, "peak_rss_mib": 0.0, "calls": 0})
        stage["seconds"] = round(stage["seconds"] + seconds, 2)
        stage["peak_rss_mib"] = max(stage["peak_rss_mib"], round(peak_rss_mib(), 1))
        stage["calls"] += 1

    def wrap(name: str, func: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            reset_peak_rss()
            start = time.perf_counter()
            result = func(*args, **kwargs)
            record(name, time.perf_counter() - start)
            return result
        return timed

    names = ["_people", "_events", "_incident_frame", "_incident_persons", "_corrupt", "_write_frame",
             "_population_chunk", "_relations_chunk", "_truth_people_chunk"]
    saved = {name: getattr(synthetic, name) for name in names}
    close = synthetic._writing.ChunkedFile.close
    try:
        for name in names:
            setattr(synthetic, name, wrap(name, saved[name]))
        synthetic._writing.ChunkedFile.close = lambda self: wrap(f"merge {self.path.name}", close)(self)  # type: ignore[method-assign]
        synthetic.synth(out, scale=scale, seed=0, week=WEEK)
    finally:
        for name, func in saved.items():
            setattr(synthetic, name, func)
        synthetic._writing.ChunkedFile.close = close  # type: ignore[method-assign]
    return stages


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    scale = float(args[0]) if args else bench_scale()
    target = Path(args[1]) if len(args) > 1 else Path(tempfile.mkdtemp()) / "extract"
    if "--stages" in sys.argv:
        print(json.dumps(stage_profile(scale, target), indent=2))
        sys.exit(0)
    _, info = measure(scale, target)
    print(json.dumps(info, ensure_ascii=False), flush=True)
    if "--no-structure" not in sys.argv:
        info["structure"] = structure(target)
    info["out"] = str(target)
    print(json.dumps(info, indent=2, ensure_ascii=False))
