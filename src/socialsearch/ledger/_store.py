"""The open connection every namespace of a :class:`~socialsearch.ledger.Ledger` works through,
with its transaction and the small helpers they share."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..contract import contains_cpr_like
from ..errors import LedgerError
from ..weeks import IsoWeek
from . import chain

__all__ = ["Namespace", "Store", "as_week", "json_list", "now", "safe_id"]


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
    def transaction(self) -> Iterator[sqlite3.Connection]:
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

    def commit_audited(self) -> None:
        """After a commit that appended audit entries: move the anchor to the new head."""
        seq, digest = chain.head(self._conn)
        chain.write_anchor(self.state_dir, seq, digest)


class Namespace:
    """A namespace of a ledger (``runs``, ``reviews``, ...): works through its :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._store.connection
