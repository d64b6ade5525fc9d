"""The population register built two ways, for docs/scaling.md: Polars' in-memory engine and its
streaming engine (which runs the same plan in morsels, the engine that would carry this stage past
what one machine holds before a cluster is needed).

The stage: scan ``population.parquet``, normalise the CPR number to ``Int64`` (with its check),
the birth date, and count the invalid ones and the residents per municipality (a register stage's
work, ending in a small result so that what is measured is the stage and not its output).

    python benchmarks/scaling_probe.py EXTRACT in-memory|streaming

Each engine in its own process: prints wall seconds, CPU seconds and peak RSS (MiB) as JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import polars as pl

from socialsearch.identifiers import birth_date_of_number, cpr_number


def register_stage(extract: Path, engine: str) -> dict[str, object]:
    begin = time.perf_counter()
    plan = (
        pl.scan_parquet(extract / "population.parquet")
        .select(cpr_number(pl.col("cpr")).alias("number"), "municipality")
        .with_columns(birth_date_of_number(pl.col("number")).alias("birth_date"))
        .group_by("municipality")
        .agg(pl.len().alias("residents"), pl.col("number").null_count().alias("invalid"),
             pl.col("birth_date").min().alias("oldest"))
    )
    out = plan.collect(engine="streaming" if engine == "streaming" else "in-memory")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"engine": engine, "seconds": round(time.perf_counter() - begin, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), "residents": int(out["residents"].sum())}


if __name__ == "__main__":
    print(json.dumps(register_stage(Path(sys.argv[1]), sys.argv[2])))
