"""Shared benchmark helpers: the scale factor and peak resident memory.

Imported by the benchmark files both under pytest (``benchmarks/`` is on ``sys.path`` there)
and when a benchmark file is run as a script.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def bench_scale() -> float:
    """``SOCIALSEARCH_BENCH_SCALE`` (default 1.0 = national scale)."""
    return float(os.environ.get("SOCIALSEARCH_BENCH_SCALE", "1.0"))


def reset_peak_rss() -> bool:
    """Reset this process's resident-set high-water mark (Linux); False where impossible."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident memory in MiB: ``VmHWM`` since the last :func:`reset_peak_rss`, else ``ru_maxrss``.

    Child processes (the HMAC workers) are not included.
    """
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024



class PeakMemory:
    """``reset()`` before a measured step, ``mib()`` after it (fixture ``peak_memory``)."""

    def __init__(self) -> None:
        self.exact = False  # True when the high-water mark could be reset (Linux)

    def reset(self) -> None:
        self.exact = reset_peak_rss()

    def mib(self) -> float:
        return peak_rss_mib()



def peak_rss_bytes() -> int:
    """:func:`peak_rss_mib` in bytes."""
    return int(peak_rss_mib() * 1024 * 1024)


def cpu_seconds() -> float:
    """CPU seconds of this process, all threads (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
