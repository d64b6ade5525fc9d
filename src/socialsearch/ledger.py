"""The ledger: what every weekly run drafted, what the municipalities decided, and the audit chain.

One SQLite database, ``STATE/ledger.sqlite`` (layout: :mod:`socialsearch._ledger_schema`), next
to the lock file ``STATE/lock`` (:mod:`socialsearch._lock`) and the audit anchor
``STATE/audit.head``. A :class:`Ledger` has four small namespaces, each with one job:

==================  ==========================================================================
``ledger.runs``     check and record a week's run; history for the search; recorded draft ids
``ledger.reviews``  record the municipality's decisions; the latest decision per draft
``ledger.drafts``   one draft, or a filtered list
``ledger.keys``     the key the pseudonyms are made with; refuse another; re-key
==================  ==========================================================================

The ledger holds pseudonyms, event references, draft ids, codes and digests only: never a CPR
number, a name or a journal number (those live in the sealed vault). Recording copies only the
columns it knows from the search result, so a stray identifier column cannot leak in.

Integrity: every row that matters is bound to the audit chain (the rules are in
:mod:`socialsearch._integrity`); decisions are read as the chain records them, so a review row
edited with ``sqlite3`` is never trusted.

Durability: ``journal_mode=DELETE`` (a rollback journal) with ``synchronous=FULL`` and
``foreign_keys=ON``. Writers are serialised by the state lock and writes are rare (one
transaction a week plus reviews); the rollback journal keeps the ledger a single file at rest,
which can be backed up with a plain copy while no run holds the lock, and works on file
systems without shared memory. A process killed at any instant leaves either the old or the
new state (SQLite rolls back a hot journal on next open).

Week policy: a *new* week earlier than the latest recorded week is refused (it would change
which signals count as new for the weeks after it); re-running a recorded week is allowed and
idempotent (same drafts, same ids, nothing duplicated).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from . import _integrity, _ledger_schema, audit
from ._lock import LOCK_FILE, lock_state, lock_unless_held, missing_state
from .audit import LEDGER_FILE, AuditEntry, canonical_json
from .contract import contains_cpr_like, decision_problems
from .errors import LedgerError, StateLockedError, UsageError
from .weeks import IsoWeek

__all__ = ["LOCK_FILE", "SCHEMA_VERSION", "Decision", "Ledger", "backup", "lock_state", "require_ledger", "safe_id"]

SCHEMA_VERSION = _ledger_schema.SCHEMA_VERSION
_TS = "%Y-%m-%dT%H:%M:%S%.f%:z"

# Columns a run copies from the search result; everything else in the frames is ignored.
_DRAFT_REQUIRED = ("draft_id", "week", "child", "municipality", "rule", "score", "threshold")
_SIGNAL_REQUIRED = ("draft_id", "child", "event_ref", "person", "role", "link", "kind", "code", "weight", "new")
_RUN_INFO_KEYS = frozenset(
    {
        "run_id", "started_at", "finished_at", "catalogue_digest", "inputs_digest", "input_digests",
        "key_id", "counts", "vault_digest", "software_version",
    }
)


def safe_id(value: str) -> str:
    """Quote an id for a message, unless it looks like a CPR number typed by mistake."""
    return "(an id that looks like a CPR number)" if contains_cpr_like(value) else repr(value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _as_week(week: IsoWeek | str) -> IsoWeek:
    return week if isinstance(week, IsoWeek) else IsoWeek.parse(str(week))


def _frame(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> pl.DataFrame:
    """A frame of String columns from fetched rows."""
    return pl.DataFrame(rows, schema={n: pl.String for n in names}, orient="row")


def _check_columns(frame: pl.DataFrame, required: tuple[str, ...], what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing and frame.height:
        raise LedgerError(f"cannot record the run: the {what} frame lacks column(s) {', '.join(missing)}")


def _json_list(value: Any) -> str:
    """A list as canonical JSON text (sorted keys, no spaces)."""
    items = [] if value is None else list(value)
    return json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _draft_rows(drafts: pl.DataFrame) -> list[tuple[Any, ...]]:
    """The drafts as ledger rows (``DRAFT_COLUMNS``, without run_id), in draft_id order."""
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
        pl.col("rule").cast(pl.String),
        pl.col("score").cast(pl.Int64),
        pl.col("threshold").cast(pl.Int64),
        col("n_signals", pl.Int64()).cast(pl.Int64),
        col("n_new_signals", pl.Int64()).cast(pl.Int64),
        col("persons", pl.List(pl.Struct({"pseudonym": pl.String, "link": pl.String}))),
        col("previous_drafts", pl.List(pl.String())),
    ).sort("draft_id")
    # Drafts are a few thousand a week: one small JSON text per draft is fine in Python.
    return [(*row[:10], _json_list(row[10]), _json_list(row[11])) for row in frame.iter_rows()]


def _signal_rows(signals: pl.DataFrame) -> list[tuple[Any, ...]]:
    """The signals as ledger rows (``SIGNAL_COLUMNS``), in primary-key order."""
    if signals.height == 0:
        return []

    def col(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in signals.columns else pl.lit(None, dtype=dtype).alias(name)

    registered = col("registered_at", pl.String())
    if "registered_at" in signals.columns and signals.schema["registered_at"].is_temporal():
        registered = pl.col("registered_at").dt.to_string(_TS)
    frame = signals.select(
        *(
            pl.col(c).cast(pl.String)
            for c in ("draft_id", "child", "event_ref", "person", "role", "link", "kind", "code")
        ),
        col("category", pl.String()).cast(pl.String),
        pl.col("weight").cast(pl.Int64),
        registered.cast(pl.String).alias("registered_at"),
        pl.col("new").cast(pl.Int64),
        col("resolved_by", pl.String()).cast(pl.String),
        col("match_probability", pl.Float64()).cast(pl.Float64),
        col("district", pl.String()).cast(pl.String),
    ).sort(*_ledger_schema.SIGNAL_KEY)
    return list(frame.iter_rows())


_PROBABILITY = _ledger_schema.SIGNAL_COLUMNS.index("match_probability")


def _comparable(signal_rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Signal rows without the match probability: whether a re-run gives the same drafts.

    The probability is a diagnostic of the fuzzy resolution; it moves with the key and the model
    (a re-run after ``keys rekey``), while the signals, their weights and the drafts do not.
    """
    return [r[:_PROBABILITY] + r[_PROBABILITY + 1:] for r in signal_rows]


def _by_draft(signal_rows: list[tuple[Any, ...]], draft_ids: set[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The comparable signal rows of the given drafts, grouped by draft (one pass over the rows)."""
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in _comparable([r for r in signal_rows if r[0] in draft_ids]):
        grouped.setdefault(row[0], []).append(row)
    return grouped


@dataclass(frozen=True)
class Decision:
    """One decision to record: :meth:`Reviews.record_many` takes a list of these."""

    draft_id: str
    decision: str
    reason: str
    reviewer: str


def check_decision(decision: object, reason: object, reviewer: object) -> list[str]:
    """Every problem with one decision's fields (empty when it may be recorded); the rules are
    :data:`~socialsearch.contract.DECISIONS_SCHEMA`'s (:func:`~socialsearch.contract.decision_problems`).

    Messages describe, never quote, the reason: it may hold what it must not.
    """
    return decision_problems([(decision, reason, reviewer)])[0]


def require_ledger(state_dir: str | os.PathLike[str]) -> Path:
    """The ledger file of ``state_dir``; a :class:`~socialsearch.errors.LedgerError` naming the
    folder when there is none (nothing is created)."""
    state = Path(state_dir)
    path = state / LEDGER_FILE
    if not path.is_file():
        if not state.is_dir():
            raise missing_state(state)
        raise LedgerError(
            f"no ledger at {path}: {state} is not the state folder of a weekly run (nothing was created)"
        )
    return path


def _recover_hot_journal(state: Path, path: Path) -> None:
    """Roll back the journal a killed writer left, so a read-only open can read the ledger.

    A read-only connection cannot roll back a hot journal; a writable one does on its first read.
    While a run holds the lock the journal is its own, not hot: then the reader just reads.
    """
    if not path.with_name(path.name + "-journal").exists():
        return
    try:
        with lock_unless_held(state):
            conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
    except StateLockedError:
        pass


class Ledger:
    """The SQLite ledger of one state folder; open it with :meth:`Ledger.open`.

    Examples
    --------
    The weekly run (:func:`socialsearch.run`) reads the history, searches, asks
    ``runs.check`` whether recording would be refused, writes its outputs, then records:

    >>> import tempfile
    >>> from socialsearch.hub.search import DRAFT_SCHEMA, SIGNAL_SCHEMA
    >>> state = tempfile.mkdtemp()
    >>> week = IsoWeek.parse("2026-W47")
    >>> with lock_state(state), Ledger.open(state) as ledger:
    ...     pairs, previous = ledger.runs.history(week)
    ...     drafts, signals = pl.DataFrame(schema=DRAFT_SCHEMA), pl.DataFrame(schema=SIGNAL_SCHEMA)
    ...     ledger.runs.check(week, drafts, signals, "k1a2b3c4d")
    ...     run_id = ledger.runs.record(week, drafts, signals, {"key_id": "k1a2b3c4d"})
    ...     (pairs.height, str(ledger.runs.latest_week()))
    (0, '2026-W47')
    """

    def __init__(self, conn: sqlite3.Connection, state_dir: Path, *, readonly: bool = False) -> None:
        self._conn = conn
        self.state_dir = state_dir
        self.readonly = readonly
        self.opened_at = _now()
        self.runs = Runs(self)
        self.reviews = Reviews(self)
        self.drafts = Drafts(self)
        self.keys = Keys(self)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def open(
        cls, state_dir: str | os.PathLike[str], *, readonly: bool = False, create: bool = True
    ) -> Iterator[Ledger]:
        """Open the ledger of ``state_dir`` (creating it and its schema if needed and allowed).

        A writable ledger needs the state lock: it uses the one this process already holds
        through :func:`lock_state` (as the weekly run does), or else takes it for the ``with``
        block. ``create=False`` (review, re-identification, listing) and ``readonly=True``
        refuse a missing ledger with a :class:`~socialsearch.errors.LedgerError` naming the
        folder, and create nothing. ``readonly=True`` takes no lock and refuses every write.
        The lock belongs to the process: do not write to one state folder from two threads.
        """
        state = Path(state_dir)
        path = state / LEDGER_FILE
        if readonly or not create:
            require_ledger(state)
        if readonly:
            _recover_hot_journal(state, path)
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None, timeout=30.0)
            try:
                ledger = cls(conn, state, readonly=True)
                _ledger_schema.check_version(conn, path)
                yield ledger
            finally:
                conn.close()
            return
        state.mkdir(parents=True, exist_ok=True)
        with lock_unless_held(state):
            created = not path.exists()
            conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            try:
                if created:
                    os.chmod(path, 0o600)
                conn.execute("PRAGMA journal_mode=DELETE")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                ledger = cls(conn, state)
                ledger._ensure_schema()
                audit.sync_anchor(conn, state)
                yield ledger
            finally:
                conn.close()

    def _ensure_schema(self) -> None:
        # Look first without a write transaction: opening an existing ledger changes no byte.
        path = self.state_dir / LEDGER_FILE
        if not _ledger_schema.exists(self._conn):
            with self._transaction() as conn:
                if not _ledger_schema.exists(conn):
                    _ledger_schema.create(conn)
        _ledger_schema.check_version(self._conn, path)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""
        if self.readonly:
            raise LedgerError("this ledger was opened read-only")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _commit_audited(self) -> None:
        """After a commit that appended audit entries: move the anchor to the new head."""
        seq, digest = audit.head(self._conn)
        audit.write_anchor(self.state_dir, seq, digest)

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection (for reading; write through the namespaces)."""
        return self._conn

    # -- audit -----------------------------------------------------------------------------

    def append_audit(self, kind: str, payload: Mapping[str, Any]) -> AuditEntry:
        """Append one audit entry in its own transaction (e.g. ``"reidentify"``).

        The payload must not hold raw CPR numbers, names or journal numbers: pass pseudonyms,
        draft ids, key ids and counts.
        """
        with self._transaction() as conn:
            entry = audit.append(conn, kind, dict(payload))
        self._commit_audited()
        return entry

    def audit_entries(self, kind: str | None = None) -> list[AuditEntry]:
        """The audit entries in order (optionally of one kind)."""
        return audit.entries(self._conn, kind=kind)

    def verify(self) -> audit.VerifyReport:
        """Check the chain, its anchor and every bound table (see :func:`socialsearch.audit_verify`)."""
        return audit.verify_connection(self._conn, audit.read_anchor(self.state_dir))


class _Namespace:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._ledger.connection


@dataclass(frozen=True)
class _Plan:
    """What recording a run will do, decided before anything is written."""

    week: str
    draft_rows: list[tuple[Any, ...]]
    signal_rows: list[tuple[Any, ...]]
    gone: list[str]
    status: str
    same: bool


class Runs(_Namespace):
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
        cur = self._conn.execute(
            f"SELECT {', '.join(_ledger_schema.RUN_COLUMNS)} FROM runs ORDER BY rowid"
        )
        names = [d[0] for d in cur.description]
        out = [dict(zip(names, row, strict=True)) for row in cur]
        for run in out:
            run["counts"] = json.loads(run["counts"])
        return out

    def _refuse_earlier(self, week: IsoWeek, latest: IsoWeek) -> LedgerError:
        return LedgerError(
            f"week {week} is earlier than the latest week in the ledger ({latest}) and was never "
            "run: running it now would change which signals count as new for the weeks after it. "
            f"Run weeks in order: to backfill, use a fresh state folder and run every week from "
            f"the first one up to {latest}; re-running a week already recorded is allowed"
        )

    def check_week(self, week: IsoWeek | str) -> None:
        """Refuse a *new* week earlier than the latest recorded week (re-runs are fine).

        A cheap early check; :meth:`check` repeats it with everything else.
        """
        w = _as_week(week)
        latest = self.latest_week()
        if latest is not None and w < latest and str(w) not in self.weeks():
            raise self._refuse_earlier(w, latest)

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
        w = _as_week(week)
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
            "SELECT child, draft_id FROM drafts WHERE week = ? ORDER BY child", (str(_as_week(week)),)
        ).fetchall()
        return _frame(rows, ("child", "draft_id"))

    def _recorded(self, week: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        drafts = self._conn.execute(
            f"SELECT {', '.join(_ledger_schema.DRAFT_COLUMNS)} FROM drafts WHERE week = ? ORDER BY draft_id",
            (week,),
        ).fetchall()
        signals = self._conn.execute(
            f"SELECT {', '.join('s.' + c for c in _ledger_schema.SIGNAL_COLUMNS)} "
            "FROM draft_signals AS s JOIN drafts AS d ON d.draft_id = s.draft_id WHERE d.week = ? "
            f"ORDER BY {', '.join('s.' + c for c in _ledger_schema.SIGNAL_KEY)}",
            (week,),
        ).fetchall()
        return drafts, signals

    def _plan(self, week: IsoWeek | str, drafts: pl.DataFrame, signals: pl.DataFrame, key_id: str | None) -> _Plan:
        """Every check that can refuse a run, in one place; nothing is written."""
        w = _as_week(week)
        ws = str(w)
        _check_columns(drafts, _DRAFT_REQUIRED, "drafts")
        _check_columns(signals, _SIGNAL_REQUIRED, "signals")
        draft_rows = _draft_rows(drafts)
        signal_rows = _signal_rows(signals)
        ids = {r[0] for r in draft_rows}
        if len(ids) != len(draft_rows):
            raise LedgerError(f"cannot record week {ws}: the drafts frame repeats a draft_id")
        if any(r[1] != ws for r in draft_rows):
            raise LedgerError(f"cannot record week {ws}: the drafts frame holds drafts of another week")
        children = {r[0]: r[2] for r in draft_rows}
        if any(children.get(r[0]) != r[1] for r in signal_rows):
            raise LedgerError(
                f"cannot record week {ws}: a signal belongs to no draft in the drafts frame "
                "(or to another child than its draft)"
            )
        if len({r[:1] + r[2:8] for r in signal_rows}) != len(signal_rows):
            raise LedgerError(f"cannot record week {ws}: the signals frame repeats a signal")
        if key_id is not None:
            self._ledger.keys.check(key_id)
        latest = self.latest_week()
        seen = self._conn.execute("SELECT 1 FROM runs WHERE week = ? LIMIT 1", (ws,)).fetchone() is not None
        old_drafts, old_signals = self._recorded(ws)
        same = old_drafts == draft_rows and _comparable(old_signals) == _comparable(signal_rows)
        if latest is not None and w < latest:
            if not seen:
                raise self._refuse_earlier(w, latest)
            if not same:
                raise self._refuse_changed_past(ws, latest, old_drafts, draft_rows)
        gone = sorted({r[0] for r in old_drafts} - ids)
        if not same:
            self._refuse_changing_reviewed(ws, old_drafts, old_signals, draft_rows, signal_rows)
            if ids:
                marks = ",".join("?" * len(ids))
                elsewhere = self._conn.execute(
                    f"SELECT draft_id, week FROM drafts WHERE week != ? AND draft_id IN ({marks}) ORDER BY draft_id",
                    (ws, *sorted(ids)),
                ).fetchone()
                if elsewhere is not None:
                    raise LedgerError(
                        f"cannot record week {ws}: draft id {safe_id(elsewhere[0])} is already recorded for "
                        f"week {elsewhere[1]}; a draft id names one child's draft of one week. Check that the "
                        "hub's draft-id key was not replaced, or use a fresh state folder"
                    )
        status = "replayed" if seen and same else ("replaced" if seen else "recorded")
        return _Plan(ws, draft_rows, signal_rows, gone, status, same)

    def _refuse_changed_past(
        self, week: str, latest: IsoWeek, old: list[tuple[Any, ...]], new: list[tuple[Any, ...]]
    ) -> LedgerError:
        old_by = {r[0]: r for r in old}
        new_by = {r[0]: r for r in new}
        added = len(new_by.keys() - old_by.keys())
        removed = len(old_by.keys() - new_by.keys())
        changed = sum(1 for k in new_by.keys() & old_by.keys() if new_by[k] != old_by[k])
        signals_note = "" if added or removed or changed else " (their signals differ)"
        recorded = self._conn.execute(
            "SELECT catalogue_digest, inputs_digest FROM runs WHERE week = ? ORDER BY finished_at LIMIT 1",
            (week,),
        ).fetchone()
        return LedgerError(
            f"re-running week {week} gave different drafts than recorded ({added} added, {removed} "
            f"removed, {changed} changed{signals_note}), but later weeks (up to {latest}) already "
            "build on it. The input or the catalogue probably differs from the original run "
            f"(recorded catalogue sha256 {str(recorded[0])[:12] if recorded else '?'}…, inputs "
            f"sha256 {str(recorded[1])[:12] if recorded else '?'}…). Re-run with the original "
            "inputs, or rebuild the state in a fresh state folder, running the weeks in order"
        )

    def _refuse_changing_reviewed(
        self,
        week: str,
        old_drafts: list[tuple[Any, ...]],
        old_signals: list[tuple[Any, ...]],
        draft_rows: list[tuple[Any, ...]],
        signal_rows: list[tuple[Any, ...]],
    ) -> None:
        """A draft a municipality already decided on must neither vanish nor change."""
        reviewed = set(self._ledger.reviews.latest([r[0] for r in old_drafts])) if old_drafts else set()
        if not reviewed:
            return
        new_by = {r[0]: r for r in draft_rows}
        old_by = {r[0]: r for r in old_drafts}
        new_signals = _by_draft(signal_rows, reviewed)
        old_signals_by = _by_draft(old_signals, reviewed)
        dropped = sorted(d for d in reviewed if d not in new_by)
        changed = sorted(
            d for d in reviewed
            if d in new_by and (new_by[d] != old_by[d] or new_signals.get(d) != old_signals_by.get(d))
        )
        if dropped:
            raise LedgerError(
                f"re-running week {week} would drop {len(dropped)} draft(s) that were already "
                f"reviewed (first: {safe_id(dropped[0])}); nothing was written. Re-run with the original "
                "inputs, or record the corrected run in a fresh state folder"
            )
        if changed:
            raise LedgerError(
                f"re-running week {week} would change {len(changed)} draft(s) that were already "
                f"reviewed (first: {safe_id(changed[0])}): the municipality decided on other content. "
                "Nothing was written. Re-run with the original inputs; a late event is notified as a "
                "follow-up in the next week's run"
            )

    def check(
        self, week: IsoWeek | str, drafts: pl.DataFrame, signals: pl.DataFrame, key_id: str | None = None
    ) -> None:
        """Raise exactly what :meth:`record` would raise for these drafts, and write nothing.

        The weekly run calls it before it writes its first byte (outputs, vault), so a refused
        run changes no file. It performs the recording in a transaction it always rolls back,
        so even a constraint of the schema is found here.
        """
        class _DryRun(Exception):
            pass

        try:
            self._record(week, drafts, signals, {"key_id": key_id} if key_id else {}, dry_run=_DryRun)
        except _DryRun:
            return

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
        return self._record(week, drafts, signals, run_info or {}, dry_run=None)

    def _record(
        self,
        week: IsoWeek | str,
        drafts: pl.DataFrame,
        signals: pl.DataFrame,
        run_info: Mapping[str, Any],
        *,
        dry_run: type[Exception] | None,
    ) -> str:
        ws = str(_as_week(week))
        info = dict(run_info)
        unknown = sorted(set(info) - _RUN_INFO_KEYS)
        if unknown:
            raise LedgerError(
                f"cannot record the run: unknown run_info key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_RUN_INFO_KEYS))}"
            )
        run_id = str(info.get("run_id") or f"{ws}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")
        inputs_digest = info.get("inputs_digest")
        if inputs_digest is None and info.get("input_digests"):
            inputs_digest = hashlib.sha256(canonical_json(dict(info["input_digests"])).encode()).hexdigest()
        key_id = info.get("key_id")
        try:
            with self._ledger._transaction() as conn:
                plan = self._plan(ws, drafts, signals, key_id)
                counts = {str(k): v for k, v in dict(info.get("counts") or {}).items()}
                counts.setdefault("drafts", len(plan.draft_rows))
                counts.setdefault("signals", len(plan.signal_rows))
                counts.setdefault("new_signals", sum(int(r[11]) for r in plan.signal_rows))
                conn.execute("PRAGMA defer_foreign_keys = ON")  # drafts name the run row inserted below
                if not plan.same:
                    self._replace_week(plan, run_id)
                digest = _integrity.week_digests(conn, [ws])[ws]
                conn.execute(
                    f"INSERT INTO runs ({', '.join(_ledger_schema.RUN_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, ws, str(info.get("started_at") or self._ledger.opened_at),
                     str(info.get("finished_at") or _now()), plan.status, info.get("catalogue_digest"),
                     inputs_digest, key_id, canonical_json(counts), digest),
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
                    "row_sha256": _integrity.run_hash(conn, run_id),
                }
                for key in ("input_digests", "vault_digest", "software_version"):
                    if key in info:
                        payload[key] = info[key]
                audit.append(conn, "run", payload)
                if dry_run is not None:
                    raise dry_run
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"cannot record week {ws}: the ledger refused the drafts ({exc})") from None
        self._ledger._commit_audited()
        return run_id

    def _replace_week(self, plan: _Plan, run_id: str) -> None:
        conn = self._conn
        conn.execute(
            "DELETE FROM draft_signals WHERE draft_id IN (SELECT draft_id FROM drafts WHERE week = ?)", (plan.week,)
        )
        conn.executemany("DELETE FROM drafts WHERE draft_id = ?", [(d,) for d in plan.gone])
        columns = _ledger_schema.DRAFT_COLUMNS
        conn.executemany(
            f"INSERT INTO drafts ({', '.join(columns)}, run_id) VALUES ({', '.join('?' * (len(columns) + 1))}) "
            "ON CONFLICT (draft_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in (*columns[1:], "run_id")),
            [(*r, run_id) for r in plan.draft_rows],
        )
        signal_columns = _ledger_schema.SIGNAL_COLUMNS
        conn.executemany(
            f"INSERT INTO draft_signals ({', '.join(signal_columns)}) VALUES ({', '.join('?' * len(signal_columns))})",
            plan.signal_rows,
        )


class Reviews(_Namespace):
    """The municipality's decisions: recorded with an audit entry each, read as the chain says."""

    def record(
        self, draft_id: str, decision: str, reason: str, reviewer: str, *, source: str | None = None
    ) -> dict[str, Any]:
        """Record a decision on a draft and append an audit entry (kind ``review``).

        The reason is kept in ``reviews``; the audit entry holds the row's sha256, so free
        text never enters the append-only log. A reason that could hold a CPR number
        (:func:`~socialsearch.contract.contains_cpr_like`) is refused; ``reviewer`` is the
        reviewer's initials (2–6 capital letters); ``source`` says where the decision came from (an
        imported file's sha256).
        """
        [recorded] = self.record_many([Decision(draft_id, decision, reason, reviewer)], source=source)
        return recorded

    def record_many(self, decisions: Sequence[Decision], *, source: str | None = None) -> list[dict[str, Any]]:
        """Record several decisions all-or-nothing, in one transaction (one audit entry each)."""
        checked = decision_problems([(d.decision, d.reason, d.reviewer) for d in decisions])
        for d, problems in zip(decisions, checked, strict=True):
            if problems:
                raise UsageError(f"cannot record the decision on draft {safe_id(d.draft_id)}: " + "; ".join(problems))
        decided_at = _now()
        out = []
        with self._ledger._transaction() as conn:
            for d in decisions:
                draft = self._ledger.drafts._row(d.draft_id)
                reason, reviewer = d.reason.strip(), d.reviewer.strip()
                cur = conn.execute(
                    "INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at, source) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (d.draft_id, d.decision, reason, reviewer, decided_at, source),
                )
                review_id = int(cur.lastrowid or 0)
                entry = audit.append(conn, "review", {
                    "review_id": review_id,
                    "draft_id": d.draft_id,
                    "week": draft["week"],
                    "municipality": draft["municipality"],
                    "decision": d.decision,
                    "reviewer": reviewer,
                    "reason_sha256": hashlib.sha256(reason.encode("utf-8")).hexdigest(),
                    "source": source,
                    "row_sha256": _integrity.review_hash(conn, review_id),
                }, at=decided_at)
                out.append({"draft_id": d.draft_id, "decision": d.decision, "reason": reason, "reviewer": reviewer,
                            "decided_at": decided_at, "source": source, "audit_seq": entry.seq})
        self._ledger._commit_audited()
        return out

    def latest(self, draft_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """draft_id → the latest decision (``decision``, ``reason``, ``reviewer``, ``decided_at``).

        Read as the AUDIT CHAIN records it: the chain's latest review entry per draft, whose
        row must still hash to what the entry holds (else
        :class:`~socialsearch.errors.AuditError`). A row inserted behind the chain is ignored.
        Drafts without a decision are absent.
        """
        return {
            draft_id: {k: review[k] for k in ("decision", "reason", "reviewer", "decided_at")}
            for draft_id, review in _integrity.latest_reviews(self._conn, draft_ids).items()
        }


class Drafts(_Namespace):
    """Reading drafts: one, with its events and decision, or a filtered list."""

    def _row(self, draft_id: str) -> dict[str, Any]:
        cur = self._conn.execute(
            "SELECT draft_id, week, municipality, child, age, rule, score, threshold, persons, "
            "previous_drafts, run_id FROM drafts WHERE draft_id = ?",
            (draft_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise LedgerError(
                f"unknown draft {safe_id(draft_id)}: no such draft in the ledger at {self._ledger.state_dir}; "
                f"list them with `socialsearch drafts list --state {self._ledger.state_dir}`"
            )
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def get(self, draft_id: str) -> dict[str, Any]:
        """One draft as recorded: week, municipality, child pseudonym, persons, event refs, decision.

        ``decision`` is the latest decision as the audit chain records it (``"approve"``,
        ``"dismiss"``) or ``None``; ``review`` holds it with its reason, reviewer and time.
        """
        draft = self._row(draft_id)
        refs = [
            r for (r,) in self._conn.execute(
                "SELECT DISTINCT event_ref FROM draft_signals WHERE draft_id = ? ORDER BY event_ref", (draft_id,)
            )
        ]
        review = self._ledger.reviews.latest([draft_id]).get(draft_id)
        return {
            **draft,
            "persons": json.loads(draft["persons"]),
            "previous_drafts": json.loads(draft["previous_drafts"]),
            "event_refs": refs,
            "decision": None if review is None else review["decision"],
            "review": review,
        }

    def list(
        self, *, week: str | None = None, municipality: str | None = None, pending: bool = False,
        draft_ids: Iterable[str] | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """The drafts, by week, municipality and id: draft_id, week, municipality, rule, score,
        age, decision, reviewer, decided_at (the last three ``None`` while undecided).

        ``pending=True`` keeps only drafts without a decision; ``draft_ids`` only those drafts.
        """
        where: builtins.list[str] = []
        args: builtins.list[str] = []
        if week is not None:
            where.append("week = ?")
            args.append(str(_as_week(week)))
        if municipality is not None:
            where.append("municipality = ?")
            args.append(municipality)
        if draft_ids is not None:
            where.append("draft_id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(sorted(set(draft_ids))))
        sql = "SELECT draft_id, week, municipality, rule, score, age FROM drafts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._conn.execute(sql + " ORDER BY week, municipality, draft_id", args).fetchall()
        unfiltered = week is None and municipality is None and draft_ids is None
        decisions = self._ledger.reviews.latest(None if unfiltered else [r[0] for r in rows]) if rows else {}
        out: builtins.list[dict[str, Any]] = []
        for draft_id, w, kommune, rule, score, age in rows:
            review = decisions.get(draft_id)
            if pending and review is not None:
                continue
            out.append({
                "draft_id": draft_id, "week": w, "municipality": kommune, "rule": rule, "score": score,
                "age": age, "decision": review and review["decision"], "reviewer": review and review["reviewer"],
                "decided_at": review and review["decided_at"],
            })
        return out


class Keys(_Namespace):
    """The key the ledger's pseudonyms are made with, and re-keying after a rotation."""

    def id(self) -> str | None:
        """The key of the latest run or re-keying, or ``None`` for an empty ledger."""
        row = self._conn.execute(
            "SELECT kind, payload FROM audit WHERE kind IN ('run', 'rekey') ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        data = json.loads(row[1])
        key: str | None = data.get("key_id") if row[0] == "run" else data.get("to_key_id")
        return key

    def check(self, key_id: str) -> None:
        """Refuse a run whose pseudonyms are made with another key than the ledger's.

        Otherwise every child and event already notified would look new under the new key.
        """
        current = self.id()
        if current is not None and current != key_id:
            state = self._ledger.state_dir
            raise LedgerError(
                f"the extracts are pseudonymised with key {key_id}, but the ledger holds pseudonyms "
                f"of key {current}: the key custodian must first run "
                f"`socialsearch keys rekey --keys KEYS --state {state} --to {key_id}` "
                "(see docs/privacy.md, Rotation). Nothing was written"
            )

    def rekey(self, persons: Mapping[str, str], events: Mapping[str, str],
              payload: Mapping[str, Any]) -> dict[str, int]:
        """Replace old pseudonyms and event references by new ones, in ONE transaction with an
        audit entry (kind ``"rekey"``: ``payload``, the counts, and each week's new digest).

        ``persons`` and ``events`` map old → new values. Values not in a map are left as they
        are, so running the same re-keying twice changes nothing the second time. Draft ids
        stay: they name what was sent.
        """
        with self._ledger._transaction() as conn:
            conn.execute("PRAGMA defer_foreign_keys = ON")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS _pmap (old TEXT PRIMARY KEY, new TEXT NOT NULL)")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS _emap (old TEXT PRIMARY KEY, new TEXT NOT NULL)")
            conn.execute("DELETE FROM _pmap")
            conn.execute("DELETE FROM _emap")
            conn.executemany("INSERT INTO _pmap VALUES (?, ?)", sorted(persons.items()))
            conn.executemany("INSERT INTO _emap VALUES (?, ?)", sorted(events.items()))
            counts = {
                "drafts": conn.execute(
                    "UPDATE drafts SET child = _pmap.new FROM _pmap WHERE drafts.child = _pmap.old").rowcount,
                "signal_children": conn.execute(
                    "UPDATE draft_signals SET child = _pmap.new FROM _pmap WHERE draft_signals.child = _pmap.old"
                ).rowcount,
                "signal_persons": conn.execute(
                    "UPDATE draft_signals SET person = _pmap.new FROM _pmap WHERE draft_signals.person = _pmap.old"
                ).rowcount,
                "signal_events": conn.execute(
                    "UPDATE draft_signals SET event_ref = _emap.new FROM _emap "
                    "WHERE draft_signals.event_ref = _emap.old").rowcount,
            }
            # drafts.persons is a JSON list of {pseudonym, link} sorted as the search sorts it (by
            # pseudonym, then link): rewrite and re-sort it, so a re-run under the new key matches.
            # Only drafts with a mapped person are touched (a few thousand at most).
            rows = conn.execute(
                "SELECT draft_id, persons FROM drafts WHERE EXISTS (SELECT 1 FROM json_each(drafts.persons) AS e "
                "JOIN _pmap AS m ON m.old = json_extract(e.value, '$.pseudonym'))"
            ).fetchall()
            rewritten = []
            for draft_id, text in rows:
                people = [{**p, "pseudonym": persons.get(p["pseudonym"], p["pseudonym"])} for p in json.loads(text)]
                rewritten.append((_json_list(sorted(people, key=lambda p: (p["pseudonym"], p["link"]))), draft_id))
            conn.executemany("UPDATE drafts SET persons = ? WHERE draft_id = ?", rewritten)
            counts["draft_persons"] = len(rewritten)
            conn.execute("DROP TABLE _pmap")
            conn.execute("DROP TABLE _emap")
            audit.append(conn, "rekey", {**dict(payload), "counts": counts, "weeks": _integrity.week_digests(conn)})
        self._ledger._commit_audited()
        return counts


def backup(state_dir: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """Copy the ledger consistently to ``destination`` (SQLite's online backup), under the lock.

    Back up ``audit.head`` and ``vault/`` with it; see ``docs/operations.md``.
    """
    state = Path(state_dir)
    dest = Path(destination)
    if not (state / LEDGER_FILE).is_file():
        raise LedgerError(f"no ledger at {state / LEDGER_FILE}: nothing to back up")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A writable open (under the lock) first rolls back a hot journal left by a killed run.
    with Ledger.open(state, create=False) as ledger:
        target = sqlite3.connect(dest)
        try:
            ledger.connection.backup(target)
        finally:
            target.close()
    return dest
