"""``ledger.keys``: the key the ledger's pseudonyms are made with, and re-keying after a rotation."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import LedgerError
from . import chain, integrity
from ._store import Namespace, json_list

__all__ = ["Keys", "current_key", "refuse_other_key"]


def current_key(conn: sqlite3.Connection) -> str | None:
    """The key of the latest run or re-keying, or ``None`` for an empty ledger."""
    row = conn.execute(
        "SELECT kind, payload FROM audit WHERE kind IN ('run', 'rekey') ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    data = json.loads(row[1])
    key: str | None = data.get("key_id") if row[0] == "run" else data.get("to_key_id")
    return key


def refuse_other_key(current: str | None, key_id: str, state: Path) -> None:
    """Refuse pseudonyms of ``key_id`` in a ledger whose pseudonyms are of ``current``.

    Otherwise every child and event already notified would look new under the new key.
    """
    if current is not None and current != key_id:
        raise LedgerError(
            f"the extracts are pseudonymised with key {key_id}, but the ledger holds pseudonyms "
            f"of key {current}: the key custodian must first run "
            f"`socialsearch keys rekey --keys KEYS --state {state} --to {key_id}` "
            "(see docs/privacy.md, Rotation). Nothing was written"
        )


class Keys(Namespace):
    """The key the ledger's pseudonyms are made with, and re-keying after a rotation."""

    def id(self) -> str | None:
        """The key of the latest run or re-keying, or ``None`` for an empty ledger."""
        return current_key(self._conn)

    def check(self, key_id: str) -> None:
        """Refuse a run whose pseudonyms are made with another key than the ledger's.

        Otherwise every child and event already notified would look new under the new key.
        """
        refuse_other_key(self.id(), key_id, self._store.state_dir)

    def rekey(self, persons: Mapping[str, str], events: Mapping[str, str],
              payload: Mapping[str, Any]) -> dict[str, int]:
        """Replace old pseudonyms and event references by new ones, in ONE transaction with an
        audit entry (kind ``"rekey"``: ``payload``, the counts, and each week's new digest).

        ``persons`` and ``events`` map old → new values. Values not in a map are left as they
        are, so running the same re-keying twice changes nothing the second time. Draft ids
        stay: they name what was sent.
        """
        with self._store.transaction() as conn:
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
                rewritten.append((json_list(sorted(people, key=lambda p: (p["pseudonym"], p["link"]))), draft_id))
            conn.executemany("UPDATE drafts SET persons = ? WHERE draft_id = ?", rewritten)
            counts["draft_persons"] = len(rewritten)
            conn.execute("DROP TABLE _pmap")
            conn.execute("DROP TABLE _emap")
            chain.append(conn, "rekey", {**dict(payload), "counts": counts, "weeks": integrity.week_digests(conn)})
        self._store.commit_audited()
        return counts
