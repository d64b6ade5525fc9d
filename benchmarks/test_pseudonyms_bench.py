"""Benchmark of keyed pseudonyms at national scale, next to this machine's HMAC-SHA256 limit.

Run (scale 1.0 = 6 M distinct CPR numbers and 20 M incident-person rows)::

    /work/venv/bin/pytest benchmarks/test_pseudonyms_bench.py -p no:cacheprovider -s \
        --benchmark-columns=min,mean,rounds --benchmark-json=/tmp/pseudonyms-bench.json

    SOCIALSEARCH_BENCH_SCALE=0.1 /work/venv/bin/pytest benchmarks/test_pseudonyms_bench.py ...

Each test records in ``benchmark.extra_info``: distinct ids/s, rows/s, the worker count, peak
memory of this process (``VmHWM`` reset before the step) and the machine's limits measured in
the same run (``hardware_limits``): SHA-256 over a large buffer, ``openssl speed -evp sha256``
if ``openssl`` is installed, and the per-value rates of ``hmac.digest`` and of our loop on one
core, with threads and with processes. Numbers are printed as well (``-s``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from socialsearch import pseudonyms
from socialsearch.keys import KeyStore
from socialsearch.pseudonyms import Pseudonymiser

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


def _rate(fn: Any, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def _cpu_rate(fn: Any, n: int) -> float:
    with CpuClock() as clock:
        fn()
    return n / clock.seconds


def _openssl_sha256() -> dict[str, float] | None:
    exe = shutil.which("openssl")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "speed", "-evp", "sha256", "-seconds", "1"], capture_output=True,
                             text=True, timeout=120, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = next((x for x in out.splitlines() if x.lower().startswith("sha256") and "k" in x), None)
    if line is None:
        return None
    sizes = [16, 64, 256, 1024, 8192, 16384]
    values = [float(v) * 1000 for v in re.findall(r"([\d.]+)k", line)]
    result = {f"openssl_sha256_{s}B_bytes_per_s": v for s, v in zip(sizes, values, strict=False)}
    if values:  # a 16-byte message is one compression: an upper bound on compressions/s
        result["openssl_sha256_16B_hashes_per_s"] = values[0] / 16
    return result


def hardware_limits(sample: list[bytes]) -> dict[str, Any]:
    """This machine's SHA-256/HMAC limits, measured now (one core unless stated)."""
    key = os.urandom(32)
    n = len(sample)
    data = b"".join(sample)
    lengths = [len(v) for v in sample]
    big = os.urandom(256 << 20)
    t = time.perf_counter()
    hashlib.sha256(big).digest()
    sha_bps = len(big) / (time.perf_counter() - t)
    limits: dict[str, Any] = {
        "cpus": len(os.sched_getaffinity(0)),
        "loadavg_1m": os.getloadavg()[0],
        "sha256_large_buffer_bytes_per_s": sha_bps,
        # HMAC of a short value with the ipad/opad states precomputed = 2 compressions of 64 bytes
        "hmac_limit_per_core_from_sha256_per_s": sha_bps / 64 / 2,
        "hmac_digest_per_value_per_s": _rate(lambda: [hmac.digest(key, v, "sha256") for v in sample], n),
        "our_loop_per_value_per_s": _rate(lambda: pseudonyms._hmac_buffer(key, data, lengths), n),
        "hmac_digest_per_cpu_s": _cpu_rate(lambda: [hmac.digest(key, v, "sha256") for v in sample], n),
        "our_loop_per_cpu_s": _cpu_rate(lambda: pseudonyms._hmac_buffer(key, data, lengths), n),
    }
    half = n // 2
    off = sum(lengths[:half])

    def two_threads() -> None:
        ts = [threading.Thread(target=pseudonyms._hmac_buffer, args=(key, data[:off], lengths[:half])),
              threading.Thread(target=pseudonyms._hmac_buffer, args=(key, data[off:], lengths[half:]))]
        for th in ts:
            th.start()
        for th in ts:
            th.join()

    limits["our_loop_2_threads_per_s"] = _rate(two_threads, n)
    arr = np.asarray(lengths, dtype=np.int64)
    limits["our_loop_2_processes_per_s"] = _rate(lambda: pseudonyms._digests(data, arr, key, 2), n)
    limits["our_loop_1_process_per_s"] = _rate(lambda: pseudonyms._digests(data, arr, key, 1), n)
    limits["cpu_scaling_2_processes"] = _cpu_scaling()
    limits.update(_openssl_sha256() or {"openssl": "not installed"})
    return limits


_SPIN = (
    "import hashlib\n"
    "ic = hashlib.sha256(b'6' * 64).copy; oc = hashlib.sha256(b'\\\\' * 64).copy\n"
    "for i in range(1_000_000):\n"
    "    a = ic(); a.update(b'%010d' % i); b = oc(); b.update(a.digest()); b.digest()\n"
)


def _cpu_scaling() -> float:
    """How much two CPU-bound processes get done together, relative to one alone (2.0 = perfect).

    Runs the per-value HMAC loop in one process, then in two started together.
    """
    def spin(copies: int) -> float:
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(copies)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - start

    one = spin(1)
    return round(2 * one / spin(2), 2)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def keystore() -> KeyStore:
    return KeyStore.init(Path(tempfile.mkdtemp(prefix="ss-bench-")) / "keys")


@pytest.fixture(scope="module")
def distinct() -> pl.Series:
    return valid_cprs(DISTINCT)


@pytest.fixture(scope="module")
def limits(distinct: pl.Series) -> dict[str, Any]:
    sample = distinct.head(min(len(distinct), 1_000_000)).cast(pl.Binary).to_list()
    found = hardware_limits(sample)
    print("\nhardware limits:", {k: (f"{v:,.0f}" if isinstance(v, float) else v) for k, v in found.items()})
    return found


def _report(benchmark: Any, info: dict[str, Any]) -> None:
    benchmark.extra_info.update(info)
    print("\n" + ", ".join(f"{k}={v:,.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()
                           if k != "hardware_limits"))


# --------------------------------------------------------------------------------- tests
def test_persons_distinct(benchmark: Any, keystore: KeyStore, distinct: pl.Series,
                          limits: dict[str, Any], peak_memory: Any) -> None:
    """All distinct: normalise + HMAC + encode + join back, 6 M numbers at scale 1."""
    p = Pseudonymiser(keystore)
    peak_memory.reset()
    with CpuClock() as cpu:
        out = benchmark.pedantic(p.persons, args=(distinct,), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    assert out.null_count() == 0 and out.n_unique() == len(distinct)
    _report(benchmark, {
        "distinct": len(distinct), "seconds": seconds, "distinct_ids_per_s": len(distinct) / seconds,
        "cpu_seconds": cpu.seconds, "distinct_ids_per_cpu_s": len(distinct) / cpu.seconds,
        "loadavg_1m": os.getloadavg()[0],
        "workers": pseudonyms.default_workers(), "peak_rss_mib": peak_memory.mib(),
        "peak_exact": peak_memory.exact, "hardware_limits": limits,
    })


def test_hmac_only(benchmark: Any, keystore: KeyStore, distinct: pl.Series, peak_memory: Any) -> None:
    """The HMAC step alone on the packed distinct values (what the workers split)."""
    _, data, lengths = pseudonyms._distinct_bytes(distinct)
    key = keystore.subkey("person")
    peak_memory.reset()
    with CpuClock() as cpu:
        benchmark.pedantic(pseudonyms._digests, args=(data, lengths, key), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    _report(benchmark, {"distinct": len(lengths), "seconds": seconds,
                        "hmac_per_s": len(lengths) / seconds, "workers": pseudonyms.default_workers(),
                        "cpu_seconds": cpu.seconds, "hmac_per_cpu_s": len(lengths) / cpu.seconds,
                        "loadavg_1m": os.getloadavg()[0],
                        "peak_rss_mib": peak_memory.mib()})


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
    _report(benchmark, {"rows": ROWS, "distinct": n_distinct, "seconds": seconds,
                        "cpu_seconds": cpu.seconds, "loadavg_1m": os.getloadavg()[0],
                        "rows_per_s": ROWS / seconds, "distinct_ids_per_s": n_distinct / seconds,
                        "peak_rss_mib": peak_memory.mib()})


def test_seal_values(benchmark: Any, keystore: KeyStore, distinct: pl.Series, peak_memory: Any) -> None:
    """The per-value sealed column that travels next to each pseudonym (vectorised AES)."""
    from socialsearch.vault import open_values, seal_values

    key = keystore.subkey("vault")
    peak_memory.reset()
    with CpuClock() as cpu:
        sealed = benchmark.pedantic(seal_values, args=(distinct, key), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    t = time.perf_counter()
    opened = open_values(sealed, key)
    open_seconds = time.perf_counter() - t
    assert opened.equals(distinct.rename(opened.name))
    _report(benchmark, {"values": len(distinct), "seal_seconds": seconds, "open_seconds": open_seconds,
                        "values_per_s": len(distinct) / seconds, "cpu_seconds": cpu.seconds,
                        "peak_rss_mib": peak_memory.mib(), "loadavg_1m": os.getloadavg()[0]})
