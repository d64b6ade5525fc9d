"""Shared benchmark helpers (small and generic): the scale factor and peak memory.

Benchmarks are collected only when run explicitly, e.g. ``pytest benchmarks/ -p no:cacheprovider``.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest

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

    Child processes are not included (see :func:`children_peak_rss_mib`).
    """
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def children_peak_rss_mib() -> float:
    """Largest peak resident memory of any terminated child process, in MiB (``ru_maxrss``)."""
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024



class PeakMemory:
    """``reset()`` before a measured step, ``mib()`` after it (fixture ``peak_memory``)."""

    def __init__(self) -> None:
        self.exact = False  # True when the high-water mark could be reset (Linux)

    def reset(self) -> None:
        self.exact = reset_peak_rss()

    def mib(self) -> float:
        return peak_rss_mib()


@pytest.fixture
def peak_memory() -> PeakMemory:
    return PeakMemory()
