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

The drafts per municipality of both are compared and printed.
"""

from __future__ import annotations

import json
import os
import shutil
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
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def _measure(args: list[str]) -> tuple[float, float, str]:
    """Run ``args`` as a child process: (wall seconds, peak RSS MiB of that child, stdout)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _WRAPPER, str(peak_file), *args],
                              capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-2000:]
        return seconds, int(peak_file.read_text()) / 1024, done.stdout


def _per_municipality(week_dir: Path) -> dict[str, int]:
    return {p.parent.name: len(json.loads(p.read_text(encoding="utf-8")))
            for p in sorted(week_dir.glob("*/drafts.json"))}


def test_socialsearch_against_the_duckdb_peer(workspace: Path) -> None:
    peer = _peer()
    scale = bench_scale()
    extract = workspace / f"extract-{scale:g}"
    cli = [sys.executable, "-m", "socialsearch"]
    for sub in ("ss-out", "ss-state", "peer-out", "pseudo", "hub-out", "hub-state"):
        shutil.rmtree(workspace / sub, ignore_errors=True)

    ours = _measure([*cli, "run", "--input", str(extract), "--week", str(WEEK), "--out", str(workspace / "ss-out"),
                     "--state", str(workspace / "ss-state"), "--keys", str(workspace / "keys"), "--new-state"])
    theirs = _measure([sys.executable, str(peer), str(extract), str(WEEK), str(config_path("event_codes.toml")),
                       str(workspace / "peer-out")])
    station = _measure([*cli, "pseudonymise", "--input", str(extract), "--out", str(workspace / "pseudo"),
                        "--keys", str(workspace / "keys"), "--week", str(WEEK)])
    hub = _measure([*cli, "run", "--input", str(workspace / "pseudo"), "--week", str(WEEK),
                    "--out", str(workspace / "hub-out"), "--state", str(workspace / "hub-state"),
                    "--keys", str(workspace / "hub-keys"), "--new-state"])

    ours_drafts = _per_municipality(workspace / "ss-out" / str(WEEK))
    peer_drafts = _per_municipality(workspace / "peer-out" / str(WEEK))
    assert _per_municipality(workspace / "hub-out" / str(WEEK)) == ours_drafts
    rows = [("socialsearch run (single-site)", ours), ("DuckDB peer", theirs),
            ("socialsearch pseudonymise (station)", station), ("socialsearch run (hub extract)", hub)]
    print(f"\nscale {scale:g}, week {WEEK}")
    for name, (seconds, peak, _) in rows:
        print(f"  {name:<38} {seconds:7.2f} s  peak {peak:7.0f} MiB")
    print(f"  speed-up over the peer: {theirs[0] / ours[0]:.2f}x; memory ratio {ours[1] / theirs[1]:.2f}")
    differ = sorted(k for k in ours_drafts.keys() | peer_drafts.keys() if ours_drafts.get(k) != peer_drafts.get(k))
    print(f"  drafts: socialsearch {sum(ours_drafts.values())}, peer {sum(peer_drafts.values())}; "
          f"municipalities whose counts differ: {differ}")
