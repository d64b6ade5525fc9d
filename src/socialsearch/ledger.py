"""The ledger: what every weekly run drafted, what the municipalities decided, and the audit chain.

One SQLite database, ``STATE/ledger.sqlite``, next to the lock file ``STATE/lock`` and the audit
anchor ``STATE/audit.head``:

=================  =====================================================================
table              holds
=================  =====================================================================
``runs``           one row per completed run (append-only): week, times, digests, key id
``drafts``         one row per draft; ``UNIQUE (child, week)``
``draft_signals``  the (child, event, person, role, link, code) rows of each draft
``reviews``        the municipality's decisions (append-only; the latest one counts)
``audit``          the hash-chained audit log (see :mod:`socialsearch.audit`)
``schema_version`` the version of this layout
=================  =====================================================================

The ledger holds pseudonyms, event references, draft ids, codes and digests only: never a CPR
number, a name or a journal number (those live in the sealed vault). :meth:`Ledger.record_run`
copies only the columns it knows from the search result, so a stray identifier column in a
frame cannot leak in.

Durability: ``journal_mode=DELETE`` (a rollback journal) with ``synchronous=FULL`` and
``foreign_keys=ON``. WAL would let readers run beside a writer, but writers are serialised by
the state lock anyway and writes are rare (one transaction a week plus reviews); the rollback
journal keeps the ledger a single file at rest, which can be backed up with a plain copy while
no run holds the lock and works on file systems without shared memory (WAL does not work over
network file systems). Every commit is durable when ``COMMIT`` returns; a process killed at any
instant leaves either the old or the new state (SQLite rolls back a hot journal on next open).

Ordering rule: a *new* week earlier than the latest recorded week is refused (it would change
which signals count as new for the weeks after it); re-running a recorded week is allowed and
idempotent (same drafts, same ids, nothing duplicated).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from . import audit
from .audit import LEDGER_FILE, AuditEntry, canonical_json
from .errors import LedgerError, StateLockedError, UsageError
from .weeks import IsoWeek

__all__ = ["LOCK_FILE", "SCHEMA_VERSION", "Ledger", "backup", "lock_state"]

LOCK_FILE = "lock"
SCHEMA_VERSION = 1
DECISIONS = ("approve", "dismiss")
_TS = "%Y-%m-%dT%H:%M:%S%.f%:z"
# A CPR-looking token (DDMMYY[-]SSSS standing alone); used to keep identifiers out of messages
# and out of free-text review reasons.
_CPR_LIKE = re.compile(r"(?<![0-9A-Za-z])[0-3]\d[01]\d\d\d-?\d{4}(?![0-9A-Za-z])")

# Columns record_run copies from the search result; everything else in the frames is ignored.
_DRAFT_REQUIRED = ("draft_id", "week", "child", "municipality", "rule", "score", "threshold")
_SIGNAL_REQUIRED = ("draft_id", "child", "event_ref", "person", "role", "link", "kind", "code", "weight", "new")
_RUN_INFO_KEYS = frozenset(
    {
        "run_id", "started_at", "finished_at", "catalogue_digest", "inputs_digest", "input_digests",
        "key_id", "counts", "vault_digest", "software_version",
    }
)

_SCHEMA = """
CREATE TABLE schema_version (
    version    INTEGER NOT NULL PRIMARY KEY,
    applied_at TEXT NOT NULL
);
CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY,
    week             TEXT NOT NULL CHECK (week GLOB '[0-9][0-9][0-9][0-9]-W[0-5][0-9]'),
    started_at       TEXT NOT NULL,
    finished_at      TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('recorded', 'replayed', 'replaced')),
    catalogue_digest TEXT,
    inputs_digest    TEXT,
    key_id           TEXT,
    counts           TEXT NOT NULL CHECK (json_valid(counts)),
    drafts_digest    TEXT NOT NULL
);
CREATE INDEX runs_week ON runs (week);
CREATE TABLE drafts (
    draft_id        TEXT PRIMARY KEY,
    week            TEXT NOT NULL CHECK (week GLOB '[0-9][0-9][0-9][0-9]-W[0-5][0-9]'),
    child           TEXT NOT NULL,
    municipality    TEXT NOT NULL CHECK (length(municipality) = 3),
    age             INTEGER,
    rule            TEXT NOT NULL CHECK (rule IN ('immediate', 'threshold')),
    score           INTEGER NOT NULL,
    threshold       INTEGER NOT NULL,
    n_signals       INTEGER,
    n_new_signals   INTEGER,
    persons         TEXT NOT NULL CHECK (json_valid(persons)),
    previous_drafts TEXT NOT NULL CHECK (json_valid(previous_drafts)),
    run_id          TEXT NOT NULL REFERENCES runs (run_id),
    UNIQUE (child, week),
    UNIQUE (draft_id, child)
);
CREATE INDEX drafts_week ON drafts (week);
CREATE TABLE draft_signals (
    draft_id          TEXT NOT NULL,
    child             TEXT NOT NULL,
    event_ref         TEXT NOT NULL,
    person            TEXT NOT NULL,
    role              TEXT NOT NULL,
    link              TEXT NOT NULL CHECK (link IN ('self', 'mother', 'father', 'custodian', 'household')),
    kind              TEXT NOT NULL CHECK (kind IN ('offence', 'incident')),
    code              TEXT NOT NULL,
    category          TEXT,
    weight            INTEGER NOT NULL,
    registered_at     TEXT,
    new               INTEGER NOT NULL CHECK (new IN (0, 1)),
    resolved_by       TEXT CHECK (resolved_by IN ('cpr', 'probabilistic')),
    match_probability REAL,
    district          TEXT,
    PRIMARY KEY (draft_id, event_ref, person, role, link, kind, code),
    FOREIGN KEY (draft_id, child) REFERENCES drafts (draft_id, child) ON DELETE CASCADE
);
CREATE INDEX draft_signals_pairs ON draft_signals (child, event_ref);
CREATE TABLE reviews (
    review_id  INTEGER PRIMARY KEY,
    draft_id   TEXT NOT NULL REFERENCES drafts (draft_id),
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'dismiss')),
    reason     TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    decided_at TEXT NOT NULL
);
CREATE INDEX reviews_draft ON reviews (draft_id);
CREATE TRIGGER runs_append_only_u BEFORE UPDATE ON runs
BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER runs_append_only_d BEFORE DELETE ON runs
BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER reviews_append_only_u BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only; record a new decision instead'); END;
CREATE TRIGGER reviews_append_only_d BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only; record a new decision instead'); END;
"""


# --- the state lock ----------------------------------------------------------------------------

_held: dict[Path, int] = {}
_held_guard = threading.Lock()


def _safe_id(value: str) -> str:
    """Quote an id for a message, unless it looks like a CPR number typed by mistake."""
    return "(an id that looks like a CPR number)" if _CPR_LIKE.search(value) else repr(value)


@contextmanager
def lock_state(state_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the exclusive lock on a state folder (``STATE/lock``) for the ``with`` block.

    The lock is an ``fcntl.flock`` on an open file, so the kernel releases it when the process
    dies, however it dies: a killed run never leaves a stale lock. Any second attempt — from
    another process or from this one — gets :class:`~socialsearch.errors.StateLockedError`
    at once. (:meth:`Ledger.open` inside the block uses the lock already held.)

    Examples
    --------
    >>> with lock_state("state"), Ledger.open("state") as ledger:  # doctest: +SKIP
    ...     ...  # read history, search, write outputs, commit the ledger
    """
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    path = (state / LOCK_FILE).resolve()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StateLockedError(
                f"state folder {state} is locked by another run (pid {holder}); wait for it to "
                "finish, or check that no other socialsearch process uses this --state folder"
            ) from None
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        with _held_guard:
            _held[path] = _held.get(path, 0) + 1
        try:
            yield state
        finally:
            with _held_guard:
                _held[path] -= 1
                if not _held[path]:
                    del _held[path]
            os.ftruncate(fd, 0)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _holds_lock(state_dir: Path) -> bool:
    """Whether this process holds the lock of ``state_dir`` (through :func:`lock_state`)."""
    with _held_guard:
        return (state_dir / LOCK_FILE).resolve() in _held


@contextmanager
def _lock_unless_held(state_dir: Path) -> Iterator[None]:
    if _holds_lock(state_dir):
        yield
    else:
        with lock_state(state_dir):
            yield


# --- helpers -----------------------------------------------------------------------------------


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
    """The drafts as ledger rows (without run_id), in draft_id order."""
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
    return [
        (*row[:10], _json_list(row[10]), _json_list(row[11]))
        for row in frame.iter_rows()
    ]


def _signal_rows(signals: pl.DataFrame) -> list[tuple[Any, ...]]:
    """The signals as ledger rows, in primary-key order."""
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
    ).sort("draft_id", "event_ref", "person", "role", "link", "kind", "code")
    return list(frame.iter_rows())


def _digest(draft_rows: list[tuple[Any, ...]], signal_rows: list[tuple[Any, ...]]) -> str:
    """sha256 of a week's drafts and signals as recorded: binds the audit entry to the content."""
    h = hashlib.sha256()
    for row in draft_rows:
        h.update(b"D" + canonical_json({"r": list(row)}).encode() + b"\n")
    for row in signal_rows:
        h.update(b"S" + canonical_json({"r": list(row)}).encode() + b"\n")
    return h.hexdigest()


# --- the ledger --------------------------------------------------------------------------------


class Ledger:
    """The SQLite ledger of one state folder; open it with :meth:`Ledger.open`.

    Examples
    --------
    >>> with lock_state("state"), Ledger.open("state") as ledger:  # doctest: +SKIP
    ...     ledger.check_week(week)
    ...     drafted_pairs, previous_drafts = ledger.history(week)
    ...     result = weekly_search(...)
    ...     run_id = ledger.record_run(week, result.drafts, result.signals, {"key_id": "k1"})
    """

    def __init__(self, conn: sqlite3.Connection, state_dir: Path, *, readonly: bool = False) -> None:
        self._conn = conn
        self.state_dir = state_dir
        self.readonly = readonly
        self.opened_at = _now()

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def open(cls, state_dir: str | os.PathLike[str], *, readonly: bool = False) -> Iterator[Ledger]:
        """Open (creating it and its schema if needed) the ledger of ``state_dir``.

        A writable ledger needs the state lock: it uses the one this process already holds
        through :func:`lock_state` (as the weekly run does), or else takes it for the ``with``
        block. ``readonly=True`` takes no lock and refuses every write; the ledger must exist.
        The lock belongs to the process: do not write to one state folder from two threads.
        """
        state = Path(state_dir)
        if readonly:
            path = state / LEDGER_FILE
            if not path.is_file():
                raise LedgerError(f"no ledger at {path}: is {state} the --state folder of a weekly run?")
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None, timeout=30.0)
            try:
                ledger = cls(conn, state, readonly=True)
                ledger._check_version()
                yield ledger
            finally:
                conn.close()
            return
        state.mkdir(parents=True, exist_ok=True)
        with _lock_unless_held(state):
            path = state / LEDGER_FILE
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
        if self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone() is not None:
            self._check_version()
            return
        with self._transaction():
            exists = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if exists is None:
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        self._conn.execute(statement)
                audit.create_schema(self._conn)
                self._conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (SCHEMA_VERSION, _now())
                )
        self._check_version()

    def _check_version(self) -> None:
        row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
        if row is None or row[0] is None:
            raise LedgerError(f"{self.state_dir / LEDGER_FILE} has no schema version: it is not a ledger")
        if int(row[0]) > SCHEMA_VERSION:
            raise LedgerError(
                f"{self.state_dir / LEDGER_FILE} has schema version {row[0]}, newer than this "
                f"socialsearch understands ({SCHEMA_VERSION}); upgrade socialsearch"
            )

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
        """The underlying connection (for reading; write through the methods)."""
        return self._conn

    # -- weeks -----------------------------------------------------------------------------

    def weeks(self) -> list[str]:
        """The weeks with at least one recorded run, oldest first."""
        return [w for (w,) in self._conn.execute("SELECT DISTINCT week FROM runs ORDER BY week")]

    def latest_week(self) -> IsoWeek | None:
        """The latest week with a recorded run, or ``None`` for an empty ledger."""
        row = self._conn.execute("SELECT max(week) FROM runs").fetchone()
        return None if row[0] is None else IsoWeek.parse(row[0])

    def _refuse_earlier(self, week: IsoWeek, latest: IsoWeek) -> LedgerError:
        return LedgerError(
            f"week {week} is earlier than the latest week in the ledger ({latest}) and was never "
            "run: running it now would change which signals count as new for the weeks after it. "
            f"Run weeks in order: to backfill, use a fresh --state folder and run every week from "
            f"the first one up to {latest}; re-running a week already recorded is allowed"
        )

    def check_week(self, week: IsoWeek | str) -> None:
        """Refuse a *new* week earlier than the latest recorded week (re-runs are fine)."""
        week = _as_week(week)
        latest = self.latest_week()
        if latest is None or week >= latest:
            return
        if str(week) not in self.weeks():
            raise self._refuse_earlier(week, latest)

    # -- history ---------------------------------------------------------------------------

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
        search ignores those. It keeps the pairs bounded however old the ledger grows.
        ``previous_drafts`` always covers every earlier week.
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
        drafted_pairs = _frame(pairs, ("child", "event_ref"))
        previous_drafts = _frame(previous, ("child", "draft_id", "week"))
        return drafted_pairs, previous_drafts

    # -- recording a run -------------------------------------------------------------------

    def _recorded(self, week: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        drafts = self._conn.execute(
            "SELECT draft_id, week, child, municipality, age, rule, score, threshold, n_signals, "
            "n_new_signals, persons, previous_drafts FROM drafts WHERE week = ? ORDER BY draft_id",
            (week,),
        ).fetchall()
        signals = self._conn.execute(
            "SELECT s.draft_id, s.child, s.event_ref, s.person, s.role, s.link, s.kind, s.code, "
            "s.category, s.weight, s.registered_at, s.new, s.resolved_by, s.match_probability, "
            "s.district FROM draft_signals AS s JOIN drafts AS d ON d.draft_id = s.draft_id WHERE d.week = ? "
            "ORDER BY s.draft_id, s.event_ref, s.person, s.role, s.link, s.kind, s.code",
            (week,),
        ).fetchall()
        return drafts, signals

    def record_run(
        self,
        week: IsoWeek | str,
        drafts: pl.DataFrame,
        signals: pl.DataFrame,
        run_info: Mapping[str, Any] | None = None,
    ) -> str:
        """Record a completed run of ``week`` in ONE transaction; returns the run id.

        The transaction replaces the week's drafts and signals, inserts the run row and
        appends an audit entry (kind ``"run"``). Re-running a week that gives the same drafts
        changes no draft row (status ``replayed``); re-running the *latest* week with different
        drafts replaces them (status ``replaced``) unless a draft that would disappear was
        already reviewed; re-running an *earlier* week with different drafts is refused.

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
        w = _as_week(week)
        ws = str(w)
        info = dict(run_info or {})
        unknown = sorted(set(info) - _RUN_INFO_KEYS)
        if unknown:
            raise LedgerError(
                f"cannot record the run: unknown run_info key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_RUN_INFO_KEYS))}"
            )
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
        digest = _digest(draft_rows, signal_rows)
        counts = {str(k): v for k, v in dict(info.get("counts") or {}).items()}
        counts.setdefault("drafts", len(draft_rows))
        counts.setdefault("signals", len(signal_rows))
        counts.setdefault("new_signals", sum(int(r[11]) for r in signal_rows))
        run_id = str(info.get("run_id") or f"{ws}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")
        started = str(info.get("started_at") or self.opened_at)
        finished = str(info.get("finished_at") or _now())
        inputs_digest = info.get("inputs_digest")
        if inputs_digest is None and info.get("input_digests"):
            inputs_digest = hashlib.sha256(canonical_json(dict(info["input_digests"])).encode()).hexdigest()

        try:
            with self._transaction() as conn:
                latest = self.latest_week()
                seen = conn.execute("SELECT 1 FROM runs WHERE week = ? LIMIT 1", (ws,)).fetchone() is not None
                old_drafts, old_signals = self._recorded(ws)
                same = old_drafts == draft_rows and old_signals == signal_rows
                if latest is not None and w < latest:
                    if not seen:
                        raise self._refuse_earlier(w, latest)
                    if not same:
                        raise self._refuse_changed_past(ws, latest, old_drafts, draft_rows)
                status = "replayed" if seen and same else ("replaced" if seen else "recorded")
                conn.execute(
                    "INSERT INTO runs (run_id, week, started_at, finished_at, status, catalogue_digest, "
                    "inputs_digest, key_id, counts, drafts_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, ws, started, finished, status, info.get("catalogue_digest"), inputs_digest,
                     info.get("key_id"), canonical_json(counts), digest),
                )
                if not same:
                    self._replace_week(ws, run_id, old_drafts, draft_rows, signal_rows)
                payload: dict[str, Any] = {
                    "run_id": run_id,
                    "week": ws,
                    "status": status,
                    "catalogue_digest": info.get("catalogue_digest"),
                    "inputs_digest": inputs_digest,
                    "key_id": info.get("key_id"),
                    "counts": counts,
                    "drafts_digest": digest,
                }
                for key in ("input_digests", "vault_digest", "software_version"):
                    if key in info:
                        payload[key] = info[key]
                audit.append(conn, "run", payload)
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"cannot record week {ws}: the ledger refused the drafts ({exc})") from None
        self._commit_audited()
        return run_id

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
            "inputs, or rebuild the state in a fresh --state folder, running the weeks in order"
        )

    def _replace_week(
        self,
        week: str,
        run_id: str,
        old_drafts: list[tuple[Any, ...]],
        draft_rows: list[tuple[Any, ...]],
        signal_rows: list[tuple[Any, ...]],
    ) -> None:
        conn = self._conn
        new_ids = {r[0] for r in draft_rows}
        gone = sorted({r[0] for r in old_drafts} - new_ids)
        if gone:
            marks = ",".join("?" * len(gone))
            reviewed = conn.execute(
                f"SELECT DISTINCT draft_id FROM reviews WHERE draft_id IN ({marks}) ORDER BY draft_id", gone
            ).fetchall()
            if reviewed:
                raise LedgerError(
                    f"re-running week {week} would drop {len(reviewed)} draft(s) that were already "
                    f"reviewed (first: {reviewed[0][0]}); re-run with the original inputs, or record "
                    "the corrected run in a fresh --state folder"
                )
        elsewhere = conn.execute(
            f"SELECT draft_id FROM drafts WHERE week != ? AND draft_id IN ({','.join('?' * len(new_ids))})",
            (week, *sorted(new_ids)),
        ).fetchone() if new_ids else None
        if elsewhere is not None:
            raise LedgerError(f"draft id {elsewhere[0]} of week {week} is already recorded for another week")
        conn.execute(
            "DELETE FROM draft_signals WHERE draft_id IN (SELECT draft_id FROM drafts WHERE week = ?)", (week,)
        )
        conn.executemany("DELETE FROM drafts WHERE draft_id = ?", [(d,) for d in gone])
        conn.executemany(
            "INSERT INTO drafts (draft_id, week, child, municipality, age, rule, score, threshold, "
            "n_signals, n_new_signals, persons, previous_drafts, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (draft_id) DO UPDATE SET week = excluded.week, child = excluded.child, "
            "municipality = excluded.municipality, age = excluded.age, rule = excluded.rule, "
            "score = excluded.score, threshold = excluded.threshold, n_signals = excluded.n_signals, "
            "n_new_signals = excluded.n_new_signals, persons = excluded.persons, "
            "previous_drafts = excluded.previous_drafts, run_id = excluded.run_id",
            [(*r, run_id) for r in draft_rows],
        )
        conn.executemany(
            "INSERT INTO draft_signals (draft_id, child, event_ref, person, role, link, kind, code, "
            "category, weight, registered_at, new, resolved_by, match_probability, district) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            signal_rows,
        )

    # -- drafts and reviews ----------------------------------------------------------------

    def _draft_row(self, draft_id: str) -> tuple[Any, ...]:
        row = self._conn.execute(
            "SELECT draft_id, week, municipality, child, age, rule, score, threshold, persons, "
            "previous_drafts, run_id FROM drafts WHERE draft_id = ?",
            (draft_id,),
        ).fetchone()
        if row is None:
            raise LedgerError(
                f"unknown draft {_safe_id(draft_id)}: no such draft in the ledger at {self.state_dir}; "
                "copy the draft_id from drafts.json or drafts.html"
            )
        return tuple(row)

    def latest_decision(self, draft_id: str) -> dict[str, str] | None:
        """The latest review of a draft (``decision``, ``reason``, ``decided_at``), or ``None``."""
        self._draft_row(draft_id)
        row = self._conn.execute(
            "SELECT decision, reason, decided_at FROM reviews WHERE draft_id = ? "
            "ORDER BY review_id DESC LIMIT 1",
            (draft_id,),
        ).fetchone()
        return None if row is None else {"decision": row[0], "reason": row[1], "decided_at": row[2]}

    def get_draft(self, draft_id: str) -> dict[str, Any]:
        """One draft as recorded: week, municipality, child pseudonym, persons, event refs, decision.

        ``decision`` is the latest decision (``"approve"``, ``"dismiss"``) or ``None``;
        ``review`` holds it with its reason and time.
        """
        (did, week, municipality, child, age, rule, score, threshold, persons, previous, run_id) = (
            self._draft_row(draft_id)
        )
        refs = [
            r for (r,) in self._conn.execute(
                "SELECT DISTINCT event_ref FROM draft_signals WHERE draft_id = ? ORDER BY event_ref", (did,)
            )
        ]
        review = self.latest_decision(did)
        return {
            "draft_id": did,
            "week": week,
            "municipality": municipality,
            "child": child,
            "age": age,
            "rule": rule,
            "score": score,
            "threshold": threshold,
            "persons": json.loads(persons),
            "event_refs": refs,
            "previous_drafts": json.loads(previous),
            "run_id": run_id,
            "decision": None if review is None else review["decision"],
            "review": review,
        }

    def review(self, draft_id: str, decision: str, reason: str) -> dict[str, Any]:
        """Record a municipality's decision on a draft and append an audit entry (kind ``review``).

        The reason is kept in ``reviews``; the audit entry holds its sha256 only, so free text
        never enters the append-only log. A reason that contains a CPR-looking number is refused.
        """
        if decision not in DECISIONS:
            raise UsageError(f"decision {decision!r}: expected one of {', '.join(DECISIONS)}")
        if not reason or not reason.strip():
            raise UsageError("the reason must not be empty: say why the draft is approved or dismissed")
        if _CPR_LIKE.search(reason):
            raise UsageError(
                "the reason seems to contain a CPR number; write it without identifiers "
                "(the draft id identifies the case)"
            )
        decided_at = _now()
        with self._transaction() as conn:
            _, week, municipality, *_ = self._draft_row(draft_id)
            cur = conn.execute(
                "INSERT INTO reviews (draft_id, decision, reason, decided_at) VALUES (?, ?, ?, ?)",
                (draft_id, decision, reason.strip(), decided_at),
            )
            entry = audit.append(conn, "review", {
                "draft_id": draft_id,
                "week": week,
                "municipality": municipality,
                "decision": decision,
                "reason_sha256": hashlib.sha256(reason.strip().encode("utf-8")).hexdigest(),
                "review_id": cur.lastrowid,
            }, at=decided_at)
        self._commit_audited()
        return {"draft_id": draft_id, "decision": decision, "reason": reason.strip(),
                "decided_at": decided_at, "audit_seq": entry.seq}

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

    def key_id(self) -> str | None:
        """The key the ledger's pseudonyms are made with: that of the latest run or re-keying."""
        row = self._conn.execute(
            "SELECT kind, payload FROM audit WHERE kind IN ('run', 'rekey') ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        data = json.loads(row[1])
        key: str | None = data.get("key_id") if row[0] == "run" else data.get("to_key_id")
        return key

    def check_key(self, key_id: str) -> None:
        """Refuse a run whose pseudonyms are made with another key than the ledger's.

        Otherwise every child and event already notified would look new under the new key.
        """
        current = self.key_id()
        if current is not None and current != key_id:
            raise LedgerError(
                f"the extracts are pseudonymised with key {key_id}, but the ledger holds pseudonyms "
                f"of key {current}: the key custodian must first run "
                f"`socialsearch keys rekey --keys KEYS --state {self.state_dir} --to {key_id}` "
                "(see docs/privacy.md, Rotation)"
            )

    def rekey(self, persons: Mapping[str, str], events: Mapping[str, str],
              payload: Mapping[str, Any]) -> dict[str, int]:
        """Replace old pseudonyms and event references by new ones, in ONE transaction with an
        audit entry (kind ``"rekey"``, ``payload`` plus the counts).

        ``persons`` and ``events`` map old → new values. Values not in a map are left as they
        are, so running the same re-keying twice changes nothing the second time. Draft ids
        stay: they name what was sent.
        """
        conn = self._conn
        with self._transaction():
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
            # drafts.persons is a JSON list of {pseudonym, link}: rewrite it element by element.
            counts["draft_persons"] = conn.execute(
                """UPDATE drafts SET persons = (
                       SELECT json_group_array(json_object(
                           'link', json_extract(e.value, '$.link'),
                           'pseudonym', coalesce(m.new, json_extract(e.value, '$.pseudonym'))))
                       FROM json_each(drafts.persons) AS e
                       LEFT JOIN _pmap AS m ON m.old = json_extract(e.value, '$.pseudonym'))
                   WHERE EXISTS (SELECT 1 FROM json_each(drafts.persons) AS e
                                 JOIN _pmap AS m ON m.old = json_extract(e.value, '$.pseudonym'))"""
            ).rowcount
            conn.execute("DROP TABLE _pmap")
            conn.execute("DROP TABLE _emap")
            audit.append(conn, "rekey", {**dict(payload), "counts": counts})
        self._commit_audited()
        return counts

    def audit_entries(self, kind: str | None = None) -> list[AuditEntry]:
        """The audit entries in order (optionally of one kind)."""
        return audit.entries(self._conn, kind=kind)

    def runs(self) -> list[dict[str, Any]]:
        """The recorded runs, oldest first."""
        cur = self._conn.execute(
            "SELECT run_id, week, started_at, finished_at, status, catalogue_digest, inputs_digest, "
            "key_id, counts, drafts_digest FROM runs ORDER BY rowid"
        )
        names = [d[0] for d in cur.description]
        out = [dict(zip(names, row, strict=True)) for row in cur]
        for run in out:
            run["counts"] = json.loads(run["counts"])
        return out


def backup(state_dir: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """Copy the ledger consistently to ``destination`` (SQLite's online backup), under the lock.

    Back up ``audit.head`` and ``vault/`` with it; see ``docs/operations.md``.
    """
    state = Path(state_dir)
    dest = Path(destination)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not (state / LEDGER_FILE).is_file():
        raise LedgerError(f"no ledger at {state / LEDGER_FILE}: nothing to back up")
    # A writable open (under the lock) first rolls back a hot journal left by a killed run.
    with Ledger.open(state) as ledger:
        target = sqlite3.connect(dest)
        try:
            ledger.connection.backup(target)
        finally:
            target.close()
    return dest
