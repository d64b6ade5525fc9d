"""Statistics for the councils (kredsråd, lokalråd, SSP): counts, never drafts, with small cells hidden.

:func:`stats` reads the ledger of a state folder (read-only: no vault, no lock) for the weeks
``from_week`` to ``to_week`` and writes ``stats.json``, ``stats.csv`` and ``stats.html`` (a
Danish report with inline SVG charts) to an output folder. A run on a hub extract records each
draft's statistics values sealed for the key custodian; ``keys_dir`` (the custodian's keystore)
opens them. See ``docs/statistics.md``.

What is counted
---------------
Every table counts **drafts** (one draft is one child in one week), split by a dimension
(municipality, police district, age band, rule, follow-up, cross-district) and by the latest
review decision (approved, dismissed, undecided). The category table counts (draft, category)
pairs: a draft with signals of two categories counts once in each.

Small-cell suppression
----------------------
A cell is *sensitive* when it holds 1 to 4 distinct **children** (not drafts: six weekly drafts
of two children are still two children); it is published as ``"<5"``. Secondary suppression
then hides further cells so that no hidden cell can be recovered from the published totals:

1. every relation "total = sum of parts" (a row, a column, a district = its municipalities)
   that holds exactly one hidden cell gets its next-smallest published cell hidden too (the
   smallest non-zero part; a zero part, then a total, only when nothing else is left), until no
   relation has exactly one (the classic rule of statistical offices);
2. an exact audit then solves the whole linear system of relations over the hidden cells; any
   hidden cell the published cells still determine (e.g. through a chain of tables) gets a
   neighbour hidden as well, and both steps repeat until nothing hidden is determined.

A cell hidden for being small shows ``"<5"`` (:data:`SUPPRESSED`); a cell hidden only by the
rules above shows ``"(skjult)"`` (:data:`SECONDARY`): it may hold any number. Zeros stay
published. Tables that share a number (the grand total, the decision totals, a dimension's row
totals) share one cell, so a number hidden in one table is hidden in all.

Examples
--------
A ledger without runs gives empty tables (a real one is the ``--state`` folder of the runs):

>>> import pathlib, tempfile
>>> from socialsearch.ledger import Ledger
>>> state = pathlib.Path(tempfile.mkdtemp())
>>> with Ledger.open(state) as ledger:
...     _ = ledger.append_audit("note", {})
>>> report = stats(state, from_week="2026-W27", to_week="2026-W39", out_dir=state / "q3")
>>> report.summary["drafts"], sorted(p.name for p in report.paths.values())
(0, ['stats.csv', 'stats.html', 'stats.json'])
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import markupsafe
import numpy as np
import polars as pl

from ._atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from ._html import CSP_PLACEHOLDER, with_csp
from ._resources import templates
from .contract import DECISIONS
from .crypto.keys import KeyStore
from .crypto.municipal import open_statistics
from .errors import AuditError, LedgerError, UsageError
from .geography import geography
from .ledger.chain import LEDGER_FILE, read_anchor
from .ledger.integrity import latest_reviews, verify_connection
from .weeks import IsoWeek

__all__ = [
    "DIMENSIONS",
    "K",
    "MIN_PUBLISHED",
    "Relation",
    "SECONDARY",
    "SUPPRESSED",
    "StatsReport",
    "StatsTable",
    "render_html",
    "stats",
    "suppress",
]

MIN_PUBLISHED = 5
"""Cells of 1 to ``MIN_PUBLISHED - 1`` children are never published."""
SUPPRESSED = "<5"
"""What a cell of 1 to 4 children shows (primary suppression), in every file."""
SECONDARY = "(skjult)"
"""What a cell hidden only so that no small cell can be worked out shows (secondary
suppression), in every file: it may hold any number, so it must not read as "<5"."""

DIMENSIONS = ("municipality", "district", "category", "age_band", "rule", "decision", "cross_district")
"""The ``--by`` choices."""

_TOTAL = "*"
_DECISION_COLUMNS = (*DECISIONS, "undecided")
_DECISION_DA = {"approve": "godkendt", "dismiss": "afvist", "undecided": "ikke afgjort", _TOTAL: "i alt"}
_RULE_DA = {"immediate": "straks (umiddelbar kategori)", "threshold": "tærskel (samlet vægt)"}
_FOLLOW_UP_DA = {"follow_up": "opfølgning (barnet havde tidligere udkast)", "first": "første udkast"}
_CROSS_DA = {
    "other": "mindst én hændelse i en anden politikreds",
    "same": "alle hændelser i barnets egen politikreds",
    "unknown": "ukendt politikreds",
}
_DIM_DA = {
    "week": "Udkast pr. uge",
    "municipality": "Udkast pr. kommune",
    "district": "Udkast pr. politikreds (barnets)",
    "category": "Udkast pr. kategori (et udkast tæller i hver af sine kategorier)",
    "age_band": "Udkast pr. aldersgruppe",
    "rule": "Udkast pr. regel",
    "decision": "Udkast pr. afgørelse",
    "follow_up": "Første udkast og opfølgninger",
    "cross_district": "Udkast med hændelser fra en anden politikreds",
}
_BY_DA = {
    "municipality": "kommune", "district": "politikreds", "category": "kategori", "age_band": "aldersgruppe",
    "rule": "regel", "decision": "afgørelse", "cross_district": "anden politikreds × afgørelse",
}
# Age bands in whole years on the last day of the draft week (the child's age in the draft).
_AGE_BANDS = ((0, 5), (6, 11), (12, 14), (15, 17))
_UNKNOWN = "unknown"
# Tables that always appear (one column: the number of drafts), before the --by tables.
_ALWAYS = ("week", "follow_up", "decision", "cross_district")
# Dimensions whose unit is one draft: their totals are the same numbers in every table.
_DRAFT_UNIT = frozenset({"week", "municipality", "district", "age_band", "rule", "decision", "follow_up",
                         "cross_district"})
_CSV_SEPARATOR = ";"
_TEMPLATE = "stats.html.j2"

K = TypeVar("K", bound=Hashable)
_CellId = tuple[str, str, str]


# --- suppression -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation(Generic[K]):
    """One additive relation of a published table: ``total == sum(parts)``."""

    total: K
    parts: tuple[K, ...]

    @property
    def members(self) -> tuple[K, ...]:
        return (self.total, *self.parts)


def _sensitive(children: int) -> bool:
    return 1 <= children < MIN_PUBLISHED


def _pick(candidates: Iterable[K], values: Mapping[K, int], totals: set[K] | frozenset[K]) -> K | None:
    """The next cell to hide: the smallest non-zero part; a zero part only when no non-zero part is
    left (a zero partner hides little); a total only when no part is left, because totals are
    shared by several tables and hiding one spreads."""
    ranked = sorted(candidates, key=lambda k: (k in totals, values[k] == 0, values[k], repr(k)))
    return ranked[0] if ranked else None


def _degree_fixpoint(values: Mapping[K, int], hidden: set[K], relations: Sequence[Relation[K]]) -> None:
    """Hide cells until no relation holds exactly one hidden cell (in place)."""
    changed = True
    while changed:
        changed = False
        for rel in relations:
            inside = [m for m in rel.members if m in hidden]
            if len(inside) == 1:
                extra = _pick((m for m in rel.members if m not in hidden), values, frozenset([rel.total]))
                if extra is not None:
                    hidden.add(extra)
                    changed = True


def _determined_cells(hidden: set[K] | frozenset[K], relations: Sequence[Relation[K]]) -> list[K]:
    """The hidden cells whose value the published cells and the relations pin down exactly.

    A hidden cell ``j`` is determined iff the unit vector ``e_j`` lies in the row space of the
    relations restricted to the hidden cells, i.e. iff every solution of the homogeneous system
    has ``x_j = 0``: the null space has a zero ``j``-th coordinate.
    """
    unknown = sorted(hidden, key=repr)
    if not unknown:
        return []
    index = {k: i for i, k in enumerate(unknown)}
    rows = []
    for rel in relations:
        row = np.zeros(len(unknown))
        for m, sign in ((rel.total, -1.0), *((p, 1.0) for p in rel.parts)):
            if m in index:
                row[index[m]] += sign
        if row.any():
            rows.append(row)
    if not rows:
        return []
    matrix = np.vstack(rows)
    _, sing, vt = np.linalg.svd(matrix, full_matrices=True)
    rank = int((sing > 1e-9 * max(1.0, float(sing[0]))).sum())
    null = vt[rank:]
    if null.shape[0] == 0:
        return list(unknown)
    free = np.abs(null).max(axis=0) > 1e-9
    return [k for k, f in zip(unknown, free, strict=True) if not f]


def suppress(values: Mapping[K, int], children: Mapping[K, int], relations: Sequence[Relation[K]]) -> frozenset[K]:
    """The cells to hide: primary (1 to 4 children) and secondary (see the module docstring).

    Parameters
    ----------
    values
        The number each cell would publish (drafts), for every cell of every table.
    children
        The distinct children behind each cell; decides which cells are sensitive.
    relations
        Every "total = sum of parts" that holds between published cells.

    Examples
    --------
    >>> vals = {"a": 3, "b": 7, "c": 9, "t": 19}
    >>> sorted(suppress(vals, vals, [Relation("t", ("a", "b", "c"))]))
    ['a', 'b']
    """
    totals = {rel.total for rel in relations}
    hidden: set[K] = {k for k, n in children.items() if _sensitive(n)}
    neighbours: dict[K, list[Relation[K]]] = {}
    for rel in relations:
        for m in rel.members:
            neighbours.setdefault(m, []).append(rel)
    while True:
        _degree_fixpoint(values, hidden, relations)
        exposed = [k for k in _determined_cells(hidden, relations) if values[k] != 0]
        if not exposed:
            return frozenset(hidden)
        # Hide the smallest published cell next to the exposed one, widening the circle if needed.
        ring: set[K] = {exposed[0]}
        seen: set[K] = set()
        extra = None
        while extra is None and ring - seen:
            seen |= ring
            members = {m for k in ring for rel in neighbours.get(k, []) for m in rel.members}
            extra = _pick((m for m in members if m not in hidden), values, totals)
            ring = members
        if extra is None:  # pragma: no cover - everything around is hidden, yet determined: impossible
            return frozenset(hidden)
        hidden.add(extra)


# --- reading the ledger ------------------------------------------------------------------------


def _as_week(week: str | IsoWeek, which: str) -> IsoWeek:
    if isinstance(week, IsoWeek):
        return week
    try:
        return IsoWeek.parse(str(week))
    except UsageError as exc:
        raise UsageError(f"{which}: {exc}") from None


def _connect(state_dir: Path) -> sqlite3.Connection:
    path = state_dir / LEDGER_FILE
    if not path.is_file():
        raise LedgerError(
            f"no ledger at {path}: is {state_dir} the state folder of a weekly run? "
            "(stats only reads a ledger; it never creates one)"
        )
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def _verify_chain(conn: sqlite3.Connection, state_dir: Path) -> None:
    """What ``socialsearch audit verify`` checks, first: figures are published only from a ledger
    whose audit chain, anchor and bound tables verify (else :class:`~socialsearch.errors.AuditError`)."""
    try:
        report = verify_connection(conn, read_anchor(state_dir))
    except AuditError as exc:
        raise AuditError(f"{exc}. No statistics were written: `socialsearch audit verify --state "
                         f"{state_dir}` must pass before figures are published from this ledger") from None
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"cannot read the ledger for statistics ({exc}); is it a socialsearch ledger?") from None
    if report.entries == 0:
        raise AuditError(f"audit log of {state_dir} is empty: no run was ever recorded there, so there is "
                         "nothing to publish. Is this the state folder of the weekly run?")


def _read(conn: sqlite3.Connection, first: IsoWeek, last: IsoWeek) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The period's drafts (one row each, with the latest decision, the sealed ``statistics``
    and the key id of the run that recorded it) and their signals."""
    period = "FROM drafts AS d WHERE d.week >= ? AND d.week <= ?"
    weeks = (str(first), str(last))
    try:
        draft_rows = conn.execute(
            "SELECT d.draft_id, d.week, d.child, d.municipality, d.age, d.rule, d.previous_drafts, d.statistics, "
            "r.key_id FROM drafts AS d LEFT JOIN runs AS r ON r.run_id = d.run_id WHERE d.week >= ? AND d.week <= ?",
            weeks,
        ).fetchall()
        # Decisions as the audit chain records them (a row edited behind the chain raises, one
        # inserted behind it is ignored), never straight from the reviews table.
        decided = latest_reviews(conn, [row[0] for row in draft_rows])
        signal_rows = conn.execute(
            "SELECT s.draft_id, s.district, s.category, s.registered_at FROM draft_signals AS s "
            f"WHERE s.draft_id IN (SELECT d.draft_id {period})", weeks
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"cannot read the ledger for statistics ({exc}); is it a socialsearch ledger?") from None
    latest = pl.DataFrame(
        [(draft_id, review["decision"]) for draft_id, review in decided.items()],
        schema={"draft_id": pl.String, "decision": pl.String}, orient="row",
    )
    drafts = pl.DataFrame(
        draft_rows,
        schema={"draft_id": pl.String, "week": pl.String, "child": pl.String, "municipality": pl.String,
                "age": pl.Int64, "rule": pl.String, "previous_drafts": pl.String, "statistics": pl.String,
                "key_id": pl.String},
        orient="row",
    ).join(latest, on="draft_id", how="left")
    signals = pl.DataFrame(
        signal_rows,
        schema={"draft_id": pl.String, "district": pl.String, "category": pl.String, "registered_at": pl.String},
        orient="row",
    )
    return drafts, signals


_OPENED = pl.Struct({"ref": pl.String, "age": pl.Int64, "rule": pl.String, "categories": pl.List(pl.String),
                     "districts": pl.List(pl.String), "newest": pl.String})


def _opened(drafts: pl.DataFrame, signals: pl.DataFrame, keys: str | Path | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The drafts and signals with every sealed ``statistics`` value opened with the key
    custodian's keystore ``keys``: its age and rule, and one signal row per (category, district) with
    the newest registration time, in place of the rows the ledger holds (none, or without
    category and district, for a run on a hub extract)."""
    sealed = drafts.filter(pl.col("statistics").is_not_null())
    if sealed.height == 0:
        return drafts.drop("statistics", "key_id"), signals
    if keys is None:
        raise UsageError(
            f"{sealed.height} draft(s) of the period carry their statistics sealed for the key custodian (what a "
            "run on a hub extract records): only the custodian's keystore opens them; give it with --keys")
    keystore = KeyStore.load(keys)
    parts = []
    for (key_id,), group in sealed.group_by("key_id"):
        try:
            blobs = group.get_column("statistics").str.decode("base64")
        except pl.exceptions.PolarsError:
            raise AuditError("a draft's sealed statistics is not base64: the ledger was changed") from None
        values = open_statistics(blobs, keystore.subkey("vault", str(key_id)), group.get_column("draft_id"), _OPENED)
        parts.append(group.select("draft_id").with_columns(values.alias("v")))
    opened = pl.concat(parts).unnest("v").drop("ref")
    drafts = drafts.join(opened.select("draft_id", pl.col("age").alias("_age"), pl.col("rule").alias("_rule")),
                         on="draft_id", how="left").select(
        *(pl.coalesce(f"_{c}", c).alias(c) if c in ("age", "rule") else pl.col(c)
          for c in drafts.columns if c not in ("statistics", "key_id")))
    rows = (
        opened.explode("categories").explode("districts")
        .select("draft_id", pl.col("districts").alias("district"), pl.col("categories").alias("category"),
                pl.col("newest").alias("registered_at"))
    )
    kept = signals.join(sealed.select("draft_id"), on="draft_id", how="anti")
    return drafts, pl.concat([kept, rows.select(kept.columns)])


def _age_band() -> pl.Expr:
    expr: Any = pl.when(pl.col("age").is_null()).then(pl.lit(_UNKNOWN))
    for low, high in _AGE_BANDS:
        expr = expr.when(pl.col("age").is_between(low, high)).then(pl.lit(f"{low:02d}-{high:02d}"))
    result: pl.Expr = expr.otherwise(pl.lit(f"{_AGE_BANDS[-1][1] + 1:02d}+"))
    return result


def _facts(drafts: pl.DataFrame, signals: pl.DataFrame) -> pl.DataFrame:
    """One row per draft with every dimension and the days from the newest signal to week end."""
    geo = geography().municipalities_frame().select("municipality", pl.col("district").alias("child_district"))
    weeks = sorted(set(drafts["week"].to_list()))
    week_ends = pl.DataFrame(
        {"week": weeks, "week_end": [IsoWeek.parse(w).end.astimezone(UTC) for w in weeks]},
        schema={"week": pl.String, "week_end": pl.Datetime("us", "UTC")},
    )
    per_draft = (
        signals.join(drafts.select("draft_id", "municipality"), on="draft_id")
        .join(geo, on="municipality", how="left")
        .with_columns(registered=pl.col("registered_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z",
                                                                           time_zone="UTC", strict=False))
        .group_by("draft_id")
        .agg(
            other=(pl.col("district").is_not_null() & pl.col("child_district").is_not_null()
                   & (pl.col("district") != pl.col("child_district"))).any(),
            known=(pl.col("district").is_not_null() & pl.col("child_district").is_not_null()).any(),
            newest=pl.col("registered").max(),
        )
    )
    return (
        drafts.join(geo.rename({"child_district": "district"}), on="municipality", how="left")
        .join(per_draft, on="draft_id", how="left")
        .join(week_ends, on="week", how="left")
        .with_columns(
            district=pl.col("district").fill_null(_UNKNOWN),
            age_band=_age_band(),
            decision=pl.col("decision").fill_null("undecided"),
            follow_up=pl.when(pl.col("previous_drafts").str.json_decode(pl.List(pl.String)).list.len() > 0)
            .then(pl.lit("follow_up")).otherwise(pl.lit("first")),
            cross_district=pl.when(pl.col("other").fill_null(False)).then(pl.lit("other"))
            .when(pl.col("known").fill_null(False)).then(pl.lit("same")).otherwise(pl.lit(_UNKNOWN)),
            days=(pl.col("week_end") - pl.col("newest")).dt.total_microseconds() / 86_400e6,
        )
        .select("draft_id", "week", "child", "municipality", "district", "age_band", "rule", "decision",
                "follow_up", "cross_district", "days")
    )


# --- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsTable:
    """One published table: rows × columns of counts, with totals; hidden cells are ``None``."""

    name: str
    title: str
    rows: tuple[tuple[str, str], ...]
    """(key, Danish label) of each row; the last row is the total."""
    columns: tuple[tuple[str, str], ...]
    """(key, Danish label) of each column; the last column is the total."""
    cells: Mapping[tuple[str, str], int | None]
    primary: frozenset[tuple[str, str]] = frozenset()
    """The hidden cells that hold 1 to 4 children; every other hidden cell is secondary."""

    def value(self, row: str, column: str) -> int | None:
        return self.cells[(row, column)]

    def shown(self, row: str, column: str) -> int | str:
        """The cell as published: the count, ``"<5"`` (:data:`SUPPRESSED`) or ``"(skjult)"``
        (:data:`SECONDARY`)."""
        v = self.cells[(row, column)]
        if v is not None:
            return v
        return SUPPRESSED if (row, column) in self.primary else SECONDARY

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": [{"key": k, "label": label} for k, label in self.columns],
            "rows": [
                {"key": rk, "label": rl, "cells": {ck: self.shown(rk, ck) for ck, _ in self.columns}}
                for rk, rl in self.rows
            ],
        }


@dataclass(frozen=True)
class StatsReport:
    """What :func:`stats` published: the figures, the tables and the files written."""

    from_week: str
    to_week: str
    by: tuple[str, ...]
    summary: Mapping[str, Any]
    tables: tuple[StatsTable, ...]
    paths: Mapping[str, Path] = field(default_factory=dict)

    def table(self, name: str) -> StatsTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_week": self.from_week,
            "to_week": self.to_week,
            "by": list(self.by),
            "suppression": {
                "marker": SUPPRESSED,
                "secondary_marker": SECONDARY,
                "rule": f"cells of 1 to {MIN_PUBLISHED - 1} distinct children show {SUPPRESSED}; further cells "
                        f"are hidden so that no hidden cell follows from published totals and show {SECONDARY} "
                        "(they may hold any number)",
            },
            "summary": dict(self.summary),
            "tables": [t.to_dict() for t in self.tables],
        }


def _cell_id(dim: str, row: str, col: str) -> _CellId:
    """The shared identity of a cell: a table's total row is the same number in every draft table,
    and a one-column table's rows are the row totals of the two-way table of that dimension."""
    if dim in _DRAFT_UNIT and row == _TOTAL:
        return ("", _TOTAL, col)
    if dim == "decision" and col == _TOTAL:
        return ("", _TOTAL, row)
    return (dim, row, col)


def _counts(frame: pl.DataFrame, keys: list[str]) -> dict[tuple[str, ...], tuple[int, int]]:
    """(drafts, distinct children) per group of ``keys`` (all rows when ``keys`` is empty)."""
    if not keys:
        return {(): (frame.height, frame["child"].n_unique())} if frame.height else {(): (0, 0)}
    grouped = frame.group_by(keys).agg(n=pl.len(), c=pl.col("child").n_unique())
    return {tuple(r[:-2]): (int(r[-2]), int(r[-1])) for r in grouped.iter_rows()}


@dataclass
class _Cells:
    """Every cell of every table before suppression (values = drafts, children = distinct)."""

    values: dict[_CellId, int] = field(default_factory=dict)
    children: dict[_CellId, int] = field(default_factory=dict)
    relations: list[Relation[_CellId]] = field(default_factory=list)

    def put(self, cid: _CellId, drafts: int, children: int) -> None:
        self.values[cid] = drafts
        self.children[cid] = children


def _build(frame: pl.DataFrame, dim: str, rows: list[str], two_way: bool, cells: _Cells) -> None:
    """Add the cells and relations of the table ``dim`` × (decisions + total) or ``dim`` × total."""
    cols = [*_DECISION_COLUMNS, _TOTAL] if two_way else [_TOTAL]
    inner = _counts(frame, [dim, "decision"]) if two_way else {}
    by_row = _counts(frame, [dim])
    by_col = _counts(frame, ["decision"])
    grand = _counts(frame, [])[()]
    for r in rows:
        for c in cols:
            n, ch = (by_row.get((r,), (0, 0)) if c == _TOTAL else inner.get((r, c), (0, 0)))
            cells.put(_cell_id(dim, r, c), n, ch)
    for c in cols:
        n, ch = grand if c == _TOTAL else by_col.get((c,), (0, 0))
        cells.put(_cell_id(dim, _TOTAL, c), n, ch)
    for c in cols:
        cells.relations.append(Relation(_cell_id(dim, _TOTAL, c), tuple(_cell_id(dim, r, c) for r in rows)))
    if two_way:
        for r in [*rows, _TOTAL]:
            parts = tuple(_cell_id(dim, r, c) for c in _DECISION_COLUMNS)
            cells.relations.append(Relation(_cell_id(dim, r, _TOTAL), parts))


def _labels(dim: str) -> dict[str, str]:
    geo = geography()
    if dim == "municipality":
        return {m.code: f"{m.name} ({m.code})" for m in geo.municipalities}
    if dim == "district":
        return {d.code: d.name for d in geo.districts}
    if dim == "category":
        return _category_labels()
    if dim == "decision":
        return dict(_DECISION_DA)
    if dim == "rule":
        return dict(_RULE_DA)
    if dim == "follow_up":
        return dict(_FOLLOW_UP_DA)
    if dim == "cross_district":
        return dict(_CROSS_DA)
    if dim == "age_band":
        return {f"{lo:02d}-{hi:02d}": f"{lo}–{hi} år" for lo, hi in _AGE_BANDS} | {
            f"{_AGE_BANDS[-1][1] + 1:02d}+": f"{_AGE_BANDS[-1][1] + 1} år og derover"}
    return {}


@lru_cache(maxsize=1)
def _category_labels() -> dict[str, str]:
    """Danish labels of the packaged catalogue's categories (the ledger keeps only the ids)."""
    from .catalogue import load_catalogue

    try:
        return {c.id: c.label for c in load_catalogue().categories}
    except Exception:  # a broken packaged catalogue must not stop the statistics; ids still show
        return {}


def _row_keys(frame: pl.DataFrame, dim: str, first: IsoWeek, last: IsoWeek) -> list[str]:
    if dim == "week":
        weeks, w = [], first
        while w <= last:
            weeks.append(str(w))
            w = w.shift(1)
        return weeks
    if dim == "decision":
        return list(_DECISION_COLUMNS)
    if dim in ("follow_up",):
        return ["first", "follow_up"]
    if dim == "cross_district":
        return ["same", "other", _UNKNOWN]
    present = set(frame[dim].drop_nulls().to_list()) if frame.height else set()
    labels = _labels(dim) if dim == "category" else {}  # categories read best in label order
    return sorted(present, key=lambda v: (v == _UNKNOWN, labels.get(v, v), v))


def _publish(dim: str, rows: list[str], two_way: bool, cells: _Cells, hidden: frozenset[_CellId]) -> StatsTable:
    labels = _labels(dim)
    cols = [*_DECISION_COLUMNS, _TOTAL] if two_way else [_TOTAL]
    published: dict[tuple[str, str], int | None] = {}
    primary: set[tuple[str, str]] = set()
    for r in [*rows, _TOTAL]:
        for c in cols:
            cid = _cell_id(dim, r, c)
            published[(r, c)] = None if cid in hidden else cells.values[cid]
            if cid in hidden and _sensitive(cells.children[cid]):
                primary.add((r, c))
    if dim == "week":
        row_labels = [(r, f"uge {IsoWeek.parse(r).week}, {IsoWeek.parse(r).year}") for r in rows]
    else:
        row_labels = [(r, labels.get(r, "ukendt" if r == _UNKNOWN else r)) for r in rows]
    col_labels = [(c, _DECISION_DA[c]) for c in cols] if two_way else [(_TOTAL, "udkast")]
    return StatsTable(
        name=dim,
        title=_DIM_DA[dim],
        rows=(*row_labels, (_TOTAL, "i alt")),
        columns=tuple(col_labels),
        cells=published,
        primary=frozenset(primary),
    )


# --- figures -----------------------------------------------------------------------------------


def _share(part: int | None, whole: int | None) -> float | None:
    """Percentage with one decimal, only when both numbers are published and the whole is not 0."""
    if part is None or whole is None or whole == 0:
        return None
    return round(100.0 * part / whole, 1)


def _summary(facts: pl.DataFrame, tables: Mapping[str, StatsTable]) -> dict[str, Any]:
    week, decision = tables["week"], tables["decision"]
    follow, cross = tables["follow_up"], tables["cross_district"]
    drafts = week.value(_TOTAL, _TOTAL)
    children = facts["child"].n_unique() if facts.height else 0
    timed = facts.filter(pl.col("days").is_not_null())
    timed_children = timed["child"].n_unique() if timed.height else 0
    median = (round(float(timed.select(pl.col("days").median()).item()), 1)
              if timed_children >= MIN_PUBLISHED and drafts is not None else None)
    return {
        "drafts": week.shown(_TOTAL, _TOTAL),
        "children": SUPPRESSED if _sensitive(children) else children,
        "follow_up_pct": _share(follow.value("follow_up", _TOTAL), drafts),
        "approved_pct": _share(decision.value("approve", _TOTAL), drafts),
        "dismissed_pct": _share(decision.value("dismiss", _TOTAL), drafts),
        "undecided_pct": _share(decision.value("undecided", _TOTAL), drafts),
        "cross_district_pct": _share(cross.value("other", _TOTAL), drafts),
        "median_days_to_week_end": median,
    }


_SUMMARY_DA = {
    "drafts": "Udkast i perioden",
    "children": "Forskellige børn i perioden",
    "follow_up_pct": "Andel opfølgninger (barnet havde tidligere udkast), %",
    "approved_pct": "Andel godkendt, %",
    "dismissed_pct": "Andel afvist, %",
    "undecided_pct": "Andel ikke afgjort, %",
    "cross_district_pct": "Andel med hændelser fra en anden politikreds end barnets, %",
    "median_days_to_week_end": "Median antal dage fra nyeste hændelses registrering til ugens slutning",
}


# --- files -------------------------------------------------------------------------------------


def _da_number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}".replace(".", ",")
    return str(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _csv_text(value: str) -> str:
    """A text cell for a spreadsheet: one that starts like a formula (``= + - @``, tab, CR, LF)
    gets a leading ``'``, so Excel and LibreOffice show it instead of evaluating it (OWASP's
    advice against CSV injection). Numbers never pass through here: they are written as numbers.

    Examples
    --------
    >>> _csv_text("=SUM(A1)"), _csv_text("@SUM(A1)"), _csv_text("-3"), _csv_text("Vold")
    ("'=SUM(A1)", "'@SUM(A1)", "'-3", 'Vold')
    """
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_value(value: object) -> str | int:
    """The value column: counts as integers, shares and days with a decimal comma, markers as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) or value is None:
        return _da_number(value)  # "-1,5" stays a number; None is "–", an en dash
    return _csv_text(str(value))


def _csv(report: StatsReport) -> bytes:
    """Long format, one published cell per line; ``;``-separated, UTF-8 with BOM (Danish Excel).

    Every text cell (table, row and column keys and names, markers) goes through
    :func:`_csv_text`; the values are numbers (a negative median of days stays ``-1,5``) or a
    marker."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=_CSV_SEPARATOR, lineterminator="\r\n")
    writer.writerow(["tabel", "række", "rækkenavn", "kolonne", "kolonnenavn", "værdi"])
    for key, value in report.summary.items():
        writer.writerow([*map(_csv_text, ("summary", key, _SUMMARY_DA[key], "", "")), _csv_value(value)])
    for t in report.tables:
        for rk, rl in t.rows:
            for ck, cl in t.columns:
                writer.writerow([*map(_csv_text, (t.name, rk, rl, ck, cl)), _csv_value(t.shown(rk, ck))])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


_SVG_FONT = 'font-family="Segoe UI, Arial, Helvetica, sans-serif" font-size="12"'
_COLOURS = {"approve": "#2e7d32", "dismiss": "#b23b3b", "undecided": "#9e9e9e"}


def _svg_weeks(table: StatsTable) -> markupsafe.Markup:
    """Vertical bars: drafts per week; a hidden week shows "<5" and no bar."""
    rows = table.rows[:-1]
    values = [table.value(r, _TOTAL) for r, _ in rows]
    top = max([v for v in values if v is not None] + [1])
    bar, gap, height, left, bottom, top_margin = 26, 8, 180, 40, 40, 20
    width = left + len(rows) * (bar + gap) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" '
             f'viewBox="0 -{top_margin} {width} {height + bottom + 10 + top_margin}" '
             f'width="{width}" {_SVG_FONT}>',
             f"<title>{markupsafe.escape(table.title)}</title>",
             f'<line x1="{left}" y1="{height + 10}" x2="{width}" y2="{height + 10}" stroke="#555"/>']
    for i, ((key, _), v) in enumerate(zip(rows, values, strict=True)):
        x = left + i * (bar + gap)
        label = markupsafe.escape(str(IsoWeek.parse(key).week))
        parts.append(f'<text x="{x + bar / 2}" y="{height + 26}" text-anchor="middle">{label}</text>')
        if v is None:
            parts.append(f'<text x="{x + bar / 2}" y="{height + 5}" text-anchor="middle" fill="#555">'
                         f"{markupsafe.escape(table.shown(key, _TOTAL))}</text>")
            continue
        h = height * v / top
        parts.append(f'<rect x="{x}" y="{height + 10 - h:.1f}" width="{bar}" height="{h:.1f}" fill="#0b4f8a"/>')
        parts.append(f'<text x="{x + bar / 2}" y="{height + 6 - h:.1f}" text-anchor="middle">{v}</text>')
    parts.append(f'<text x="{left}" y="{height + bottom + 5}">uge</text></svg>')
    return markupsafe.Markup("".join(parts))


def _svg_bars(table: StatsTable) -> markupsafe.Markup:
    """Horizontal bars per row, split by decision where the split is published.

    A row whose total is hidden shows "<5" and no bar; hidden decision cells of a published row
    are drawn together as one grey hatched segment (their sum is the total minus the rest,
    which anyone can compute from the table anyway).
    """
    rows = table.rows[:-1]
    two_way = len(table.columns) > 1
    totals = [table.value(r, _TOTAL) for r, _ in rows]
    top = max([v for v in totals if v is not None] + [1])
    hatch = f"hatch-{table.name}"  # one pattern id per chart: ids must be unique in the page
    # About 7 px per character of a 12 px sans-serif label.
    label_w, plot_w, bar, gap = max(80, 12 + 7 * max((len(label) for _, label in rows), default=0)), 420, 16, 6
    width = label_w + plot_w + 60
    height = len(rows) * (bar + gap) + (34 if two_way else 10)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" {_SVG_FONT}>',
             f"<title>{markupsafe.escape(table.title)}</title>",
             f'<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ddd"/>'
             '<line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/></pattern></defs>']
    for i, ((key, label), total) in enumerate(zip(rows, totals, strict=True)):
        y = 4 + i * (bar + gap)
        parts.append(f'<text x="{label_w - 6}" y="{y + bar - 4}" text-anchor="end">'
                     f"{markupsafe.escape(label)}</text>")
        if total is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + bar - 4}" fill="#555">'
                         f"{markupsafe.escape(table.shown(key, _TOTAL))}</text>")
            continue
        x = float(label_w)
        segments: list[tuple[str, int]] = []
        if two_way:
            known = {c: table.value(key, c) for c in _DECISION_COLUMNS}
            segments = [(c, v) for c, v in known.items() if v]
            rest = total - sum(v for v in known.values() if v is not None)
            if rest:
                segments.append(("hidden", rest))
        elif total:
            segments = [(key if table.name == "decision" else "all", total)]
        for kind, v in segments:
            w = plot_w * v / top
            fill = f"url(#{hatch})" if kind == "hidden" else _COLOURS.get(kind, "#0b4f8a")
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{fill}"/>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar - 4}">{total}</text>')
    if two_way:
        y = height - 12
        x = float(label_w)
        for kind in (*_DECISION_COLUMNS, "hidden"):
            if kind == "hidden":  # drawn line by line: the swatch shows even where patterns are not drawn
                parts.append(_hatched_swatch(x, y - 10))
            else:
                parts.append(f'<rect x="{x:.0f}" y="{y - 10}" width="12" height="12" fill="{_COLOURS[kind]}"/>')
            text = f"skjult ({SUPPRESSED} eller {SECONDARY})" if kind == "hidden" else _DECISION_DA[kind]
            parts.append(f'<text x="{x + 16:.0f}" y="{y}">{markupsafe.escape(text)}</text>')
            x += 110
    parts.append("</svg>")
    return markupsafe.Markup("".join(parts))


def _hatched_swatch(x: float, y: float, size: int = 12) -> str:
    """The legend's square for hidden cells: light grey with dark diagonal stripes, as the bars'
    hatch pattern, drawn with plain lines."""
    lines = "".join(  # the diagonals x' + y' = c of the square, clipped to it
        f'<line x1="{x + max(0, c - size):.0f}" y1="{y + min(size, c):.0f}" x2="{x + min(size, c):.0f}" '
        f'y2="{y + max(0, c - size):.0f}" stroke="#888" stroke-width="2"/>'
        for c in range(3, 2 * size, 4)
    )
    return (f'<g class="hatched-swatch"><rect x="{x:.0f}" y="{y:.0f}" width="{size}" height="{size}" fill="#ddd" '
            f'stroke="#888" stroke-width="1"/>{lines}</g>')


def render_html(report: StatsReport) -> str:
    """The Danish report: main figures, charts and every table; self-contained and printable."""
    first, last = IsoWeek.parse(report.from_week), IsoWeek.parse(report.to_week)
    summary = [(_SUMMARY_DA[k], v if isinstance(v, str) else _da_number(v)) for k, v in report.summary.items()]
    charts = [(t.title, _svg_bars(t)) for t in report.tables if t.name in report.by and t.name != "decision"]
    return with_csp(templates().get_template(_TEMPLATE).render(
        csp=CSP_PLACEHOLDER,
        title=f"Statistik for den ugentlige søgning, uge {first.week} {first.year} – uge {last.week} {last.year}",
        period=f"{first.monday:%d.%m.%Y}–{last.sunday:%d.%m.%Y}",
        summary=summary,
        week_chart=_svg_weeks(report.table("week")),
        decision_chart=_svg_bars(report.table("decision")),
        charts=charts,
        tables=report.tables,
        marker=SUPPRESSED,
        secondary=SECONDARY,
        minimum=MIN_PUBLISHED,
        by=", ".join(_BY_DA[b] for b in report.by) or "ingen",
    ))


# --- the command -------------------------------------------------------------------------------


def stats(
    state_dir: str | Path,
    *,
    from_week: str | IsoWeek,
    to_week: str | IsoWeek,
    out_dir: str | Path,
    by: Sequence[str] = ("municipality",),
    keys_dir: str | Path | None = None,
) -> StatsReport:
    """Publish the council statistics of the weeks ``from_week``..``to_week`` (both included).

    Reads ``STATE/ledger.sqlite`` read-only and writes ``stats.json``, ``stats.csv`` and
    ``stats.html`` to ``out_dir`` (each atomically), after checking what ``audit verify``
    checks. Every count is of drafts; cells with 1 to 4 distinct children show ``"<5"``, the
    cells that would give them away ``"(skjult)"``.

    Parameters
    ----------
    state_dir
        The ``--state`` folder of the weekly runs.
    from_week, to_week
        The period, e.g. ``"2026-W27"`` and ``"2026-W39"`` for a quarter.
    out_dir
        Folder for the three files (created if missing).
    by
        Two-way tables (dimension × decision) to add to the always-present tables of weeks,
        follow-ups, decisions and cross-district drafts: any of :data:`DIMENSIONS`.
    keys_dir
        The key custodian's keystore (with the pseudonymisation secret). A run on a hub extract
        records each draft's statistics values (age, categories, police districts) sealed for
        the custodian, so the statistics are made where the keys are: without ``keys`` such a
        ledger is refused, and a hub keystore cannot open them.

    Raises
    ------
    UsageError
        ``from_week`` after ``to_week``, an unknown dimension, or sealed statistics without ``keys_dir``.
    KeyStoreError
        ``keys_dir`` cannot derive the statistics key (a hub or station-less keystore).
    VaultError
        A sealed statistics value was changed or moved to another draft.
    LedgerError
        No ledger in ``state_dir``, or one that cannot be read.
    AuditError
        The ledger's audit chain, its anchor or a bound table does not verify, or the chain is
        empty (nothing is written).
    """
    first, last = _as_week(from_week, "first week"), _as_week(to_week, "last week")
    if first > last:
        raise UsageError(f"the first week {first} is after the last week {last}: give the earlier week first")
    unknown = [b for b in by if b not in DIMENSIONS]
    if unknown:
        raise UsageError(f"unknown table dimension(s) {', '.join(unknown)}: expected any of {', '.join(DIMENSIONS)}")
    dims = tuple(dict.fromkeys(by))
    state = Path(state_dir)
    conn = _connect(state)
    try:
        conn.execute("BEGIN")  # one snapshot: the chain verified is the ledger read
        _verify_chain(conn, state)
        drafts, signals = _read(conn, first, last)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    drafts, signals = _opened(drafts, signals, keys_dir)
    facts = _facts(drafts, signals)
    pairs = (
        signals.select("draft_id", pl.col("category").fill_null(_UNKNOWN)).unique()
        .join(facts.select("draft_id", "child", "decision"), on="draft_id")
    )

    # The one-column tables always appear; a --by dimension adds its two-way table (× decision),
    # which for cross_district replaces the one-column table (its row totals are the same cells).
    plan = [(d, d == "cross_district" and d in dims) for d in _ALWAYS]
    plan += [(d, True) for d in dims if d not in _ALWAYS]
    cells = _Cells()
    layout: list[tuple[str, list[str], bool]] = []
    for dim, two_way in plan:
        frame = pairs if dim == "category" else facts
        rows = _row_keys(frame, dim, first, last)
        _build(frame, dim, rows, two_way, cells)
        layout.append((dim, rows, two_way))
    if "municipality" in dims and "district" in dims:
        _link_districts(facts, cells)
    relations = list(dict.fromkeys(cells.relations))
    hidden = suppress(cells.values, cells.children, relations)

    published = {dim: _publish(dim, rows, two_way, cells, hidden) for dim, rows, two_way in layout}
    tables = tuple(published.values())
    report = StatsReport(from_week=str(first), to_week=str(last), by=dims, summary=_summary(facts, published),
                         tables=tables)
    out = Path(out_dir)
    paths = {
        "json": write_json_atomic(out / "stats.json", report.to_dict(), sort_keys=False),
        "csv": write_bytes_atomic(out / "stats.csv", _csv(report)),
        "html": write_text_atomic(out / "stats.html", render_html(report)),
    }
    return StatsReport(report.from_week, report.to_week, report.by, report.summary, report.tables, paths)


def _link_districts(facts: pl.DataFrame, cells: _Cells) -> None:
    """A district's cell is the sum of its municipalities' cells: one more relation per cell."""
    pairs = facts.select("municipality", "district").unique().sort("municipality")
    members: dict[str, list[str]] = {}
    for municipality, district in pairs.iter_rows():
        members.setdefault(district, []).append(municipality)
    for district, municipalities in sorted(members.items()):
        for c in (*_DECISION_COLUMNS, _TOTAL):
            cells.relations.append(Relation(
                _cell_id("district", district, c), tuple(_cell_id("municipality", m, c) for m in municipalities)))

