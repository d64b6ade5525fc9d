"""The ledger's SQL layout (version 2), created once per state folder.

=================  =====================================================================
table              holds
=================  =====================================================================
``runs``           one row per completed run (append-only): week, times, digests, key id
``drafts``         one row per draft; ``UNIQUE (child, week)``
``draft_signals``  the (child, event, person, role, link, code) rows of each draft, with the
                   event's police district (read by the statistics)
``reviews``        the municipality's decisions (append-only; the latest one counts), with
                   the reviewer's initials and where the decision came from
``audit``          the hash-chained audit log (see :mod:`socialsearch.audit`)
``schema_version`` the version of this layout
=================  =====================================================================

The ``json_array`` expressions below are the canonical text of a row: the audit chain binds
rows by the sha256 of exactly this text (see :mod:`socialsearch._integrity`).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from . import audit
from .errors import LedgerError

__all__ = ["SCHEMA_VERSION", "check_version", "create", "exists"]

SCHEMA_VERSION = 2

DRAFT_COLUMNS = (
    "draft_id", "week", "child", "municipality", "age", "rule", "score", "threshold", "n_signals",
    "n_new_signals", "persons", "previous_drafts",
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
    audit.create_schema(conn)
    conn.execute(
        "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
        (SCHEMA_VERSION, datetime.now(UTC).isoformat(timespec="microseconds")),
    )


def exists(conn: sqlite3.Connection) -> bool:
    """Whether the database already holds a ledger layout."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    return row is not None


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that is not a ledger of this layout version."""
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
