"""``ledger.drafts``: one draft as recorded, with its events and decision, or a filtered list."""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import LedgerError
from . import integrity
from ._store import Namespace, as_week, safe_id

__all__ = ["Drafts", "draft_row"]


def draft_row(conn: sqlite3.Connection, state: Path, draft_id: str) -> dict[str, Any]:
    """One ``drafts`` row by id (``persons`` and ``previous_drafts`` as JSON text); a
    :class:`~socialsearch.errors.LedgerError` that says how to list them when there is none."""
    cur = conn.execute(
        "SELECT draft_id, week, municipality, child, age, rule, score, threshold, persons, "
        "previous_drafts, run_id FROM drafts WHERE draft_id = ?",
        (draft_id,),
    )
    row = cur.fetchone()
    if row is None:
        raise LedgerError(
            f"unknown draft {safe_id(draft_id)}: no such draft in the ledger at {state}; "
            f"list them with `socialsearch drafts list --state {state}`"
        )
    return dict(zip([d[0] for d in cur.description], row, strict=True))


class Drafts(Namespace):
    """Reading drafts: one, with its events and decision, or a filtered list."""

    def get(self, draft_id: str) -> dict[str, Any]:
        """One draft as recorded: week, municipality, child pseudonym, persons, event refs, decision.

        ``decision`` is the latest decision as the audit chain records it (``"approve"``,
        ``"dismiss"``) or ``None``; ``review`` holds it with its reason, reviewer and time.
        """
        draft = draft_row(self._conn, self._store.state_dir, draft_id)
        refs = [
            r for (r,) in self._conn.execute(
                "SELECT DISTINCT event_ref FROM draft_signals WHERE draft_id = ? ORDER BY event_ref", (draft_id,)
            )
        ]
        review = integrity.latest_decisions(self._conn, [draft_id]).get(draft_id)
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
            args.append(str(as_week(week)))
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
        decisions = integrity.latest_decisions(self._conn, None if unfiltered else [r[0] for r in rows]) if rows else {}
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
