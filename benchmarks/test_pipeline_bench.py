"""The weekly job by stage: the station (``pseudonymise``), the single-site run and the hub run.

Each step reports the wall seconds, the CPU seconds (all threads of this process) and the peak
resident memory of every stage (``VmHWM``, reset
as each stage starts; the HMAC worker processes are not included), plus the peak of the whole
step. The stages:

* ``read_raw`` — read and validate the raw extracts (every row, every rule);
* the station's own stages (:func:`socialsearch.station.pipeline.pseudonymise_extracts`): ``select``
  (catalogue events in the window and their counted persons), ``register`` (the population's
  CPR numbers as ``Int64`` and birth dates), ``resolve`` (persons without a valid CPR number,
  :mod:`socialsearch.station.resolution`), ``minimise`` (children, relations, linking persons),
  ``identities`` (HMAC and sealing of each shipped CPR number), ``events`` (event references
  and sealing), ``assemble`` (joins, ordering, manifest);
* ``write_hub`` (``pseudonymise`` only) and, for a run, ``read_hub`` / ``search`` and the rest
  of ``run`` (``outputs``, ``vault``, ``ledger``: drafts pages, fsyncs, ledger).

``test_resolve`` times :func:`socialsearch.station.resolution.resolve` alone, on the queries and
the register index the station hands it, with its candidate pairs and pairs per second.

Run on an existing extract (``SOCIALSEARCH_BENCH_DIR`` holds ``extract-<scale>/``, ``keys``,
``hub-keys``; without them a synthetic extract and keys are made there) ::

    SOCIALSEARCH_BENCH_DIR=/tmp/ss-bench \\
        python -m pytest benchmarks/test_pipeline_bench.py -p no:cacheprovider -s

or as a script, one step per process (what ``docs/performance-run.md`` reports)::

    python benchmarks/test_pipeline_bench.py pseudonymise EXTRACT PSEUDO KEYS [--week 2026-W47]
    python benchmarks/test_pipeline_bench.py run INPUT OUT KEYS [--week 2026-W47]
    python benchmarks/test_pipeline_bench.py compare OUT_A OUT_B [--week 2026-W47]
    python benchmarks/test_pipeline_bench.py columns EXTRACT    # read_raw per column and per check
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from memory import bench_scale, cpu_seconds, peak_rss_mib, reset_peak_rss

from socialsearch.hub import pipeline as hub
from socialsearch.station import extracts, resolution
from socialsearch.station import pipeline as station
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")


class Stages:
    """Seconds and peak RSS (MiB) per stage: ``mark(name)`` ends a stage and starts the next."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.tables: list[dict[str, Any]] = []
        self.start()

    def start(self) -> None:
        reset_peak_rss()
        self._t = time.perf_counter()
        self._cpu = cpu_seconds()

    def mark(self, name: str) -> None:
        self.rows.append({"stage": name, "seconds": round(time.perf_counter() - self._t, 2),
                          "cpu_seconds": round(cpu_seconds() - self._cpu, 2),
                          "peak_rss_mib": round(peak_rss_mib())})
        print(json.dumps(self.rows[-1]), file=sys.stderr, flush=True)  # progress, should the step die
        self.start()

    def table(self) -> str:
        return "\n".join(f"  {r['stage']:<26} {r['seconds']:>7.2f} s {r.get('cpu_seconds', 0):>7.2f} CPU s "
                         f"{r['peak_rss_mib']:>7} MiB" for r in self.rows)


@contextmanager
def _patched(module: Any, name: str, wrap: Callable[[Any], Any]) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, wrap(original))
    try:
        yield
    finally:
        setattr(module, name, original)


def _timed(stages: Stages, label: str) -> Callable[[Any], Any]:
    """Wrap a function so that its call is one stage (the time before it is ``label``'s prefix)."""
    def wrap(fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            stages.mark(f"before_{label}")
            out = fn(*args, **kwargs)
            stages.mark(label)
            return out
        return call
    return wrap


def _per_part(stages: Stages, name: Callable[..., str]) -> Callable[[Any], Any]:
    """A part of ``read_raw`` timed in the thread that runs it (the tables are read at the same
    time, and the cross-file checks run while the population and the relations are read): wall
    seconds, recorded in ``stages.tables`` under ``name(*args)``. (A part's CPU seconds cannot
    be told apart: Polars' worker threads serve every part.)"""
    def wrap(fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            out = fn(*args, **kwargs)
            stages.tables.append({"table": name(*args), "seconds": round(time.perf_counter() - begin, 2)})
            return out
        return call
    return wrap


@contextmanager
def _read_raw_stages(module: Any, stages: Stages) -> Iterator[None]:
    """``read_raw`` in ``module`` as one stage (the tables and the cross-file checks overlap),
    with each table and the cross-file checks also timed alone (``read_raw_tables``).

    ``SOCIALSEARCH_BENCH_READERS`` sets ``read_raw``'s readers (default: as it decides; 1 reads
    the tables one after the other, so each table's time is its own).
    """
    readers = os.environ.get("SOCIALSEARCH_BENCH_READERS")
    with _patched(module, "read_raw", _timed(stages, "read_raw")), \
            _patched(extracts, "_read_table", _per_part(stages, lambda plan, *_: plan.name)), \
            _patched(extracts, "_READERS", lambda n: int(readers) if readers else n), \
            _patched(extracts, "_cross_checks", _per_part(stages, lambda *_: "cross_checks")):
        yield


def _station_stages(stages: Stages) -> Callable[[Any], Any]:
    """The station's own stages where it reports them (``on_stage``), else the station as one stage
    (so that the same benchmark measures an older checkout, e.g. with ``PYTHONPATH``)."""
    def wrap(fn: Any) -> Any:
        if "on_stage" not in inspect.signature(fn).parameters:
            return _timed(stages, "station")(fn)

        def call(*args: Any, **kwargs: Any) -> Any:
            stages.mark("before_station")
            # Hand the raw extracts over without keeping a reference here (no argument tuple
            # held across the call), so that the station can free each frame when done with it.
            box = list(args)
            del args
            return fn(box.pop(0), box.pop(0), week=kwargs["week"], catalogue=kwargs["catalogue"],
                      on_stage=stages.mark)
        return call
    return wrap


def _drop_empty(stages: Stages) -> list[dict[str, Any]]:
    return [r for r in stages.rows
            if not (r["stage"].startswith(("before_", "read_raw:files")) and r["seconds"] < 0.05)]


def measure_pseudonymise(extract: Path, pseudo: Path, keys: Path, week: IsoWeek = WEEK) -> dict[str, Any]:
    """``station.pseudonymise`` by stage; returns stages, total seconds, peak RSS and counts."""
    shutil.rmtree(pseudo, ignore_errors=True)
    stages = Stages()
    begin = time.perf_counter()
    with _read_raw_stages(station, stages), \
            _patched(station, "pseudonymise_extracts", _station_stages(stages)), \
            _patched(station, "write_hub", _timed(stages, "write_hub")):
        report = station.pseudonymise(extract, pseudo, keys, week=week)
    total = time.perf_counter() - begin
    return {"step": "pseudonymise", "seconds": round(total, 2), "stages": _drop_empty(stages),
            "read_raw_tables": stages.tables,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in stages.rows), "shipped": report["shipped"],
            "persons": report["persons"]}


def measure_run(input_dir: Path, out: Path, keys: Path, week: IsoWeek = WEEK) -> dict[str, Any]:
    """``hub.run`` by stage on raw extracts (single site) or on a hub extract."""
    for sub in ("out", "state"):
        shutil.rmtree(out / sub, ignore_errors=True)
    stages = Stages()
    begin = time.perf_counter()
    with _read_raw_stages(hub, stages), \
            _patched(hub, "pseudonymise_extracts", _station_stages(stages)), \
            _patched(hub, "read_hub", _timed(stages, "read_hub")), \
            _patched(hub, "hub_search", _timed(stages, "search")):
        report = hub.run(input_dir=input_dir, week=week, out_dir=out / "out", state_dir=out / "state",
                              keys_dir=keys, new_state=True)
    stages.mark("outputs_vault_ledger")
    total = time.perf_counter() - begin
    return {"step": "run", "seconds": round(total, 2), "stages": _drop_empty(stages),
            "read_raw_tables": stages.tables,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in stages.rows), "drafts": report.drafts,
            "run_timings": report.timings}


def _clock(fn: Callable[[], Any], repeat: int = 3) -> tuple[tuple[float, float], Any]:
    """``((wall s, CPU s), fn())``, each the least of ``repeat`` calls (on a shared machine the
    least is the one least disturbed); CPU seconds of every thread of the process."""
    walls, cpus = [], []
    for _ in range(repeat):
        begin, cpu = time.perf_counter(), cpu_seconds()
        out = fn()
        walls.append(time.perf_counter() - begin)
        cpus.append(cpu_seconds() - cpu)
    return (round(min(walls), 3), round(min(cpus), 3)), out


def measure_columns(extract: Path) -> dict[str, Any]:
    """``read_raw``'s work per column and per check, each measured alone on the file's whole column.

    For every column of the contract in one file per table (the population and relations files,
    the first district file of the two folders): the conversion to the contract's type, its
    later stages (the CPR normalisation), and each of its checks' masks.
    """
    from socialsearch.station import extracts as ex  # the private pieces read_raw is made of

    rows = []
    for table in ("incidents", "incident_persons", "population", "relations"):
        folder = extract / table
        path = sorted(folder.glob("*.parquet"))[0] if folder.is_dir() else extract / f"{table}.parquet"
        frame = pl.read_parquet(path).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).alias("_row"))
        for spec in ex._RAW_SPECS[table]:
            if spec.name not in frame.columns:
                continue
            converted = ex._convert(spec, frame.schema[spec.name])
            if converted is None:
                continue
            raw, value, checks, extra = converted
            exprs = [raw.alias(f"_raw_{spec.name}"), *([value.alias(spec.name)] if value is not None else [])]
            (convert, convert_cpu), out = _clock(lambda f=frame, e=exprs: f.select(e))
            (later, later_cpu), out = _clock(lambda o=out, x=extra: ex._apply_stages(o, [x]))
            timed = [_clock(lambda o=out, c=check: o.select(c.bad.fill_null(False).sum()))[0] for check in checks]
            rows.append({"table": table, "file": path.name, "rows": frame.height, "column": spec.name,
                         "convert_s": convert, "convert_cpu_s": convert_cpu, "stages_s": later,
                         "stages_cpu_s": later_cpu, "checks_s_cpu_s": timed})
    return {"step": "columns", "columns": rows}


def compare_drafts(a: Path, b: Path, week: IsoWeek = WEEK) -> dict[str, Any]:
    """Compare ``drafts.json`` per municipality of two run outputs (``OUT/<week>/<kommunekode>/``)."""
    def load(root: Path) -> dict[str, Any]:
        return {p.parent.name: json.loads(p.read_text(encoding="utf-8"))
                for p in sorted((root / str(week)).glob("*/drafts.json"))}
    left, right = load(a), load(b)
    differing = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
    return {"municipalities": len(left), "identical": not differing and bool(left), "differing": differing}


# ------------------------------------------------------------------------------ pytest


def _scratch(workspace: Path, name: str) -> Path:
    return Path(os.environ.get("SOCIALSEARCH_BENCH_OUT") or workspace) / f"{name}-{bench_scale():g}"


def _report(benchmark: Any, result: dict[str, Any]) -> None:
    benchmark.extra_info.update(scale=bench_scale(), **{k: v for k, v in result.items() if k != "step"})
    stages = Stages()
    stages.rows = result["stages"]
    print(f"\n{result['step']}: {result['seconds']} s, peak RSS {result['peak_rss_mib']} MiB\n{stages.table()}")


def test_pseudonymise(benchmark: Any, workspace: Path) -> None:
    """The station alone: raw extracts → hub extract on disk."""
    extract, pseudo = workspace / f"extract-{bench_scale():g}", _scratch(workspace, "pseudo-bench")
    result = benchmark.pedantic(measure_pseudonymise, args=(extract, pseudo, workspace / "keys"),
                                rounds=1, iterations=1)
    _report(benchmark, result)


def test_single_site_run(benchmark: Any, workspace: Path) -> None:
    """Raw extracts → drafts in one process (the station's stages, then the hub's)."""
    extract, out = workspace / f"extract-{bench_scale():g}", _scratch(workspace, "single-bench")
    result = benchmark.pedantic(measure_run, args=(extract, out, workspace / "keys"), rounds=1, iterations=1)
    _report(benchmark, result)


def test_hub_run(benchmark: Any, workspace: Path) -> None:
    """The hub alone, on the station's hub extract, with the hub keystore (no secret)."""
    pseudo = _scratch(workspace, "pseudo-bench")
    if not (pseudo / "manifest.json").is_file():
        measure_pseudonymise(workspace / f"extract-{bench_scale():g}", pseudo, workspace / "keys")
    out = _scratch(workspace, "hub-bench")
    result = benchmark.pedantic(measure_run, args=(pseudo, out, workspace / "hub-keys"), rounds=1, iterations=1)
    _report(benchmark, result)


def capture_resolution(extract: Path, pseudo: Path, keys: Path, week: IsoWeek = WEEK) -> dict[str, Any]:
    """Run the station on ``extract`` and keep what its ``resolve`` stage hands
    :func:`resolution.resolve` (``queries``, ``index``, keyword arguments) and its outcome."""
    captured: dict[str, Any] = {}

    def wrap(fn: Any) -> Any:
        def call(queries: pl.DataFrame, index: resolution.RegisterIndex, **kwargs: Any) -> Any:
            captured.update(queries=queries, index=index, kwargs=kwargs, outcome=fn(queries, index, **kwargs))
            return captured["outcome"]
        return call

    shutil.rmtree(pseudo, ignore_errors=True)
    with _patched(resolution, "resolve", wrap):
        station.pseudonymise(extract, pseudo, keys, week=week)
    return captured


def test_resolve(benchmark: Any, workspace: Path) -> None:
    """``resolution.resolve`` alone on the week's persons without a valid CPR number and the
    register index the station built for them (the ``resolve`` stage without the joins around
    it): seconds per call, candidate pairs and pairs per second."""
    extract = workspace / f"extract-{bench_scale():g}"
    seen = capture_resolution(extract, _scratch(workspace, "pseudo-resolve"), workspace / "keys")
    if "queries" not in seen:
        pytest.skip("every person of the week has a valid CPR number: nothing to resolve")
    outcome = benchmark.pedantic(resolution.resolve, args=(seen["queries"], seen["index"]), kwargs=seen["kwargs"],
                                 rounds=5, iterations=1, warmup_rounds=1)
    assert outcome.matches.equals(seen["outcome"].matches)  # the same answer on every call
    pairs, median = outcome.stats["candidate_pairs"], benchmark.stats.stats.median
    benchmark.extra_info.update(scale=bench_scale(), queries=outcome.stats["queries"], candidate_pairs=pairs,
                                pairs_per_second=round(pairs / median), resolved=outcome.stats["resolved"])
    print(f"\nresolve: {outcome.stats['queries']} queries, {pairs} candidate pairs, median {median:.3f} s "
          f"(min {benchmark.stats.stats.min:.3f} s), {pairs / median:,.0f} pairs/s, "
          f"{outcome.stats['resolved']} resolved")


# ------------------------------------------------------------------------------ script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("step", choices=["pseudonymise", "run", "compare", "columns"])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path, nargs="?")
    parser.add_argument("keys", type=Path, nargs="?")
    parser.add_argument("--week", default=str(WEEK))
    args = parser.parse_args(argv)
    week = IsoWeek.parse(args.week)
    if args.step == "columns":
        result = measure_columns(args.source)
    elif args.target is None:
        parser.error("a target folder is required")
    elif args.step == "compare":
        result = compare_drafts(args.source, args.target, week)
    elif args.keys is None:
        parser.error("KEYS is required")
    elif args.step == "pseudonymise":
        result = measure_pseudonymise(args.source, args.target, args.keys, week)
    else:
        result = measure_run(args.source, args.target, args.keys, week)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
