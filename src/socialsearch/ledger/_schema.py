"""The ledger's SQL layout (version 3), created once per state folder.

=================  =====================================================================
table              holds
=================  =====================================================================
``runs``           one row per completed run (append-only): week, times, digests, key id
``drafts``         one row per draft; ``UNIQUE (child, week)``; ``statistics`` is what the
                   council statistics read of the draft (age, categories, districts), sealed
                   for the key custodian (a hub extract's drafts: their rule, score and
                   threshold are sealed for the municipality, so null here)
``draft_signals``  the (child, event, person) rows of each draft; for a run on a hub extract the
                   role, link, kind, code, weight, district and week are sealed for the
                   municipality and null here
``reviews``        the municipality's decisions (append-only; the latest one counts), with
                   the reviewer's initials and where the decision came from
``audit``          the hash-chained audit log (see :mod:`socialsearch.ledger.chain`)
``schema_version`` the version of this layout
=================  =====================================================================

The ``json_array`` expressions below are the canonical text of a row: the audit chain binds
rows by the sha256 of exactly this text (see :mod:`socialsearch.ledger.integrity`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from ..errors import LedgerError
from .chain import create_schema as create_audit_schema

__all__ = [
    "SCHEMA_VERSION", "DraftRow", "ReviewRow", "RunRow", "SignalRow", "check_version", "constraint_problem", "create",
    "exists", "not_a_ledger",
]

SCHEMA_VERSION = 3

DRAFT_COLUMNS = (
    "draft_id", "week", "child", "municipality", "age", "rule", "score", "threshold", "n_signals",
    "n_new_signals", "persons", "previous_drafts", "statistics",
)
SIGNAL_COLUMNS = (
    "draft_id", "child", "event_ref", "person", "role", "link", "kind", "code", "category", "weight",
    "registered_at", "new", "resolved_by", "match_probability", "district",
)
SIGNAL_KEY = ("draft_id", "event_ref", "person", "role", "link", "kind", "code")
RUN_COLUMNS = (
    "run_id", "week", "started_at", "finished_at", "status", "catalogue_digest", "inputs_digest", "key_id",
    "counts", "drafts_digest",
)
REVIEW_COLUMNS = ("review_id", "draft_id", "decision", "reason", "reviewer", "decided_at", "source")


class DraftRow(NamedTuple):
    """One ``drafts`` row without its ``run_id`` (``DRAFT_COLUMNS``); lists as canonical JSON text."""

    draft_id: str
    week: str
    child: str
    municipality: str
    age: int | None
    rule: str | None
    score: int | None
    threshold: int | None
    n_signals: int | None
    n_new_signals: int | None
    persons: str
    previous_drafts: str
    statistics: str | None

    def comparable(self) -> DraftRow:
        """The row without its sealed statistics: whether a re-run gives the same draft.

        The statistics value names the draft id the station derived and is sealed under the
        run's key; after ``keys rekey`` a re-run keeps the recorded draft id and key, so only the
        draft's own content decides.
        """
        return self._replace(statistics=None)


class SignalRow(NamedTuple):
    """One ``draft_signals`` row (``SIGNAL_COLUMNS``)."""

    draft_id: str
    child: str
    event_ref: str
    person: str
    role: str | None
    link: str | None
    kind: str | None
    code: str | None
    category: str | None
    weight: int | None
    registered_at: str | None
    new: int
    resolved_by: str | None
    match_probability: float | None
    district: str | None

    @property
    def key(self) -> tuple[str | None, ...]:
        """The primary key (``SIGNAL_KEY``): one signal of one draft."""
        return (self.draft_id, self.event_ref, self.person, self.role, self.link, self.kind, self.code)

    def comparable(self) -> SignalRow:
        """The row without its match probability: whether a re-run gives the same drafts.

        The probability is a diagnostic of the fuzzy resolution; it moves with the key and the
        model (a re-run after ``keys rekey``), while the signals, their weights and the drafts do not.
        """
        return self._replace(match_probability=None)


class RunRow(NamedTuple):
    """One ``runs`` row (``RUN_COLUMNS``); ``counts`` as canonical JSON text."""

    run_id: str
    week: str
    started_at: str
    finished_at: str
    status: str
    catalogue_digest: str | None
    inputs_digest: str | None
    key_id: str | None
    counts: str
    drafts_digest: str


class ReviewRow(NamedTuple):
    """One ``reviews`` row (``REVIEW_COLUMNS``)."""

    review_id: int
    draft_id: str
    decision: str
    reason: str
    reviewer: str
    decided_at: str
    source: str | None

_SQL = """
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
    rule            TEXT CHECK (rule IN ('immediate', 'threshold')),
    score           INTEGER,
    threshold       INTEGER,
    n_signals       INTEGER,
    n_new_signals   INTEGER,
    persons         TEXT NOT NULL CHECK (json_valid(persons)),
    previous_drafts TEXT NOT NULL CHECK (json_valid(previous_drafts)),
    statistics      TEXT,
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
    role              TEXT,
    link              TEXT CHECK (link IN ('self', 'mother', 'father', 'custodian', 'household')),
    kind              TEXT CHECK (kind IN ('offence', 'incident')),
    code              TEXT,
    category          TEXT,
    weight            INTEGER,
    registered_at     TEXT,
    new               INTEGER NOT NULL CHECK (new IN (0, 1)),
    resolved_by       TEXT CHECK (resolved_by IN ('cpr', 'probabilistic')),
    match_probability REAL,
    district          TEXT,
    FOREIGN KEY (draft_id, child) REFERENCES drafts (draft_id, child) ON DELETE CASCADE
);
CREATE UNIQUE INDEX draft_signals_key ON draft_signals
    (draft_id, event_ref, person, ifnull(role, ''), ifnull(link, ''), ifnull(kind, ''), ifnull(code, ''));
CREATE INDEX draft_signals_pairs ON draft_signals (child, event_ref);
CREATE TABLE reviews (
    review_id  INTEGER PRIMARY KEY,
    draft_id   TEXT NOT NULL REFERENCES drafts (draft_id),
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'dismiss')),
    reason     TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    reviewer   TEXT NOT NULL CHECK (length(reviewer) BETWEEN 1 AND 8),
    decided_at TEXT NOT NULL,
    source     TEXT
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
TRIGGERS = ("runs_append_only_u", "runs_append_only_d", "reviews_append_only_u", "reviews_append_only_d")


def create(conn: sqlite3.Connection) -> None:
    """Create every table, index and trigger, and the audit table (inside the caller's transaction)."""
    for statement in _SQL.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    create_audit_schema(conn)
    conn.execute(
        "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
        (SCHEMA_VERSION, datetime.now(UTC).isoformat(timespec="microseconds")),
    )


def exists(conn: sqlite3.Connection) -> bool:
    """Whether the database already holds a ledger layout."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    return row is not None


def not_a_ledger(path: Path) -> LedgerError:
    """The refusal of a file that is no ledger (empty, or another SQLite database)."""
    return LedgerError(
        f"{path} is not a ledger (it holds no ledger tables; an empty file is left by a first run that failed "
        "before socialsearch removed what it made): give the state folder of the weekly run"
    )


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that is not a ledger of this layout version."""
    if not exists(conn):
        raise not_a_ledger(path)
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    if row is None or row[0] is None:
        raise LedgerError(f"{path} has no schema version: it is not a ledger")
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{path} has schema version {version}, newer than this socialsearch understands "
            f"({SCHEMA_VERSION}); upgrade socialsearch"
        )
    if version < SCHEMA_VERSION:
        raise LedgerError(
            f"{path} has schema version {version}, from an earlier socialsearch whose audit log does not "
            "bind the ledger's rows; keep it as an archive and start a fresh state folder, running the "
            "weeks in order"
        )


def constraint_problem(draft_rows: Sequence[DraftRow], signal_rows: Sequence[SignalRow]) -> str | None:
    """What the schema's own constraints would refuse in these rows, or ``None``.

    The rows are inserted into a private in-memory database of this very layout, so the
    checks are exactly the ledger's (``CHECK``, ``NOT NULL``, ``UNIQUE``, the signal-to-draft
    key) without a write to the ledger. The message names the constraint, never a value.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=ON")  # outside a transaction: inside one it does nothing
        # one transaction, never committed (the constraints are immediate: each is checked as
        # its row is inserted), instead of one per statement and row
        conn.execute("BEGIN")
        for statement in _SQL.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO runs VALUES ('check', '0000-W00', '', '', 'recorded', NULL, NULL, NULL, '{}', '')")
        marks = ", ".join("?" * len(DRAFT_COLUMNS))
        drafts = f"INSERT INTO drafts ({', '.join(DRAFT_COLUMNS)}, run_id) VALUES ({marks}, 'check')"
        marks = ", ".join("?" * len(SIGNAL_COLUMNS))
        signals = f"INSERT INTO draft_signals ({', '.join(SIGNAL_COLUMNS)}) VALUES ({marks})"
        try:
            conn.executemany(drafts, draft_rows)
            conn.executemany(signals, signal_rows)
        except sqlite3.IntegrityError as exc:
            return str(exc)
        return None
    finally:
        conn.close()
