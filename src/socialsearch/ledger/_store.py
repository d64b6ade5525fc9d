"""The open connection every namespace of a :class:`~socialsearch.ledger.Ledger` works through,
with its transaction and the small helpers they share."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._signals import commit_point
from ..contract import contains_cpr_like
from ..errors import LedgerError
from ..weeks import IsoWeek
from . import chain

__all__ = ["Namespace", "Store", "as_week", "json_list", "now", "safe_id"]

log = logging.getLogger(__name__)


def safe_id(value: str) -> str:
    """Quote an id for a message, unless it looks like a CPR number typed by mistake."""
    return "(an id that looks like a CPR number)" if contains_cpr_like(value) else repr(value)


def now() -> str:
    """The current UTC time, ISO 8601 with microseconds and offset."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def as_week(week: IsoWeek | str) -> IsoWeek:
    """``week`` as an :class:`~socialsearch.weeks.IsoWeek`."""
    return week if isinstance(week, IsoWeek) else IsoWeek.parse(str(week))


def json_list(value: Any) -> str:
    """A list as canonical JSON text (sorted keys, no spaces)."""
    items = [] if value is None else list(value)
    return json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class Store:
    """One open ledger connection: its state folder, its transaction and the anchor update."""

    def __init__(self, conn: sqlite3.Connection, state_dir: Path, *, readonly: bool = False) -> None:
        self._conn = conn
        self.state_dir = state_dir
        self.readonly = readonly
        self.opened_at = now()

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection (for reading; write through the namespaces)."""
        return self._conn

    @contextmanager
    def transaction(self, *, final: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception).

        The ``COMMIT`` of a ``final`` transaction (a run, a review, a re-keying, an audit
        entry) is the command's commit point: an interrupt after it no longer stops the
        command (:mod:`socialsearch._signals`).
        """
        if self.readonly:
            raise LedgerError("this ledger was opened read-only")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        if final:
            with commit_point():
                self._commit()
        else:
            self._commit()

    def _commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def commit_audited(self) -> None:
        """After a commit that appended audit entries: move the anchor to the new head.

        The commit is the command's commit point: if the anchor cannot be written now (a full
        disk), the command still completes, and the next writer moves the lagging anchor
        forward (:func:`~socialsearch.ledger.chain.sync_anchor`; ``audit verify`` accepts it).
        """
        seq, digest = chain.head(self._conn)
        try:
            chain.write_anchor(self.state_dir, seq, digest)
        except OSError as exc:
            log.warning("the work is committed, but %s could not be updated (%s); the next command that writes "
                        "to %s updates it", self.state_dir / chain.HEAD_FILE, exc.strerror, self.state_dir)


class Namespace:
    """A namespace of a ledger (``runs``, ``reviews``, ...): works through its :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._store.connection
