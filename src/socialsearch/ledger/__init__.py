"""The ledger: what every weekly run drafted, what the municipalities decided, and the audit chain.

One SQLite database, ``STATE/ledger.sqlite`` (layout: :mod:`socialsearch.ledger._schema`), next
to the lock file ``STATE/lock`` (:mod:`socialsearch.ledger._lock`) and the audit anchor
``STATE/audit.head``. A :class:`Ledger` has four small namespaces, each with one job:

==================  ==========================================================================
``ledger.runs``     check and record a week's run; history for the search; recorded draft ids
``ledger.reviews``  record the municipality's decisions; the latest decision per draft
``ledger.drafts``   one draft, or a filtered list
``ledger.keys``     the key the pseudonyms are made with; refuse another; re-key
==================  ==========================================================================

Each namespace is a module of this package (``runs``, ``reviews``, ``drafts``, ``keys``); the
audit chain is :mod:`~socialsearch.ledger.chain`, the check that the tables agree with it
:mod:`~socialsearch.ledger.integrity`, the SQL layout ``_schema`` and the state lock ``_lock``.

The ledger holds pseudonyms, event references, draft ids, codes and digests only: never a CPR
number, a name or a journal number (those live in the sealed vault). Recording copies only the
columns it knows from the search result, so a stray identifier column cannot leak in.

Integrity: every row that matters is bound to the audit chain (the rules are in
:mod:`socialsearch.ledger.integrity`); decisions are read as the chain records them, so a review row
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

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import LedgerError, StateLockedError
from . import _schema, chain, integrity
from ._lock import LOCK_FILE, lock_state, lock_unless_held, missing_state
from ._rekey import finish_rekey
from ._store import Store, safe_id
from .chain import LEDGER_FILE, AuditEntry, VerifyReport
from .drafts import Drafts
from .integrity import audit_verify
from .keys import Keys
from .reviews import Decision, Reviews, check_decision
from .runs import Runs

__all__ = [
    "LEDGER_FILE", "LOCK_FILE", "SCHEMA_VERSION", "AuditEntry", "Decision", "Drafts", "Keys", "Ledger", "Reviews",
    "Runs", "VerifyReport", "audit_verify", "backup", "check_decision", "lock_state", "require_ledger", "safe_id",
]

SCHEMA_VERSION = _schema.SCHEMA_VERSION


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


class Ledger(Store):
    """The SQLite ledger of one state folder; open it with :meth:`Ledger.open`.

    Examples
    --------
    The weekly run (:func:`socialsearch.run`) reads the history, searches, asks
    ``runs.check`` whether recording would be refused, writes its outputs, then records:

    >>> import tempfile
    >>> import polars as pl
    >>> from socialsearch.hub.search import DRAFT_SCHEMA, SIGNAL_SCHEMA
    >>> from socialsearch.weeks import IsoWeek
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
        super().__init__(conn, state_dir, readonly=readonly)
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
                _schema.check_version(conn, path)
                yield ledger
            finally:
                conn.close()
            return
        state.mkdir(parents=True, exist_ok=True)
        with lock_unless_held(state):
            created = not path.exists()
            conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            try:
                try:
                    if created:
                        os.chmod(path, 0o600)
                    conn.execute("PRAGMA journal_mode=DELETE")
                    conn.execute("PRAGMA synchronous=FULL")
                    conn.execute("PRAGMA foreign_keys=ON")
                    ledger = cls(conn, state)
                    if not create and not _schema.exists(conn):
                        raise _schema.not_a_ledger(path)
                    ledger._ensure_schema()
                    chain.sync_anchor(conn, state)
                    finish_rekey(conn, state)
                except BaseException:
                    if created:  # a ledger that failed while it was being made is removed again
                        conn.close()
                        for leftover in (path, path.with_name(path.name + "-journal"), state / chain.HEAD_FILE):
                            leftover.unlink(missing_ok=True)
                    raise
                yield ledger
            finally:
                conn.close()

    def _ensure_schema(self) -> None:
        # Look first without a write transaction: opening an existing ledger changes no byte.
        path = self.state_dir / LEDGER_FILE
        if not _schema.exists(self._conn):
            with self.transaction(final=False) as conn:
                if not _schema.exists(conn):
                    _schema.create(conn)
        _schema.check_version(self._conn, path)

    # -- audit -----------------------------------------------------------------------------

    def append_audit(self, kind: str, payload: Mapping[str, Any]) -> AuditEntry:
        """Append one audit entry in its own transaction (e.g. ``"reidentify"``).

        The payload must not hold raw CPR numbers, names or journal numbers: pass pseudonyms,
        draft ids, key ids and counts.
        """
        with self.transaction() as conn:
            entry = chain.append(conn, kind, dict(payload))
        self.commit_audited()
        return entry

    def audit_entries(self, kind: str | None = None) -> list[AuditEntry]:
        """The audit entries in order (optionally of one kind)."""
        return chain.entries(self._conn, kind=kind)

    def verify(self) -> VerifyReport:
        """Check the chain, its anchor and every bound table (see :func:`socialsearch.audit_verify`)."""
        return integrity.verify_connection(self._conn, chain.read_anchor(self.state_dir))


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
