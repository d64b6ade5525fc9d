"""socialsearch against the DuckDB peer, side by side in one run, on the same synthetic extract.

The peer is a DuckDB SQL script of the same weekly job (keyed SHA-256 pseudonyms, a plain-text
fallback for people without a valid CPR number, codes, roles, links, age, threshold, immediate,
new signal, routing; no vault, no ledger), handed to us as a yardstick. Point
``SOCIALSEARCH_PEER`` at it (default: ``duckdb_weekly.py`` in a ``shared/peers`` folder beside
the repository); the benchmark skips without it.

Run (national scale; the extract is generated once under ``SOCIALSEARCH_BENCH_DIR``)::

    python -m pip install -e '.[bench]'
    SOCIALSEARCH_BENCH_DIR=/tmp/ss-bench python -m pytest benchmarks/test_peer_bench.py -p no:cacheprovider -s

Each contender runs as its own child process, one after the other, so that each one's wall time
and peak resident memory (the maximum RSS of that process alone) are its own:

* ``socialsearch run`` single-site: raw extract → drafts, including the station's work (select,
  resolve, minimise, pseudonymise, seal) and the hub's (search, scoping, drafts JSON + HTML,
  vault, ledger), on a fresh state folder;
* ``socialsearch pseudonymise`` alone (the station) and ``socialsearch run`` on its hub extract
  with a hub keystore (the hub alone);
* the peer.

The drafts per municipality of both are compared and printed. ``SOCIALSEARCH_BENCH_ROUNDS``
(default 3) rounds of ``run`` and the peer, one after the other in each round, give the median
wall time and peak of each (the machine may be shared: the load average is printed beside every
figure). In the same run two limits are measured, each in its own process:

* the **read floor**: the time to merely read the same files, ``pl.scan_parquet(...)`` of every
  column the contract has (the columns ``run`` reads) ``.collect()``, nothing checked;
* the **HMAC limit**: the native HMAC-SHA256 kernel's rate (ids/s, all cores) on the population's
  own CPR numbers, and the time it would take to pseudonymise every resident.

The figures are also written to ``peer-bench.json`` in the workspace, with the run over the
floor in wall time and in CPU seconds. Other scales: ``SOCIALSEARCH_BENCH_SCALE`` (default 1.0)
picks ``extract-<scale>/`` in ``SOCIALSEARCH_BENCH_DIR``; at ten times national one round and no
station-alone and hub-alone runs are enough (a peer that does not fit in memory and fails is
reported with its exit code and peak, not as a failure of the benchmark)::

    SOCIALSEARCH_BENCH_DIR=/tmp/perf10 SOCIALSEARCH_BENCH_SCALE=10 SOCIALSEARCH_BENCH_ROUNDS=1 \
        SOCIALSEARCH_BENCH_PARTS=0 python -m pytest benchmarks/test_peer_bench.py -p no:cacheprovider -s
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from memory import bench_scale

from socialsearch._resources import config_path
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")
REPO = Path(__file__).resolve().parents[1]


def _peer() -> Path:
    path = Path(os.environ.get("SOCIALSEARCH_PEER") or REPO.parent / "shared" / "peers" / "duckdb_weekly.py")
    if not path.is_file():
        pytest.skip(f"no peer script at {path}; set SOCIALSEARCH_PEER")
    pytest.importorskip("duckdb")
    return path


# A small parent for each contender: its RUSAGE_CHILDREN maximum is exactly the contender's peak
# (ru_maxrss from wait4 in the benchmark's own process would also count the forked copy of it).
# It also writes the contender's CPU seconds (user + system, all its threads and processes): on a
# shared machine wall time depends on the other jobs, CPU time much less.
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(f'{u.ru_maxrss} {u.ru_utime + u.ru_stime}')\n"
    "sys.exit(code)\n"
)

#: CPU seconds of each measured child, in the order measured (see ``_measure``)
CPU_SECONDS: dict[int, float] = {}


#: exit codes of the measured children that failed (``_measure(..., may_fail=True)``)
FAILED: dict[int, int] = {}


def _measure(args: list[str], *, may_fail: bool = False) -> tuple[float, float, str]:
    """Run ``args`` as a child process: (wall seconds, peak RSS MiB of that child, stdout).

    Its CPU seconds are kept in :data:`CPU_SECONDS` under the id of the returned tuple; a child
    that ``may_fail`` (the peer at ten times national, which may not fit in memory) and fails
    has its exit code in :data:`FAILED` instead of failing the benchmark.
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _WRAPPER, str(peak_file), *args],
                              capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        assert done.returncode == 0 or may_fail, done.stderr[-2000:]
        peak, cpu = peak_file.read_text().split()
        out = (seconds, int(peak) / 1024, done.stdout)
        CPU_SECONDS[id(out)] = float(cpu)
        if done.returncode:
            FAILED[id(out)] = done.returncode
        return out


def _cpu(run: tuple[float, float, str]) -> float:
    return round(CPU_SECONDS[id(run)], 2)


# The read floor: every contract column of the four tables, read and nothing else.
_READ_FLOOR = (
    "import sys, polars as pl\n"
    "from pathlib import Path\n"
    "from socialsearch.contract import RAW_SCHEMA\n"
    "root = Path(sys.argv[1])\n"
    "for table, schema in RAW_SCHEMA.items():\n"
    "    folder = root / table\n"
    "    files = sorted(folder.glob('*.parquet')) if folder.is_dir() else [root / f'{table}.parquet']\n"
    "    present = pl.read_parquet_schema(files[0])\n"
    "    pl.scan_parquet(files).select([c for c in schema if c in present]).collect()\n"
)

# The HMAC limit: the native kernel on the population's CPR numbers, on every core.
_HMAC_LIMIT = (
    "import json, os, sys, time, polars as pl\n"
    "from socialsearch.crypto import _native\n"
    "values = pl.read_parquet(sys.argv[1], columns=['cpr'])['cpr'].cast(pl.Binary)\n"
    "key = os.urandom(32)\n"
    "times = []\n"
    "for _ in range(3):\n"
    "    begin = time.perf_counter()\n"
    "    _native.hmac_sha256(key, values, threads=0)\n"
    "    times.append(time.perf_counter() - begin)\n"
    "best = min(times)\n"
    "print(json.dumps({'ids': len(values), 'seconds': best, 'ids_per_s': len(values) / best}))\n"
)


def _load() -> float:
    """The 1-minute load average (the machine may be shared)."""
    return round(os.getloadavg()[0], 1)


def _per_municipality(week_dir: Path) -> dict[str, int]:
    return {p.parent.name: len(json.loads(p.read_text(encoding="utf-8")))
            for p in sorted(week_dir.glob("*/drafts.json"))}


def _median(runs: list[tuple[float, float, str]]) -> tuple[float, float]:
    """Median wall seconds and median peak MiB of several runs."""
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _summary(runs: list[tuple[float, float, str]], loads: list[float]) -> dict[str, Any]:
    """Medians (wall, CPU, peak) and every run of one contender, as written to ``peer-bench.json``."""
    done = [r for r in runs if id(r) not in FAILED]
    out: dict[str, Any] = {
        "runs": [{"wall_s": round(r[0], 2), "cpu_s": _cpu(r), "peak_mib": round(r[1]), "load": load,
                  **({"exit_code": FAILED[id(r)]} if id(r) in FAILED else {})}
                 for r, load in zip(runs, loads, strict=True)],
        "completed": len(done),
    }
    if done:
        out.update(median_s=round(statistics.median(r[0] for r in done), 2),
                   median_cpu_s=round(statistics.median(_cpu(r) for r in done), 2),
                   median_peak_mib=round(statistics.median(r[1] for r in done)))
    return out


def _line(name: str, summary: dict[str, Any]) -> str:
    each = ", ".join(f"{r['wall_s']:.1f} s ({r['cpu_s']:.1f} CPU s, {r['peak_mib']} MiB, load {r['load']})"
                     + (f" FAILED (exit {r['exit_code']})" if "exit_code" in r else "") for r in summary["runs"])
    if not summary["completed"]:
        return f"  {name:<34} did not complete: {each}"
    return (f"  {name:<34} {summary['median_s']:7.2f} s {summary['median_cpu_s']:7.2f} CPU s  "
            f"peak {summary['median_peak_mib']:6} MiB   (runs: {each})")


def test_socialsearch_against_the_duckdb_peer(workspace: Path) -> None:
    """Ours and the peer, ``SOCIALSEARCH_BENCH_ROUNDS`` rounds; then the read floor and the HMAC limit;
    then (unless ``SOCIALSEARCH_BENCH_PARTS=0``) the station alone and the hub alone."""
    peer = _peer()
    scale = bench_scale()
    rounds = int(os.environ.get("SOCIALSEARCH_BENCH_ROUNDS", "3"))
    parts = os.environ.get("SOCIALSEARCH_BENCH_PARTS", "1") != "0"
    extract = workspace / f"extract-{scale:g}"
    cli = [sys.executable, "-m", "socialsearch"]
    loads: dict[str, list[float]] = {"ours": [], "peer": []}
    ours_runs, peer_runs = [], []
    for _ in range(rounds):  # ours, then the peer, in each round
        for sub in ("ss-out", "ss-state", "peer-out"):
            shutil.rmtree(workspace / sub, ignore_errors=True)
        loads["ours"].append(_load())
        ours_runs.append(_measure([*cli, "run", "--input", str(extract), "--week", str(WEEK),
                                   "--out", str(workspace / "ss-out"), "--state", str(workspace / "ss-state"),
                                   "--keys", str(workspace / "keys"), "--new-state"]))
        loads["peer"].append(_load())
        peer_runs.append(_measure([sys.executable, str(peer), str(extract), str(WEEK),
                                   str(config_path("event_codes.toml")), str(workspace / "peer-out")],
                                  may_fail=True))
    floor_load = _load()
    floor = _measure([sys.executable, "-c", _READ_FLOOR, str(extract)])
    hmac = json.loads(_measure([sys.executable, "-c", _HMAC_LIMIT, str(extract / "population.parquet")])[2])
    ours_drafts = _per_municipality(workspace / "ss-out" / str(WEEK))
    peer_drafts = _per_municipality(workspace / "peer-out" / str(WEEK))
    ours, theirs = _summary(ours_runs, loads["ours"]), _summary(peer_runs, loads["peer"])
    result: dict[str, Any] = {
        "scale": scale, "week": str(WEEK), "cpus": os.cpu_count(), "rounds": rounds,
        "socialsearch_run": ours, "duckdb_peer": theirs,
        "read_floor": {"seconds": round(floor[0], 2), "cpu_s": _cpu(floor), "peak_mib": round(floor[1]),
                       "load": floor_load, "run_over_floor": round(ours["median_s"] / floor[0], 2),
                       "run_over_floor_cpu": round(ours["median_cpu_s"] / _cpu(floor), 2)},
        "hmac_limit": hmac,
        "drafts": {"socialsearch": sum(ours_drafts.values()), "peer": sum(peer_drafts.values()),
                   "municipalities_differing": sorted(k for k in ours_drafts.keys() | peer_drafts.keys()
                                                      if ours_drafts.get(k) != peer_drafts.get(k))},
    }
    if theirs["completed"]:
        result.update(speed_up=round(theirs["median_s"] / ours["median_s"], 2),
                      cpu_speed_up=round(theirs["median_cpu_s"] / ours["median_cpu_s"], 2),
                      memory_ratio=round(ours["median_peak_mib"] / theirs["median_peak_mib"], 2))
    if parts:
        for sub in ("pseudo", "hub-out", "hub-state"):
            shutil.rmtree(workspace / sub, ignore_errors=True)
        station = _measure([*cli, "pseudonymise", "--input", str(extract), "--out", str(workspace / "pseudo"),
                            "--keys", str(workspace / "keys"), "--week", str(WEEK)])
        hub = _measure([*cli, "run", "--input", str(workspace / "pseudo"), "--week", str(WEEK),
                        "--out", str(workspace / "hub-out"), "--state", str(workspace / "hub-state"),
                        "--keys", str(workspace / "hub-keys"), "--new-state"])
        assert _per_municipality(workspace / "hub-out" / str(WEEK)) == ours_drafts
        result["station_pseudonymise"] = {"seconds": round(station[0], 2), "cpu_s": _cpu(station),
                                          "peak_mib": round(station[1])}
        result["hub_run"] = {"seconds": round(hub[0], 2), "cpu_s": _cpu(hub), "peak_mib": round(hub[1])}
    (workspace / "peer-bench.json").write_text(json.dumps(result, indent=1), encoding="utf-8")

    print(f"\nscale {scale:g}, week {WEEK}, {os.cpu_count()} CPUs, {rounds} round(s), medians of wall, CPU, peak")
    print(_line("socialsearch run (single-site)", ours))
    print(_line("DuckDB peer", theirs))
    floor_line = result["read_floor"]
    print(f"  {'read floor (scan_parquet)':<34} {floor[0]:7.2f} s {_cpu(floor):7.2f} CPU s  peak {floor[1]:6.0f} MiB"
          f"   (load {floor_load}); the run is {floor_line['run_over_floor']}x the floor in wall time, "
          f"{floor_line['run_over_floor_cpu']}x in CPU seconds")
    print(f"  HMAC limit (native kernel, all cores): {hmac['ids_per_s'] / 1e6:.1f} M ids/s "
          f"({hmac['ids']:,} ids in {hmac['seconds']:.2f} s)")
    for name in ("station_pseudonymise", "hub_run"):
        if name in result:
            part = result[name]
            print(f"  {name:<34} {part['seconds']:7.2f} s {part['cpu_s']:7.2f} CPU s  peak {part['peak_mib']:6} MiB")
    if theirs["completed"]:
        print(f"  speed-up over the peer: {result['speed_up']:.2f}x in wall time, {result['cpu_speed_up']:.2f}x in "
              f"CPU seconds; peak {result['memory_ratio']:.2f} of the peer's")
    else:
        print("  speed-up over the peer: none (the peer did not complete; see its exit codes above)")
    drafts = result["drafts"]
    print(f"  drafts: socialsearch {drafts['socialsearch']}, peer {drafts['peer']}; "
          f"municipalities whose counts differ: {drafts['municipalities_differing']}")
