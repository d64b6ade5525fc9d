"""``ledger.runs``: the week policy, the history the search needs, checking and recording a run.

Recording is planned before anything is written: :func:`plan_run` decides, from the rows of
the run and a :class:`WeekState` read from the ledger, whether the run may be recorded and
what it changes. It is a pure function (no connection), so :meth:`Runs.check` is exactly the
planning of :meth:`Runs.record` without its writes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import LedgerError
from ..weeks import IsoWeek
from . import chain, integrity
from ._schema import (
    DRAFT_COLUMNS,
    RUN_COLUMNS,
    SIGNAL_COLUMNS,
    SIGNAL_KEY,
    DraftRow,
    SignalRow,
    constraint_problem,
)
from ._store import Namespace, as_week, json_list, now, safe_id
from .keys import current_key, refuse_other_key

__all__ = [
    "RunPlan",
    "Runs",
    "WeekState",
    "draft_rows",
    "plan_run",
    "signal_rows",
]

_TS = "%Y-%m-%dT%H:%M:%S%.f%:z"

# Columns a run copies from the search result; everything else in the frames is ignored.
_DRAFT_REQUIRED = ("draft_id", "week", "child", "municipality")
_SIGNAL_REQUIRED = ("draft_id", "child", "event_ref", "person", "new")
_RUN_INFO_KEYS = frozenset(
    {
        "run_id", "started_at", "finished_at", "catalogue_digest", "inputs_digest", "input_digests",
        "key_id", "counts", "vault_digest", "software_version",
    }
)


def _frame(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> pl.DataFrame:
    """A frame of String columns from fetched rows."""
    return pl.DataFrame(rows, schema={n: pl.String for n in names}, orient="row")


def _check_columns(frame: pl.DataFrame, required: tuple[str, ...], what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing and frame.height:
        raise LedgerError(f"cannot record the run: the {what} frame lacks column(s) {', '.join(missing)}")


def draft_rows(drafts: pl.DataFrame) -> list[DraftRow]:
    """The drafts as ledger rows, in draft_id order."""
    if drafts.height == 0:
        return []

    def col(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in drafts.columns else pl.lit(None, dtype=dtype).alias(name)

    frame = drafts.select(
        pl.col("draft_id").cast(pl.String),
        pl.col("week").cast(pl.String),
        pl.col("child").cast(pl.String),
        pl.col("municipality").cast(pl.String),
        col("age", pl.Int64()).cast(pl.Int64),
        col("rule", pl.String()).cast(pl.String),
        col("score", pl.Int64()).cast(pl.Int64),
        col("threshold", pl.Int64()).cast(pl.Int64),
        col("n_signals", pl.Int64()).cast(pl.Int64),
        col("n_new_signals", pl.Int64()).cast(pl.Int64),
        col("persons", pl.List(pl.Struct({"pseudonym": pl.String, "link": pl.String}))),
        col("previous_drafts", pl.List(pl.String())),
        col("statistics", pl.Binary()).cast(pl.Binary).bin.encode("base64"),
    ).sort("draft_id")
    # Drafts are a few thousand a week: one small JSON text per draft is fine in Python.
    return [DraftRow._make((*row[:10], json_list(row[10]), json_list(row[11]), row[12]))
            for row in frame.iter_rows()]


def signal_rows(signals: pl.DataFrame) -> list[SignalRow]:
    """The signals as ledger rows, in primary-key order."""
    if signals.height == 0:
        return []

    def col(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in signals.columns else pl.lit(None, dtype=dtype).alias(name)

    registered = col("registered_at", pl.String())
    if "registered_at" in signals.columns and signals.schema["registered_at"].is_temporal():
        registered = pl.col("registered_at").dt.to_string(_TS)
    frame = signals.select(
        *(pl.col(c).cast(pl.String) for c in ("draft_id", "child", "event_ref", "person")),
        *(col(c, pl.String()).cast(pl.String) for c in ("role", "link", "kind", "code", "category")),
        col("weight", pl.Int64()).cast(pl.Int64),
        registered.cast(pl.String).alias("registered_at"),
        pl.col("new").cast(pl.Int64),
        col("resolved_by", pl.String()).cast(pl.String),
        col("match_probability", pl.Float64()).cast(pl.Float64),
        col("district", pl.String()).cast(pl.String),
    ).sort(*SIGNAL_KEY)
    return [SignalRow(*row) for row in frame.iter_rows()]


def _comparable(rows: Sequence[SignalRow]) -> list[SignalRow]:
    return [r.comparable() for r in rows]


def _by_draft(rows: Sequence[SignalRow], draft_ids: set[str]) -> dict[str, list[SignalRow]]:
    """The comparable signal rows of the given drafts, grouped by draft (one pass over the rows)."""
    grouped: dict[str, list[SignalRow]] = {}
    for row in rows:
        if row.draft_id in draft_ids:
            grouped.setdefault(row.draft_id, []).append(row.comparable())
    return grouped


@dataclass(frozen=True)
class WeekState:
    """What the ledger holds that decides whether a run of ``week`` may be recorded.

    ``reviewed`` (drafts of the week with a decision) and ``elsewhere`` (the first of the new
    draft ids already recorded for another week, with that week) are only read when the run's
    drafts differ from the recorded ones (``same`` is False); otherwise they are empty.
    """

    week: IsoWeek
    latest: IsoWeek | None
    seen: bool
    key_id: str | None
    drafts: list[DraftRow]
    signals: list[SignalRow]
    same: bool
    reviewed: frozenset[str]
    elsewhere: tuple[str, str] | None
    recorded_digests: tuple[str | None, str | None] | None
    state_dir: Path


@dataclass(frozen=True)
class RunPlan:
    """What recording a run will do, decided before anything is written."""

    week: str
    draft_rows: list[DraftRow]
    signal_rows: list[SignalRow]
    gone: list[str]
    status: str
    same: bool


def _refuse_earlier(week: IsoWeek, latest: IsoWeek) -> LedgerError:
    return LedgerError(
        f"week {week} is earlier than the latest week in the ledger ({latest}) and was never "
        "run: running it now would change which signals count as new for the weeks after it. "
        f"Run weeks in order: to backfill, use a fresh state folder and run every week from "
        f"the first one up to {latest}; re-running a week already recorded is allowed"
    )


def _check_frames(ws: str, drafts: list[DraftRow], signals: list[SignalRow]) -> None:
    """Refuse frames that are not one week's drafts with their own signals."""
    ids = {r.draft_id for r in drafts}
    if len(ids) != len(drafts):
        raise LedgerError(f"cannot record week {ws}: the drafts frame repeats a draft_id")
    if any(r.week != ws for r in drafts):
        raise LedgerError(f"cannot record week {ws}: the drafts frame holds drafts of another week")
    children = {r.draft_id: r.child for r in drafts}
    if any(children.get(r.draft_id) != r.child for r in signals):
        raise LedgerError(
            f"cannot record week {ws}: a signal belongs to no draft in the drafts frame "
            "(or to another child than its draft)"
        )
    if len({r.key for r in signals}) != len(signals):
        raise LedgerError(f"cannot record week {ws}: the signals frame repeats a signal")


def _refuse_changed_past(state: WeekState, new: list[DraftRow]) -> LedgerError:
    old_by = {r.draft_id: r for r in state.drafts}
    new_by = {r.draft_id: r for r in new}
    added = len(new_by.keys() - old_by.keys())
    removed = len(old_by.keys() - new_by.keys())
    changed = sum(1 for k in new_by.keys() & old_by.keys() if new_by[k].comparable() != old_by[k].comparable())
    signals_note = "" if added or removed or changed else " (their signals differ)"
    recorded = state.recorded_digests
    return LedgerError(
        f"re-running week {state.week} gave different drafts than recorded ({added} added, {removed} "
        f"removed, {changed} changed{signals_note}), but later weeks (up to {state.latest}) already "
        "build on it. The input or the catalogue probably differs from the original run "
        f"(recorded catalogue sha256 {str(recorded[0])[:12] if recorded else '?'}…, inputs "
        f"sha256 {str(recorded[1])[:12] if recorded else '?'}…). Re-run with the original "
        "inputs, or rebuild the state in a fresh state folder, running the weeks in order"
    )


def _refuse_changing_reviewed(state: WeekState, drafts: list[DraftRow], signals: list[SignalRow]) -> None:
    """A draft a municipality already decided on must neither vanish nor change."""
    reviewed = set(state.reviewed)
    if not reviewed:
        return
    new_by = {r.draft_id: r for r in drafts}
    old_by = {r.draft_id: r for r in state.drafts}
    new_signals = _by_draft(signals, reviewed)
    old_signals = _by_draft(state.signals, reviewed)
    dropped = sorted(d for d in reviewed if d not in new_by)
    changed = sorted(
        d for d in reviewed
        if d in new_by and (new_by[d].comparable() != old_by[d].comparable()
                            or new_signals.get(d) != old_signals.get(d))
    )
    if dropped:
        raise LedgerError(
            f"re-running week {state.week} would drop {len(dropped)} draft(s) that were already "
            f"reviewed (first: {safe_id(dropped[0])}); nothing was written. Re-run with the original "
            "inputs, or record the corrected run in a fresh state folder"
        )
    if changed:
        raise LedgerError(
            f"re-running week {state.week} would change {len(changed)} draft(s) that were already "
            f"reviewed (first: {safe_id(changed[0])}): the municipality decided on other content. "
            "Nothing was written. Re-run with the original inputs; a late event is notified as a "
            "follow-up in the next week's run"
        )


def plan_run(
    state: WeekState, drafts: list[DraftRow], signals: list[SignalRow], key_id: str | None
) -> RunPlan:
    """Every check that can refuse recording a run, in one place: a pure function of the run's
    rows and what the ledger holds (``state``). Raises :class:`~socialsearch.errors.LedgerError`
    with the reason; returns what recording will do."""
    ws = str(state.week)
    _check_frames(ws, drafts, signals)
    if key_id is not None:
        refuse_other_key(state.key_id, key_id, state.state_dir)
    if state.latest is not None and state.week < state.latest:
        if not state.seen:
            raise _refuse_earlier(state.week, state.latest)
        if not state.same:
            raise _refuse_changed_past(state, drafts)
    ids = {r.draft_id for r in drafts}
    gone = sorted({r.draft_id for r in state.drafts} - ids)
    if not state.same:
        _refuse_changing_reviewed(state, drafts, signals)
        if state.elsewhere is not None:
            draft_id, week = state.elsewhere
            raise LedgerError(
                f"cannot record week {ws}: draft id {safe_id(draft_id)} is already recorded for "
                f"week {week}; a draft id names one child's draft of one week. Check that the "
                "hub's draft-id key was not replaced, or use a fresh state folder"
            )
    problem = constraint_problem(drafts, signals)
    if problem is not None:
        raise LedgerError(f"cannot record week {ws}: the ledger refused the drafts ({problem})")
    status = "replayed" if state.seen and state.same else ("replaced" if state.seen else "recorded")
    return RunPlan(ws, drafts, signals, gone, status, state.same)


def _run_info(run_info: Mapping[str, Any] | None) -> dict[str, Any]:
    info = dict(run_info or {})
    unknown = sorted(set(info) - _RUN_INFO_KEYS)
    if unknown:
        raise LedgerError(
            f"cannot record the run: unknown run_info key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_RUN_INFO_KEYS))}"
        )
    return info


class Runs(Namespace):
    """Weekly runs: the week policy, the history the search needs, checking and recording."""

    def weeks(self) -> list[str]:
        """The weeks with at least one recorded run, oldest first."""
        return [w for (w,) in self._conn.execute("SELECT DISTINCT week FROM runs ORDER BY week")]

    def latest_week(self) -> IsoWeek | None:
        """The latest week with a recorded run, or ``None`` for an empty ledger."""
        row = self._conn.execute("SELECT max(week) FROM runs").fetchone()
        return None if row[0] is None else IsoWeek.parse(row[0])

    def recorded(self) -> list[dict[str, Any]]:
        """The recorded runs, oldest first."""
        cur = self._conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY rowid")
        names = [d[0] for d in cur.description]
        out = [dict(zip(names, row, strict=True)) for row in cur]
        for run in out:
            run["counts"] = json.loads(run["counts"])
        return out

    def check_week(self, week: IsoWeek | str) -> None:
        """Refuse a *new* week earlier than the latest recorded week (re-runs are fine).

        A cheap early check; :meth:`check` repeats it with everything else.
        """
        w = as_week(week)
        latest = self.latest_week()
        if latest is not None and w < latest and str(w) not in self.weeks():
            raise _refuse_earlier(w, latest)

    def history(
        self, week: IsoWeek | str, *, lookback_weeks: int | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """What earlier drafts contained, for the search of ``week``.

        Returns ``(drafted_pairs, previous_drafts)`` from drafts of weeks strictly before
        ``week``: ``drafted_pairs`` [child, event_ref] (distinct, sorted) and
        ``previous_drafts`` [child, draft_id, week] (sorted by child, week, draft_id).

        With ``lookback_weeks`` (the catalogue's), ``drafted_pairs`` is limited to drafts of
        the weeks in ``week``'s lookback window. That is exact, not an approximation: a draft
        of an earlier week only holds events registered before the window starts, and the
        search ignores those. ``previous_drafts`` always covers every earlier week.
        """
        w = as_week(week)
        since = "0000-W00" if lookback_weeks is None else str(w.shift(-(lookback_weeks - 1)))
        pairs = self._conn.execute(
            "SELECT DISTINCT s.child, s.event_ref FROM draft_signals AS s "
            "JOIN drafts AS d ON d.draft_id = s.draft_id WHERE d.week < ? AND d.week >= ? "
            "ORDER BY s.child, s.event_ref",
            (str(w), since),
        ).fetchall()
        previous = self._conn.execute(
            "SELECT child, draft_id, week FROM drafts WHERE week < ? ORDER BY child, week, draft_id",
            (str(w),),
        ).fetchall()
        return _frame(pairs, ("child", "event_ref")), _frame(previous, ("child", "draft_id", "week"))

    def draft_ids(self, week: IsoWeek | str) -> pl.DataFrame:
        """The draft ids already recorded for ``week``: [child, draft_id], by child.

        A re-run reuses them, so a draft keeps its id across a re-keying (the child's
        pseudonym changes, what was sent does not).
        """
        rows = self._conn.execute(
            "SELECT child, draft_id FROM drafts WHERE week = ? ORDER BY child", (str(as_week(week)),)
        ).fetchall()
        return _frame(rows, ("child", "draft_id"))

    def week_state(self, week: IsoWeek | str, drafts: list[DraftRow], signals: list[SignalRow]) -> WeekState:
        """Read what the ledger holds that decides whether this run of ``week`` may be recorded."""
        conn = self._conn
        w = as_week(week)
        ws = str(w)
        old_drafts = [
            DraftRow(*r) for r in conn.execute(
                f"SELECT {', '.join(DRAFT_COLUMNS)} FROM drafts WHERE week = ? ORDER BY draft_id", (ws,)
            )
        ]
        old_signals = [
            SignalRow(*r) for r in conn.execute(
                f"SELECT {', '.join('s.' + c for c in SIGNAL_COLUMNS)} "
                "FROM draft_signals AS s JOIN drafts AS d ON d.draft_id = s.draft_id WHERE d.week = ? "
                f"ORDER BY {', '.join('s.' + c for c in SIGNAL_KEY)}",
                (ws,),
            )
        ]
        same = ([r.comparable() for r in old_drafts] == [r.comparable() for r in drafts]
                and _comparable(old_signals) == _comparable(signals))
        reviewed: frozenset[str] = frozenset()
        elsewhere = None
        if not same:
            if old_drafts:
                reviewed = frozenset(integrity.latest_reviews(conn, [r.draft_id for r in old_drafts]))
            ids = sorted({r.draft_id for r in drafts})
            if ids:
                row = conn.execute(
                    "SELECT draft_id, week FROM drafts WHERE week != ? AND draft_id IN "
                    "(SELECT value FROM json_each(?)) ORDER BY draft_id LIMIT 1",
                    (ws, json.dumps(ids)),
                ).fetchone()
                elsewhere = None if row is None else (str(row[0]), str(row[1]))
        recorded = conn.execute(
            "SELECT catalogue_digest, inputs_digest FROM runs WHERE week = ? ORDER BY finished_at LIMIT 1", (ws,)
        ).fetchone()
        return WeekState(
            week=w, latest=self.latest_week(), seen=recorded is not None, key_id=current_key(conn),
            drafts=old_drafts, signals=old_signals, same=same, reviewed=reviewed, elsewhere=elsewhere,
            recorded_digests=None if recorded is None else (recorded[0], recorded[1]),
            state_dir=self._store.state_dir,
        )

    def _plan(self, week: IsoWeek | str, drafts: pl.DataFrame, signals: pl.DataFrame, key_id: str | None) -> RunPlan:
        _check_columns(drafts, _DRAFT_REQUIRED, "drafts")
        _check_columns(signals, _SIGNAL_REQUIRED, "signals")
        d_rows, s_rows = draft_rows(drafts), signal_rows(signals)
        return plan_run(self.week_state(week, d_rows, s_rows), d_rows, s_rows, key_id)

    def check(
        self, week: IsoWeek | str, drafts: pl.DataFrame, signals: pl.DataFrame, key_id: str | None = None
    ) -> None:
        """Raise exactly what :meth:`record` would raise for these drafts, and write nothing.

        The weekly run calls it before it writes its first byte (outputs, vault), so a refused
        run changes no file. It is the planning of :meth:`record` (:func:`plan_run`, which
        also checks the rows against the schema's constraints) without the writes.
        """
        self._plan(week, drafts, signals, key_id)

    def record(
        self,
        week: IsoWeek | str,
        drafts: pl.DataFrame,
        signals: pl.DataFrame,
        run_info: Mapping[str, Any] | None = None,
    ) -> str:
        """Record a completed run of ``week`` in ONE transaction; returns the run id.

        The transaction replaces the week's drafts and signals, inserts the run row and
        appends an audit entry (kind ``"run"``) that binds both. Re-running a week that gives
        the same drafts changes no draft row (status ``replayed``); re-running the *latest*
        week with different drafts replaces them (status ``replaced``) unless a draft that was
        already reviewed would vanish or change; re-running an *earlier* week with different
        drafts is refused, and so is a key other than the ledger's.

        Parameters
        ----------
        week
            The week searched.
        drafts, signals
            ``SearchResult.drafts`` and ``SearchResult.signals`` (see the result schema); only
            the known columns are copied.
        run_info
            Optional: ``run_id``, ``started_at``, ``finished_at``, ``catalogue_digest``,
            ``inputs_digest``, ``input_digests`` (name → sha256), ``key_id``, ``counts``
            (name → int), ``vault_digest``, ``software_version``. Unknown keys are refused so
            that nothing unexpected reaches the audit log.
        """
        ws = str(as_week(week))
        info = _run_info(run_info)
        run_id = str(info.get("run_id") or f"{ws}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")
        inputs_digest = info.get("inputs_digest")
        if inputs_digest is None and info.get("input_digests"):
            inputs_digest = hashlib.sha256(chain.canonical_json(dict(info["input_digests"])).encode()).hexdigest()
        key_id = info.get("key_id")
        try:
            with self._store.transaction() as conn:
                plan = self._plan(ws, drafts, signals, key_id)
                counts = {str(k): v for k, v in dict(info.get("counts") or {}).items()}
                counts.setdefault("drafts", len(plan.draft_rows))
                counts.setdefault("signals", len(plan.signal_rows))
                counts.setdefault("new_signals", sum(int(r.new) for r in plan.signal_rows))
                conn.execute("PRAGMA defer_foreign_keys = ON")  # drafts name the run row inserted below
                if not plan.same:
                    _replace_week(conn, plan, run_id)
                digest = integrity.week_digests(conn, [ws])[ws]
                conn.execute(
                    f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                    (run_id, ws, str(info.get("started_at") or self._store.opened_at),
                     str(info.get("finished_at") or now()), plan.status, info.get("catalogue_digest"),
                     inputs_digest, key_id, chain.canonical_json(counts), digest),
                )
                payload: dict[str, Any] = {
                    "run_id": run_id,
                    "week": ws,
                    "status": plan.status,
                    "catalogue_digest": info.get("catalogue_digest"),
                    "inputs_digest": inputs_digest,
                    "key_id": key_id,
                    "counts": counts,
                    "drafts_digest": digest,
                    "row_sha256": integrity.run_hash(conn, run_id),
                }
                for key in ("input_digests", "vault_digest", "software_version"):
                    if key in info:
                        payload[key] = info[key]
                chain.append(conn, "run", payload)
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"cannot record week {ws}: the ledger refused the drafts ({exc})") from None
        self._store.commit_audited()
        return run_id


def _replace_week(conn: sqlite3.Connection, plan: RunPlan, run_id: str) -> None:
    conn.execute(
        "DELETE FROM draft_signals WHERE draft_id IN (SELECT draft_id FROM drafts WHERE week = ?)", (plan.week,)
    )
    conn.executemany("DELETE FROM drafts WHERE draft_id = ?", [(d,) for d in plan.gone])
    conn.executemany(
        f"INSERT INTO drafts ({', '.join(DRAFT_COLUMNS)}, run_id) VALUES ({', '.join('?' * (len(DRAFT_COLUMNS) + 1))}) "
        "ON CONFLICT (draft_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in (*DRAFT_COLUMNS[1:], "run_id")),
        [(*r, run_id) for r in plan.draft_rows],
    )
    conn.executemany(
        f"INSERT INTO draft_signals ({', '.join(SIGNAL_COLUMNS)}) VALUES ({', '.join('?' * len(SIGNAL_COLUMNS))})",
        plan.signal_rows,
    )
