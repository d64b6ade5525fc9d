"""Benchmark of ``review --import`` of a decisions file with 20,000 decisions.

Run::

    pytest benchmarks/test_decisions_bench.py -p no:cacheprovider --benchmark-columns=min,mean,max,rounds -s

or without pytest: ``python benchmarks/test_decisions_bench.py [decisions]``.

A ledger with one week of N drafts for municipality 101, and a ``decisions.json`` dismissing
every one of them with a reason that holds a date and a time ("Hændelsen 2026-11-17 10:00 er
allerede kendt (sag 17); ...": a digit run of ten digits with separators, which the CPR check
must look at). Measured: :func:`socialsearch.municipality.import_decisions` (read, validate,
record all in one transaction).

Measured 2026-12-06 on the shared 2-core development machine (``python
benchmarks/test_decisions_bench.py 20000``, the code before with the same script), one run each,
before and after back to back under the same load: 141 s before, 5.1 s after; again at load
average 16-21 (other engineers' test suites): 180 s before, 13.3 s after. Before, each reason's
CPR check built its own Polars frame, twice (validating the file, then recording); after, one
CPR check over all reasons (the validation 0.85 s; reading and the depth check 0.23 s of the
3.4 MB file).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_ledger import make_drafts, make_signals  # noqa: E402

from socialsearch.ledger import Ledger  # noqa: E402
from socialsearch.municipality import import_decisions  # noqa: E402

N = 20_000


def workspace(folder: Path, n: int = N) -> Path:
    """A state folder with ``n`` drafts of 2026-W47 for 101, and their decisions file."""
    ids = [f"D47-{i:05d}" for i in range(n)]
    drafts = make_drafts("2026-W47", [{"draft_id": d, "child": f"C{i}"} for i, d in enumerate(ids)])
    signals = make_signals([(d, f"C{i}", f"E{i}", "P", True) for i, d in enumerate(ids)])
    with Ledger.open(folder) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
    document = {"format": "socialsearch-decisions", "version": 1, "week": "2026-W47", "municipality": "101",
                "decisions": [{"draft_id": d, "decision": "dismiss", "reviewer": "ABC",
                               "reason": f"Hændelsen 2026-11-17 10:00 er allerede kendt (sag {i}); tages op på "
                                         "teammøde uge 48."} for i, d in enumerate(ids)]}
    path = folder / "decisions.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.slow
def test_import_20000_decisions(benchmark: Any, tmp_path: Path) -> None:
    path = workspace(tmp_path)
    report = benchmark.pedantic(import_decisions, args=(tmp_path, path), rounds=1, iterations=1)
    assert report["recorded"] == N


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    with tempfile.TemporaryDirectory() as tmp:
        path = workspace(Path(tmp), n)
        start = time.perf_counter()
        report = import_decisions(tmp, path)
        print(f"recorded {report['recorded']:,} decisions in {time.perf_counter() - start:.2f} s "
              f"({path.stat().st_size:,} bytes)")
