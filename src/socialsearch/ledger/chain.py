"""The hash-chained, append-only audit log kept in the ledger database.

Every run, review, re-keying and re-identification appends one entry to the table ``audit``::

    seq        INTEGER PRIMARY KEY   1, 2, 3, ... without gaps
    at         TEXT                  UTC time, ISO 8601 with offset
    kind       TEXT                  "run", "review", "reidentify", ...
    payload    TEXT                  canonical JSON (sorted keys, no spaces, ASCII)
    prev_hash  TEXT                  the previous entry's hash; 64 zeros for the first entry
    hash       TEXT                  sha256(prev_hash \\n seq \\n at \\n kind \\n payload), hex

The hash covers the position (``seq``) and the previous hash, so changing, removing or
reordering any entry breaks the chain from that entry on. Triggers abort every ``UPDATE`` and
``DELETE`` on the table and every ``INSERT`` that does not extend the chain, so the log can
only grow through this module. Removing *trailing* entries leaves a valid (shorter) chain;
to catch that too, the head ``(seq, hash)`` is also kept in ``STATE/audit.head``, rewritten
atomically after every commit, and :func:`verify_chain` compares the two.

The chain also binds the ledger's own tables: each entry holds the digest of the rows it
wrote (the rules are in :mod:`socialsearch.ledger.integrity`), and its ``audit_verify`` recomputes those
digests from the tables, so a row of ``runs``, ``drafts``, ``draft_signals`` or ``reviews``
changed, deleted or inserted with ``sqlite3`` is found like a changed entry.

Limits: someone who can write both ``ledger.sqlite`` and ``audit.head`` can truncate the log
and rewrite the anchor, or rebuild the whole chain. Keep a copy of the head hash outside the
state folder (it is printed by ``socialsearch audit verify``; the operations guide says where
to send it) and compare it with the report of ``socialsearch.audit_verify``.

Payloads never hold raw CPR numbers, names or journal numbers: only pseudonyms, event
references, draft ids, counts and digests.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._atomic import write_json_atomic
from ..errors import AuditError

__all__ = [
    "AuditEntry",
    "GENESIS",
    "HEAD_FILE",
    "LEDGER_FILE",
    "VerifyReport",
    "append",
    "canonical_json",
    "check_triggers",
    "create_schema",
    "entries",
    "entry_hash",
    "head",
    "read_anchor",
    "sync_anchor",
    "verify_chain",
    "write_anchor",
]

LEDGER_FILE = "ledger.sqlite"
HEAD_FILE = "audit.head"
GENESIS = "0" * 64
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    seq       INTEGER PRIMARY KEY CHECK (seq >= 1),
    at        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
    hash      TEXT NOT NULL UNIQUE CHECK (length(hash) = 64)
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_chain_only BEFORE INSERT ON audit
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit)
  OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), '{GENESIS}')
BEGIN SELECT RAISE(ABORT, 'the audit log only grows at its head'); END;
"""
_TRIGGERS = ("audit_no_update", "audit_no_delete", "audit_chain_only")


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the chain."""

    seq: int
    at: str
    kind: str
    payload: str
    prev_hash: str
    hash: str

    @property
    def data(self) -> dict[str, Any]:
        """The payload, decoded."""
        value: dict[str, Any] = json.loads(self.payload)
        return value


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a successful verification (``socialsearch.audit_verify``).

    ``head`` is the last entry's hash (``GENESIS`` for an empty log); compare it with a copy
    kept outside the state folder. ``anchor_seq`` is the entry ``audit.head`` points at; it is
    behind ``head_seq`` only when a writer was killed between its commit and the anchor update
    (the next writer repairs it).
    """

    entries: int
    head: str
    head_seq: int
    anchor_seq: int | None
    rows: dict[str, int] | None = None

    def __str__(self) -> str:
        text = f"audit log ok: {self.entries} entries, head {self.head}"
        if self.rows is not None:
            text += (f"; ledger rows match the log ({self.rows['runs']} runs, {self.rows['drafts']} drafts, "
                     f"{self.rows['signals']} signals, {self.rows['reviews']} reviews)")
        return text


def canonical_json(payload: dict[str, Any]) -> str:
    """JSON with sorted keys, no whitespace and ASCII only: one text for one value."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(prev_hash: str, seq: int, at: str, kind: str, payload: str) -> str:
    """sha256 over the entry's fields joined by newlines (none of them can contain one)."""
    text = "\n".join((prev_hash, str(seq), at, kind, payload))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the audit table and its triggers (idempotent; call inside a transaction)."""
    for statement in _SCHEMA.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """The last entry's ``(seq, hash)``, or ``(0, GENESIS)`` for an empty log."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def append(
    conn: sqlite3.Connection, kind: str, payload: dict[str, Any], *, at: str | None = None
) -> AuditEntry:
    """Append one entry inside the caller's open transaction and return it.

    The caller commits, then writes the anchor with :func:`write_anchor` (``Ledger`` does both).
    """
    if not _KIND.match(kind):
        raise ValueError(f"audit kind {kind!r}: expected lower-case letters, digits, '_', '.', '-'")
    if not isinstance(payload, dict):
        raise TypeError("an audit payload is a JSON object (dict)")
    text = canonical_json(payload)
    when = at or datetime.now(UTC).isoformat(timespec="microseconds")
    seq, prev = head(conn)
    seq += 1
    digest = entry_hash(prev, seq, when, kind, text)
    conn.execute(
        "INSERT INTO audit (seq, at, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
        (seq, when, kind, text, prev, digest),
    )
    return AuditEntry(seq, when, kind, text, prev, digest)


def entries(conn: sqlite3.Connection, *, kind: str | None = None) -> list[AuditEntry]:
    """All entries in ``seq`` order (optionally of one kind)."""
    sql = "SELECT seq, at, kind, payload, prev_hash, hash FROM audit"
    args: tuple[str, ...] = ()
    if kind is not None:
        sql += " WHERE kind = ?"
        args = (kind,)
    return [AuditEntry(*row) for row in conn.execute(sql + " ORDER BY seq", args)]


# --- the anchor file ---------------------------------------------------------------------------


def read_anchor(state_dir: str | Path) -> tuple[int, str] | None:
    """``(seq, hash)`` from ``STATE/audit.head``, or ``None`` when there is no anchor."""
    path = Path(state_dir) / HEAD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return int(data["seq"]), str(data["hash"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise AuditError(f"{path} is damaged: expected JSON {{\"seq\": N, \"hash\": \"...\"}}") from None


def write_anchor(state_dir: str | Path, seq: int, digest: str) -> None:
    """Atomically record the head ``(seq, hash)`` in ``STATE/audit.head``."""
    write_json_atomic(Path(state_dir) / HEAD_FILE, {"seq": seq, "hash": digest})


def sync_anchor(conn: sqlite3.Connection, state_dir: str | Path) -> None:
    """Move a lagging anchor forward to the head after an interrupted writer.

    Only an anchor that is missing on an empty log, or that names an existing entry with the
    same hash, is moved; anything else is left for the verification to report.
    """
    head_seq, head_hash = head(conn)
    anchor = read_anchor(state_dir)
    if anchor is None:
        if head_seq == 0:
            write_anchor(state_dir, 0, GENESIS)
        return
    seq, digest = anchor
    if seq == head_seq:
        return
    if seq == 0 and digest == GENESIS and head_seq > 0:
        write_anchor(state_dir, head_seq, head_hash)
        return
    row = conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
    if row is not None and row[0] == digest and seq < head_seq:
        write_anchor(state_dir, head_seq, head_hash)


# --- verification ------------------------------------------------------------------------------


def verify_chain(conn: sqlite3.Connection, anchor: tuple[int, str] | None) -> tuple[VerifyReport, list[AuditEntry]]:
    """Verify the chain read through ``conn`` against ``anchor``: every link, every hash, the
    head against the anchor. Returns the report (without table
    counts) and the entries, for the check of the tables that the chain binds
    (:func:`socialsearch.ledger.integrity.verify_connection`).

    Raises :class:`~socialsearch.errors.AuditError` naming the first bad entry.
    """
    rows = entries(conn)
    by_hash = {e.hash: e.seq for e in rows}
    prev_hash = GENESIS
    expected = 1
    for e in rows:
        if e.seq != expected:
            if expected == 1:
                raise AuditError(
                    f"audit log: bad genesis: the first entry is seq {e.seq}; "
                    f"entries 1..{e.seq - 1} were removed"
                )
            raise AuditError(
                f"audit log: entry seq {expected} is missing (removed): seq {expected - 1} "
                f"is followed by seq {e.seq}"
            )
        if e.prev_hash != prev_hash:
            if expected == 1:
                raise AuditError("audit log: bad genesis: entry seq 1 does not start the chain")
            other = by_hash.get(e.prev_hash)
            if other is not None:
                raise AuditError(
                    f"audit log: entry seq {e.seq} is out of order: it follows the entry "
                    f"now at seq {other}, not seq {e.seq - 1} (entries were reordered)"
                )
            raise AuditError(
                f"audit log: entry seq {e.seq} does not link to seq {e.seq - 1}: "
                f"seq {e.seq - 1} was changed or an entry was removed before seq {e.seq}"
            )
        if entry_hash(e.prev_hash, e.seq, e.at, e.kind, e.payload) != e.hash:
            raise AuditError(
                f"audit log: entry seq {e.seq} ({e.kind}) was changed: its content does not "
                "match its hash"
            )
        prev_hash = e.hash
        expected += 1
    head_seq = expected - 1
    anchor_seq: int | None = None
    if anchor is None:
        if head_seq > 0:
            raise AuditError(
                f"audit log: the anchor file {HEAD_FILE} is missing although the log has "
                f"{head_seq} entries; it may have been deleted to hide removed entries"
            )
    else:
        anchor_seq, anchor_hash = anchor
        if anchor_seq > head_seq:
            raise AuditError(
                f"audit log: {HEAD_FILE} records entry seq {anchor_seq}, but the log ends at seq "
                f"{head_seq}: entries {head_seq + 1}..{anchor_seq} were removed"
            )
        known = GENESIS if anchor_seq == 0 else rows[anchor_seq - 1].hash
        if known != anchor_hash:
            raise AuditError(
                f"audit log: entry seq {anchor_seq} differs from the one recorded in {HEAD_FILE}: "
                "the log was rewritten"
            )
    return VerifyReport(entries=len(rows), head=prev_hash, head_seq=head_seq, anchor_seq=anchor_seq), rows


def check_triggers(conn: sqlite3.Connection) -> None:
    """Refuse a log whose append-only triggers were dropped (checked after the tables, whose
    tampering needs the ledger's triggers dropped first and is the more useful message)."""
    present = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    missing = [t for t in _TRIGGERS if t not in present]
    if missing:
        raise AuditError(
            f"audit log: the append-only trigger(s) {', '.join(missing)} were removed; the "
            "entries verify, but the log has been opened for tampering"
        )
