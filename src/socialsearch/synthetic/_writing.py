"""Writing: chunked Parquet/CSV files, the output folder's checks and the summary."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from ..errors import UsageError

# --------------------------------------------------------------------------- writing
_TABLE_DIRS = ("incidents", "incident_persons")


def check_out(out: Path, fmt: str) -> None:
    other = "csv" if fmt == "parquet" else "parquet"
    stale = [p for d in _TABLE_DIRS for p in (out / d).glob(f"*.{other}")]
    stale += [p for p in (out / f"population.{other}", out / f"relations.{other}") if p.exists()]
    if stale:
        raise UsageError(
            f"{out}: holds {other} extracts from an earlier run ({stale[0].relative_to(out)}); "
            f"choose an empty folder or remove them, since a reader would read both formats"
        )


def remove_partial(out: Path, *, fresh: bool, written: Sequence[Path]) -> None:
    """Remove what a failed or interrupted run wrote: ``out`` itself when the run made it, else the
    files it wrote and every temporary file of a write that was cut short."""
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
        return
    for path in written:
        path.unlink(missing_ok=True)
    for folder in (out, out / "truth", *(out / d for d in _TABLE_DIRS)):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def write_frame(frame: pl.DataFrame, path: Path, fmt: str) -> Path:
    """Write atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "parquet":
        frame.write_parquet(tmp, compression="zstd", statistics=True)
    else:
        local = frame.with_columns(pl.col(pl.Datetime).dt.replace_time_zone(None))
        local.write_csv(tmp, datetime_format="%Y-%m-%dT%H:%M:%S", date_format="%Y-%m-%d")
    os.replace(tmp, path)
    return path


class ChunkedFile:
    """One output file written from row chunks without holding them all.

    Each chunk goes to a part file in ``scratch``; :meth:`close` streams the parts, in order,
    into the target (one Parquet file of several row groups, or one CSV file) and renames it
    into place.
    """

    def __init__(self, path: Path, fmt: str, scratch: Path) -> None:
        self.path, self.fmt, self.scratch = path, fmt, scratch
        self.parts: list[Path] = []
        self.rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        part = self.scratch / f"{self.path.parent.name}-{self.path.stem}-{len(self.parts):06d}.parquet"
        frame.write_parquet(part, compression="lz4", statistics=False)
        self.parts.append(part)
        self.rows += frame.height

    def close(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        lazy = pl.scan_parquet(self.parts)
        if self.fmt == "parquet":
            lazy.sink_parquet(tmp, compression="zstd", statistics=True)
        else:
            lazy.with_columns(pl.col(pl.Datetime).dt.replace_time_zone(None)).sink_csv(
                tmp, datetime_format="%Y-%m-%dT%H:%M:%S", date_format="%Y-%m-%d")
        os.replace(tmp, self.path)
        for part in self.parts:
            part.unlink()
        return self.path


def write_summary(out: Path, summary: dict[str, object]) -> Path:
    path = out / "truth" / "summary.json"
    tmp = path.with_name(".summary.json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
