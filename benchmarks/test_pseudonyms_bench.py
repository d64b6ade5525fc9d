"""Benchmark of keyed pseudonyms and sealed values at national scale, next to this machine's
HMAC-SHA256 limit measured in the same run.

Run (scale 1.0 = 6 M distinct CPR numbers and 20 M incident-person rows; more than 2 GiB, so
under the shared lock)::

    flock /tmp/socialsearch-bigmem.lock .venv/bin/pytest benchmarks/test_pseudonyms_bench.py \
        -p no:cacheprovider -s --benchmark-columns=min,rounds --benchmark-json=/tmp/pseudonyms-bench.json

    SOCIALSEARCH_BENCH_SCALE=0.1 .venv/bin/pytest benchmarks/test_pseudonyms_bench.py ...

Each test records in ``benchmark.extra_info`` (and prints, with ``-s``): wall and CPU seconds,
ids/s, the thread count, the 1-minute load average, peak memory of this process (``VmHWM``
reset before the step) and, for the headline test, the machine's limits measured in the same
run (``hardware_limits``): single-block SHA-256 compressions/s of ``sha2`` (the code the
kernel runs) on 1 and 2 threads, the native HMAC kernel alone on 10-byte values (raw 32-byte
digests), and ``openssl speed -evp sha256 -bytes 64`` when ``openssl`` is installed.
HMAC-SHA256 of a short value with precomputed pads is two compressions, so the limit in ids/s
is half the compression rate; the 2-thread limit that ratios are taken against is twice the
1-thread one (on a shared machine the second core is often busy while it is measured).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from socialsearch.crypto import _native
from socialsearch.crypto.keys import KeyStore
from socialsearch.crypto.pseudonyms import Pseudonymiser, default_threads

SCALE = float(os.environ.get("SOCIALSEARCH_BENCH_SCALE", "1.0"))
DISTINCT = max(1_000, int(6_000_000 * SCALE))
ROWS = max(1_000, int(20_000_000 * SCALE))


def valid_cprs(n: int, seed: int = 0) -> pl.Series:
    """``n`` distinct valid CPR numbers (``DDMMYYSSSS``), generated with NumPy and Polars only.

    A number is (birth day in 1930-2025, serial 0-3999); the 7th digit is 0-3 for births in
    the 1900s and 4-7 for births in the 2000s, as the century table requires.
    """
    rng = np.random.default_rng(seed)
    days = (np.datetime64("2025-12-31") - np.datetime64("1930-01-01")).astype(int) + 1
    space = days * 4000
    codes = np.unique(rng.integers(0, space, int(n * 1.05) + 1000))
    while len(codes) < n:  # pragma: no cover - only for tiny spaces
        codes = np.unique(np.concatenate([codes, rng.integers(0, space, n)]))
    codes = rng.permutation(codes)[:n]
    born = np.datetime64("1930-01-01") + (codes // 4000).astype("timedelta64[D]")
    serial = codes % 4000
    frame = pl.DataFrame({"born": born, "serial": serial}).with_columns(
        pl.col("born").cast(pl.Date)
    )
    return frame.select(
        pl.concat_str(
            [
                pl.col("born").dt.strftime("%d%m%y"),
                (pl.col("serial") + pl.when(pl.col("born").dt.year() >= 2000).then(4000).otherwise(0))
                .cast(pl.String)
                .str.zfill(4),
            ]
        ).alias("cpr")
    ).to_series()


# ------------------------------------------------------------------------ hardware limits
class CpuClock:
    """CPU seconds of this process and its finished children (``openssl speed`` also counts CPU
    time), so that rates stay comparable on a machine that is busy with other work."""

    def __enter__(self) -> CpuClock:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self._now() - self._start

    @staticmethod
    def _now() -> float:
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + child.ru_utime + child.ru_stime


def _best_rate(fn: Any, n: int, repeats: int = 3) -> float:
    """Items per wall-clock second of the fastest of ``repeats`` runs (the least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def _openssl_sha256_64() -> dict[str, float] | None:
    """``openssl speed -evp sha256 -bytes 64``: one 64-byte message is two compressions."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "speed", "-evp", "sha256", "-bytes", "64", "-seconds", "2"],
                             capture_output=True, text=True, timeout=120, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = next((x for x in out.splitlines() if x.lower().startswith("sha256") and "k" in x), None)
    values = re.findall(r"([\d.]+)k", line or "")
    if not values:
        return None
    bytes_per_s = float(values[0]) * 1000
    return {"openssl_sha256_64B_bytes_per_s": bytes_per_s, "openssl_sha256_64B_hashes_per_s": bytes_per_s / 64}


def hardware_limits(sample: pl.Series) -> dict[str, Any]:
    """This machine's SHA-256/HMAC limits, measured now with the code the kernel runs."""
    count = 20_000_000
    limits: dict[str, Any] = {"cpus": len(os.sched_getaffinity(0)), "loadavg_1m": os.getloadavg()[0]}
    for threads in (1, 2):
        rate = _best_rate(lambda t=threads: _native.sha256_compressions(count, t), count)
        limits[f"sha256_compressions_per_s_{threads}_threads"] = rate
        limits[f"hmac_limit_per_s_{threads}_threads"] = rate / 2
    limits["compression_scaling_2_threads"] = (
        limits["sha256_compressions_per_s_2_threads"] / limits["sha256_compressions_per_s_1_threads"]
    )
    # On a shared machine the 2-thread measurement often finds the second core busy; the
    # limit that ratios are taken against is the ideal one, twice the 1-thread figure.
    limits["hmac_limit_per_s_2_threads_measured"] = limits["hmac_limit_per_s_2_threads"]
    limits["hmac_limit_per_s_2_threads"] = 2 * limits["hmac_limit_per_s_1_threads"]
    key = os.urandom(32)
    for threads in (1, 2):
        limits[f"native_hmac_10B_raw_per_s_{threads}_threads"] = _best_rate(
            lambda t=threads: _native.hmac_sha256(key, sample, threads=t), len(sample)
        )
    limits.update(_openssl_sha256_64() or {"openssl": "not installed"})
    return limits


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def keystore() -> KeyStore:
    return KeyStore.init(Path(tempfile.mkdtemp(prefix="ss-bench-")) / "keys")


@pytest.fixture(scope="module")
def distinct() -> pl.Series:
    return valid_cprs(DISTINCT)


@pytest.fixture(scope="module")
def limits(distinct: pl.Series) -> dict[str, Any]:
    found = hardware_limits(distinct.cast(pl.Binary))
    print("\nhardware limits:", {k: (f"{v:,.0f}" if isinstance(v, float) else v) for k, v in found.items()})
    return found


def _report(benchmark: Any, info: dict[str, Any]) -> None:
    benchmark.extra_info.update(info)
    print("\n" + ", ".join(f"{k}={v:,.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()
                           if k != "hardware_limits"))


# --------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("threads", [1, 2])
def test_persons_distinct_normalised(benchmark: Any, keystore: KeyStore, distinct: pl.Series,
                                     limits: dict[str, Any], peak_memory: Any, threads: int) -> None:
    """The headline: text in, pseudonym Series out, for the station's identity table (6 M)."""
    p = Pseudonymiser(keystore, workers=threads)
    peak_memory.reset()
    with CpuClock() as cpu:
        out = benchmark.pedantic(p.persons_distinct_normalised, args=(distinct,), rounds=3, iterations=1)
    seconds = benchmark.stats.stats.min
    assert out.dtype == pl.String and out.null_count() == 0 and len(out) == len(distinct)
    rate = len(distinct) / seconds
    limit = limits[f"hmac_limit_per_s_{threads}_threads"]
    _report(benchmark, {
        "threads": threads, "distinct": len(distinct), "seconds": seconds, "distinct_ids_per_s": rate,
        "cpu_seconds_3_rounds": cpu.seconds, "distinct_ids_per_cpu_s": 3 * len(distinct) / cpu.seconds,
        "hmac_limit_per_s": limit, "ratio_to_limit": rate / limit,
        "ratio_to_native_hmac_10B_raw": rate / limits[f"native_hmac_10B_raw_per_s_{threads}_threads"],
        "loadavg_1m": os.getloadavg()[0], "peak_rss_mib": peak_memory.mib(), "hardware_limits": limits,
    })


def test_persons_distinct(benchmark: Any, keystore: KeyStore, distinct: pl.Series, peak_memory: Any) -> None:
    """All distinct raw spellings: normalise + HMAC + encode + join back, 6 M numbers at scale 1."""
    p = Pseudonymiser(keystore)
    peak_memory.reset()
    with CpuClock() as cpu:
        out = benchmark.pedantic(p.persons, args=(distinct,), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    assert out.null_count() == 0 and out.n_unique() == len(distinct)
    _report(benchmark, {
        "threads": default_threads(), "distinct": len(distinct), "seconds": seconds,
        "distinct_ids_per_s": len(distinct) / seconds, "cpu_seconds": cpu.seconds,
        "loadavg_1m": os.getloadavg()[0], "peak_rss_mib": peak_memory.mib(),
    })


def test_incident_persons_rows(benchmark: Any, keystore: KeyStore, distinct: pl.Series, peak_memory: Any) -> None:
    """20 M rows drawn with repeats from the distinct numbers, a third of them dashed."""
    rng = np.random.default_rng(1)
    picks = distinct.gather(rng.integers(0, len(distinct), ROWS))
    dashed = rng.random(ROWS) < 1 / 3
    rows = pl.DataFrame({"c": picks, "d": dashed}).select(
        pl.when(pl.col("d")).then(pl.col("c").str.slice(0, 6) + "-" + pl.col("c").str.slice(6))
        .otherwise(pl.col("c"))
    ).to_series()
    n_distinct = picks.n_unique()
    p = Pseudonymiser(keystore)
    peak_memory.reset()
    with CpuClock() as cpu:
        out = benchmark.pedantic(p.persons, args=(rows,), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    assert out.null_count() == 0 and out.n_unique() == n_distinct
    _report(benchmark, {"rows": ROWS, "distinct": n_distinct, "seconds": seconds, "threads": default_threads(),
                        "cpu_seconds": cpu.seconds, "loadavg_1m": os.getloadavg()[0],
                        "rows_per_s": ROWS / seconds, "distinct_ids_per_s": n_distinct / seconds,
                        "peak_rss_mib": peak_memory.mib()})


def test_seal_values(benchmark: Any, keystore: KeyStore, distinct: pl.Series, peak_memory: Any) -> None:
    """The per-value sealed column (AES-SIV) that travels next to each pseudonym, and opening it."""
    from socialsearch.crypto.vault import open_values, seal_values

    key = keystore.subkey("vault")
    peak_memory.reset()
    with CpuClock() as cpu:
        sealed = benchmark.pedantic(seal_values, args=(distinct, key), rounds=3, iterations=1)
    seconds = benchmark.stats.stats.min
    t = time.perf_counter()
    opened = open_values(sealed, key)
    open_seconds = time.perf_counter() - t
    assert opened.equals(distinct.rename(opened.name))
    _report(benchmark, {"values": len(distinct), "threads": default_threads(), "seal_seconds": seconds,
                        "open_seconds": open_seconds, "seal_values_per_s": len(distinct) / seconds,
                        "open_values_per_s": len(distinct) / open_seconds, "cpu_seconds_3_rounds": cpu.seconds,
                        "peak_rss_mib": peak_memory.mib(), "loadavg_1m": os.getloadavg()[0]})
