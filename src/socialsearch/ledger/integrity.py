"""How the audit chain binds the ledger's tables, the check that they still agree, and
:func:`audit_verify` (``socialsearch audit verify``), which checks both.

The rules, in one place:

* a ``run`` entry holds the sha256 of its ``runs`` row (``row_sha256``) and the digest of its
  week's drafts and signals exactly as they stand after the run (``drafts_digest``);
* a ``rekey`` entry holds the digest of every week's drafts and signals after re-keying
  (``weeks``), since re-keying rewrites pseudonyms in place;
* a ``review`` entry holds its ``reviews`` row's id, decision, reviewer and sha256;
* a re-identification is itself an entry (kind ``reidentify``).

So every ``runs`` and ``reviews`` row has exactly one entry and every such entry its row, and
each week's drafts and signals equal what the latest entry that wrote them recorded. A row
changed, deleted or inserted with ``sqlite3`` (triggers dropped first) breaks one of these;
:func:`verify_tables` names which. A row's canonical text is SQLite's ``json_array`` of its
columns, computed the same way when it is written and when it is checked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import AuditError, LedgerError
from ._rekey import refuse_unfinished_rekey
from ._schema import (
    DRAFT_COLUMNS,
    REVIEW_COLUMNS,
    RUN_COLUMNS,
    SIGNAL_COLUMNS,
    SIGNAL_KEY,
    TRIGGERS,
    exists,
    not_a_ledger,
)
from .chain import LEDGER_FILE, AuditEntry, VerifyReport, check_triggers, read_anchor, verify_chain

__all__ = [
    "audit_verify", "latest_decisions", "latest_reviews", "review_hash", "run_hash", "verify_connection",
    "verify_tables", "week_digests",
]

_DRAFT_ROW = f"json_array({', '.join('d.' + c for c in (*DRAFT_COLUMNS, 'run_id'))})"
_SIGNAL_ROW = f"json_array({', '.join('s.' + c for c in SIGNAL_COLUMNS)})"
_RUN_ROW = f"json_array({', '.join(RUN_COLUMNS)})"
_REVIEW_ROW = f"json_array({', '.join(REVIEW_COLUMNS)})"
_TAMPERED = "changed behind the audit log"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def week_digests(conn: sqlite3.Connection, weeks: Sequence[str] | None = None) -> dict[str, str]:
    """sha256 of each week's drafts and signals as they stand in the tables (all weeks by default)."""
    where, args = "", tuple(weeks or ())
    if weeks is not None:
        if not weeks:
            return {}
        where = f"WHERE d.week IN ({','.join('?' * len(weeks))})"
    hashes: dict[str, Any] = {w: hashlib.sha256() for w in args}
    for week, row in conn.execute(f"SELECT d.week, {_DRAFT_ROW} FROM drafts AS d {where} ORDER BY d.week, d.draft_id",
                                  args):
        hashes.setdefault(week, hashlib.sha256()).update(b"D" + row.encode("utf-8") + b"\n")
    order = ", ".join("s." + c for c in SIGNAL_KEY)
    for week, row in conn.execute(
        f"SELECT d.week, {_SIGNAL_ROW} FROM draft_signals AS s JOIN drafts AS d ON d.draft_id = s.draft_id "
        f"{where} ORDER BY d.week, {order}",
        args,
    ):
        hashes[week].update(b"S" + row.encode("utf-8") + b"\n")
    return {week: h.hexdigest() for week, h in sorted(hashes.items())}


def run_hash(conn: sqlite3.Connection, run_id: str) -> str | None:
    """sha256 of one ``runs`` row's canonical text, or ``None`` when there is no such row."""
    row = conn.execute(f"SELECT {_RUN_ROW} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else _sha(row[0])


def review_hash(conn: sqlite3.Connection, review_id: int) -> str | None:
    """sha256 of one ``reviews`` row's canonical text, or ``None`` when there is no such row."""
    row = conn.execute(f"SELECT {_REVIEW_ROW} FROM reviews WHERE review_id = ?", (review_id,)).fetchone()
    return None if row is None else _sha(row[0])


def _reviews(
    conn: sqlite3.Connection, review_ids: Iterable[int] | None = None
) -> dict[int, tuple[str, tuple[Any, ...]]]:
    """review_id → (sha256 of the row's canonical text, (decision, reason, reviewer, decided_at, source))."""
    sql = f"SELECT review_id, {_REVIEW_ROW}, decision, reason, reviewer, decided_at, source FROM reviews"
    ids = None if review_ids is None else sorted(set(review_ids))
    if ids is None or len(ids) > 10_000:  # many: one scan of the table beats many lookups
        wanted = None if ids is None else set(ids)
        rows = [r for r in conn.execute(sql) if wanted is None or r[0] in wanted]
    else:
        rows = []
        for start in range(0, len(ids), 900):  # below SQLite's limit of bound parameters
            chunk = ids[start:start + 900]
            rows += conn.execute(sql + f" WHERE review_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
    return {int(r[0]): (_sha(r[1]), tuple(r[2:])) for r in rows}


def latest_reviews(
    conn: sqlite3.Connection, draft_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The latest decision per draft as the audit chain records it, with its (verified) row.

    Raises :class:`~socialsearch.errors.AuditError` when the row the chain names is missing or
    differs from the one the chain hashed: the ``reviews`` table was edited behind the log.
    """
    sql = "SELECT seq, payload FROM audit WHERE kind = 'review'"
    args: tuple[str, ...] = ()
    if draft_ids is not None:
        wanted = sorted(set(draft_ids))
        if not wanted:
            return {}
        # One scan in SQLite instead of decoding every review entry in Python.
        sql += " AND json_extract(payload, '$.draft_id') IN (SELECT value FROM json_each(?))"
        args = (json.dumps(wanted),)
    chained: dict[str, tuple[int, dict[str, Any]]] = {}
    for seq, payload in conn.execute(sql + " ORDER BY seq", args):
        data = json.loads(payload)
        chained[str(data["draft_id"])] = (int(seq), data)
    rows = _reviews(conn, [int(data["review_id"]) for _, data in chained.values()])
    out: dict[str, dict[str, Any]] = {}
    for draft_id, (seq, data) in sorted(chained.items()):
        review_id = int(data["review_id"])
        found = rows.get(review_id)
        if found is None or found[0] != data["row_sha256"]:
            raise AuditError(
                f"ledger table reviews: the decision on draft {draft_id} (review {review_id}, audit entry seq "
                f"{seq}) was {_TAMPERED}; the audit log records '{data['decision']}'. Restore the "
                "ledger from a backup (docs/operations.md)"
            )
        decision, reason, reviewer, decided_at, source = found[1]
        out[draft_id] = {"decision": decision, "reason": reason, "reviewer": reviewer, "decided_at": decided_at,
                         "source": source, "review_id": review_id}
    return out


def latest_decisions(
    conn: sqlite3.Connection, draft_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """draft_id → the latest decision (``decision``, ``reason``, ``reviewer``, ``decided_at``),
    read as the chain records it (see :func:`latest_reviews`)."""
    return {
        draft_id: {k: review[k] for k in ("decision", "reason", "reviewer", "decided_at")}
        for draft_id, review in latest_reviews(conn, draft_ids).items()
    }


def verify_tables(conn: sqlite3.Connection, entries: Sequence[AuditEntry]) -> dict[str, int]:
    """Check that the ``runs``, ``reviews``, ``drafts`` and ``draft_signals`` tables are exactly
    what the audit chain recorded; return how many rows of each were checked.

    Raises :class:`~socialsearch.errors.AuditError` naming the first table and row that differ.
    """
    runs: dict[str, AuditEntry] = {}
    reviews: dict[int, AuditEntry] = {}
    weeks: dict[str, tuple[str, AuditEntry]] = {}
    for entry in entries:
        data = entry.data
        if entry.kind == "run":
            runs[str(data["run_id"])] = entry
            weeks[str(data["week"])] = (str(data["drafts_digest"]), entry)
        elif entry.kind == "review":
            reviews[int(data["review_id"])] = entry
        elif entry.kind == "rekey":
            for week, digest in dict(data.get("weeks") or {}).items():
                weeks[str(week)] = (str(digest), entry)

    run_rows = {str(r): _sha(text) for r, text in conn.execute(f"SELECT run_id, {_RUN_ROW} FROM runs")}
    table_runs = set(run_rows)
    extra_runs = sorted(table_runs - runs.keys())
    if extra_runs:
        raise AuditError(f"ledger table runs: run {extra_runs[0]} has no audit entry (inserted behind the audit log)")
    for run_id, entry in runs.items():
        found = run_rows.get(run_id)
        if found is None:
            raise AuditError(
                f"ledger table runs: run {run_id} of audit entry seq {entry.seq} is missing (deleted behind the "
                "audit log)"
            )
        if found != entry.data["row_sha256"]:
            raise AuditError(f"ledger table runs: run {run_id} (audit entry seq {entry.seq}) was {_TAMPERED}")

    review_rows = _reviews(conn)
    table_reviews = set(review_rows)
    extra_reviews = sorted(table_reviews - reviews.keys())
    if extra_reviews:
        raise AuditError(
            f"ledger table reviews: review {extra_reviews[0]} has no audit entry (inserted behind the audit log); "
            "it is not a decision of the municipality"
        )
    for review_id, entry in reviews.items():
        found = review_rows[review_id][0] if review_id in review_rows else None
        if found is None:
            raise AuditError(
                f"ledger table reviews: review {review_id} on draft {entry.data['draft_id']} (audit entry seq "
                f"{entry.seq}) is missing (deleted behind the audit log)"
            )
        if found != entry.data["row_sha256"]:
            raise AuditError(
                f"ledger table reviews: review {review_id} on draft {entry.data['draft_id']} (audit entry seq "
                f"{entry.seq}) was {_TAMPERED}; the audit log records '{entry.data['decision']}'"
            )

    orphans = conn.execute(
        "SELECT count(*) FROM draft_signals AS s WHERE NOT EXISTS "
        "(SELECT 1 FROM drafts AS d WHERE d.draft_id = s.draft_id AND d.child = s.child)"
    ).fetchone()[0]
    if orphans:
        raise AuditError(
            f"ledger table draft_signals: {orphans} row(s) belong to no draft (inserted or changed behind the "
            "audit log)"
        )
    actual = week_digests(conn)
    extra_weeks = sorted(actual.keys() - weeks.keys())
    if extra_weeks:
        raise AuditError(
            f"ledger tables drafts/draft_signals: week {extra_weeks[0]} has drafts that no audit entry recorded "
            "(inserted behind the audit log)"
        )
    empty = hashlib.sha256().hexdigest()
    for week, (digest, entry) in sorted(weeks.items()):
        if actual.get(week, empty) != digest:
            raise AuditError(
                f"ledger tables drafts/draft_signals: the drafts or signals of week {week} differ from what "
                f"audit entry seq {entry.seq} ({entry.kind}) recorded: a draft or signal was {_TAMPERED} "
                "(changed, deleted or inserted)"
            )
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    missing = [t for t in TRIGGERS if t not in present]
    if missing:
        raise AuditError(
            f"ledger: the append-only trigger(s) {', '.join(missing)} were removed; the rows verify, but the "
            "ledger has been opened for tampering"
        )
    counts = {
        "runs": len(table_runs),
        "reviews": len(table_reviews),
        "drafts": int(conn.execute("SELECT count(*) FROM drafts").fetchone()[0]),
        "signals": int(conn.execute("SELECT count(*) FROM draft_signals").fetchone()[0]),
    }
    return counts


def verify_connection(conn: sqlite3.Connection, anchor: tuple[int, str] | None) -> VerifyReport:
    """Verify the chain read through ``conn`` against ``anchor``, then the ledger's tables
    against the chain; see :func:`audit_verify`."""
    report, entries = verify_chain(conn, anchor)
    counts = verify_tables(conn, entries)
    check_triggers(conn)
    return dataclasses.replace(report, rows=counts)


def audit_verify(state_dir: str | Path) -> VerifyReport:
    """Check the audit chain in ``STATE/ledger.sqlite``, its anchor ``STATE/audit.head``, and
    that the ledger's tables hold exactly the rows the chain recorded (``socialsearch audit verify``).

    Raises :class:`~socialsearch.errors.AuditError` naming the first bad entry (changed,
    removed, reordered, bad genesis, trailing entries removed) or the first table row that
    differs from the chain, and when the chain is empty (nothing to vouch for: usually a
    mistyped state folder); :class:`~socialsearch.errors.LedgerError` when there is no
    ledger (nothing is created).

    Examples
    --------
    >>> import tempfile
    >>> from socialsearch.ledger import Ledger
    >>> state = tempfile.mkdtemp()
    >>> with Ledger.open(state) as ledger:
    ...     _ = ledger.append_audit("note", {"what": "an example"})
    >>> report = audit_verify(state)
    >>> report.entries, report.rows["drafts"]
    (1, 0)
    """
    state = Path(state_dir)
    path = state / LEDGER_FILE
    if not path.is_file():
        what = "no ledger at" if state.is_dir() else "no state folder at"
        raise LedgerError(
            f"{what} {path if state.is_dir() else state}: give the state folder of a weekly run (nothing was created)"
        )
    # The anchor is read first: it is written after each commit, so it can never be ahead of
    # the chain we then read unless entries were removed.
    anchor = read_anchor(state)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    try:
        conn.execute("BEGIN")  # one consistent snapshot
        try:
            if not exists(conn):
                raise not_a_ledger(path)
            refuse_unfinished_rekey(conn, state)
            report = verify_connection(conn, anchor)
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        raise AuditError(f"audit log: {path} cannot be read as a ledger ({exc})") from None
    finally:
        conn.close()
    if report.entries == 0:
        raise AuditError(
            f"audit log of {state} is empty: no run, review or re-identification was ever recorded there, "
            "so there is nothing to verify. Is this the state folder of the weekly run?"
        )
    return report
