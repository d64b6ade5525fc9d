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

The figures are also written to ``peer-bench.json`` in the workspace.
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


def _measure(args: list[str]) -> tuple[float, float, str]:
    """Run ``args`` as a child process: (wall seconds, peak RSS MiB of that child, stdout).

    Its CPU seconds are kept in :data:`CPU_SECONDS` under the id of the returned tuple.
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _WRAPPER, str(peak_file), *args],
                              capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-2000:]
        peak, cpu = peak_file.read_text().split()
        out = (seconds, int(peak) / 1024, done.stdout)
        CPU_SECONDS[id(out)] = float(cpu)
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


def test_socialsearch_against_the_duckdb_peer(workspace: Path) -> None:
    peer = _peer()
    scale = bench_scale()
    rounds = int(os.environ.get("SOCIALSEARCH_BENCH_ROUNDS", "3"))
    extract = workspace / f"extract-{scale:g}"
    cli = [sys.executable, "-m", "socialsearch"]
    loads: dict[str, list[float]] = {"socialsearch run": [], "DuckDB peer": []}
    ours_runs, peer_runs = [], []
    for _ in range(rounds):  # ours, then the peer, in each round
        for sub in ("ss-out", "ss-state", "peer-out"):
            shutil.rmtree(workspace / sub, ignore_errors=True)
        loads["socialsearch run"].append(_load())
        ours_runs.append(_measure([*cli, "run", "--input", str(extract), "--week", str(WEEK),
                                   "--out", str(workspace / "ss-out"), "--state", str(workspace / "ss-state"),
                                   "--keys", str(workspace / "keys"), "--new-state"]))
        loads["DuckDB peer"].append(_load())
        peer_runs.append(_measure([sys.executable, str(peer), str(extract), str(WEEK),
                                   str(config_path("event_codes.toml")), str(workspace / "peer-out")]))
    floor = _measure([sys.executable, "-c", _READ_FLOOR, str(extract)])
    hmac = json.loads(_measure([sys.executable, "-c", _HMAC_LIMIT, str(extract / "population.parquet")])[2])
    for sub in ("pseudo", "hub-out", "hub-state"):
        shutil.rmtree(workspace / sub, ignore_errors=True)
    station = _measure([*cli, "pseudonymise", "--input", str(extract), "--out", str(workspace / "pseudo"),
                        "--keys", str(workspace / "keys"), "--week", str(WEEK)])
    hub = _measure([*cli, "run", "--input", str(workspace / "pseudo"), "--week", str(WEEK),
                    "--out", str(workspace / "hub-out"), "--state", str(workspace / "hub-state"),
                    "--keys", str(workspace / "hub-keys"), "--new-state"])

    ours_drafts = _per_municipality(workspace / "ss-out" / str(WEEK))
    peer_drafts = _per_municipality(workspace / "peer-out" / str(WEEK))
    assert _per_municipality(workspace / "hub-out" / str(WEEK)) == ours_drafts
    ours, theirs = _median(ours_runs), _median(peer_runs)
    result = {
        "scale": scale, "week": str(WEEK), "cpus": os.cpu_count(), "rounds": rounds,
        "socialsearch_run": {"median_s": ours[0], "median_peak_mib": ours[1],
                             "runs": [[round(r[0], 2), round(r[1])] for r in ours_runs],
                             "cpu_s": [_cpu(r) for r in ours_runs],
                             "load": loads["socialsearch run"]},
        "duckdb_peer": {"median_s": theirs[0], "median_peak_mib": theirs[1],
                        "runs": [[round(r[0], 2), round(r[1])] for r in peer_runs], "load": loads["DuckDB peer"],
                        "cpu_s": [_cpu(r) for r in peer_runs]},
        "cpu_speed_up": statistics.median(_cpu(r) for r in peer_runs) / statistics.median(_cpu(r) for r in ours_runs),
        "speed_up": theirs[0] / ours[0], "memory_ratio": ours[1] / theirs[1],
        "read_floor": {"seconds": floor[0], "peak_mib": floor[1], "cpu_s": _cpu(floor),
                       "run_over_floor": ours[0] / floor[0]},
        "hmac_limit": hmac,
        "station_pseudonymise": {"seconds": station[0], "peak_mib": station[1]},
        "hub_run": {"seconds": hub[0], "peak_mib": hub[1]},
    }
    (workspace / "peer-bench.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"\nscale {scale:g}, week {WEEK}, {os.cpu_count()} CPUs, {rounds} round(s), medians")
    for name, runs in (("socialsearch run (single-site)", ours_runs), ("DuckDB peer", peer_runs)):
        seconds, peak = _median(runs)
        each = ", ".join(f"{r[0]:.1f} s ({_cpu(r):.1f} CPU s)" for r in runs)
        load = loads["socialsearch run" if name.startswith("social") else "DuckDB peer"]
        print(f"  {name:<38} {seconds:7.2f} s  peak {peak:7.0f} MiB   (runs: {each}; load {load})")
    for name, (seconds, peak, _) in (("socialsearch pseudonymise (station)", station),
                                     ("socialsearch run (hub extract)", hub), ("read floor (scan_parquet)", floor)):
        print(f"  {name:<38} {seconds:7.2f} s  peak {peak:7.0f} MiB")
    print(f"  read floor CPU seconds: {_cpu(floor):.2f}")
    print(f"  HMAC limit (native kernel, all cores): {hmac['ids_per_s'] / 1e6:.1f} M ids/s "
          f"({hmac['ids']:,} ids in {hmac['seconds']:.2f} s)")
    print(f"  speed-up over the peer: {theirs[0] / ours[0]:.2f}x (in CPU seconds "
          f"{result['cpu_speed_up']:.2f}x); memory ratio {ours[1] / theirs[1]:.2f}; "
          f"run / read floor {ours[0] / floor[0]:.1f}x")
    differ = sorted(k for k in ours_drafts.keys() | peer_drafts.keys() if ours_drafts.get(k) != peer_drafts.get(k))
    print(f"  drafts: socialsearch {sum(ours_drafts.values())}, peer {sum(peer_drafts.values())}; "
          f"municipalities whose counts differ: {differ}")
