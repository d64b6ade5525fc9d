"""``ledger.reviews``: the municipality's decisions, recorded with an audit entry each and read
as the chain records them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..contract import decision_problems
from ..errors import UsageError
from . import chain, integrity
from ._store import Namespace, now, safe_id
from .drafts import draft_row

__all__ = ["Decision", "Reviews", "check_decision"]



@dataclass(frozen=True)
class Decision:
    """One decision to record: :meth:`Reviews.record_many` takes a list of these."""

    draft_id: str
    decision: str
    reason: str
    reviewer: str


def check_decision(decision: object, reason: object, reviewer: object) -> list[str]:
    """Every problem with one decision's fields (empty when it may be recorded); the rules are
    :data:`~socialsearch.contract.DECISIONS_SCHEMA`'s (:func:`~socialsearch.contract.decision_problems`).

    Messages describe, never quote, the reason: it may hold what it must not.
    """
    return decision_problems([(decision, reason, reviewer)])[0]


class Reviews(Namespace):
    """The municipality's decisions: recorded with an audit entry each, read as the chain says."""

    def record(
        self, draft_id: str, decision: str, reason: str, reviewer: str, *, source: str | None = None
    ) -> dict[str, Any]:
        """Record a decision on a draft and append an audit entry (kind ``review``).

        The reason is kept in ``reviews``; the audit entry holds the row's sha256, so free
        text never enters the append-only log. A reason that could hold a CPR number
        (:func:`~socialsearch.contract.contains_cpr_like`) is refused; ``reviewer`` is the
        reviewer's initials (2–6 capital letters); ``source`` says where the decision came from (an
        imported file's sha256).
        """
        [recorded] = self.record_many([Decision(draft_id, decision, reason, reviewer)], source=source)
        return recorded

    def record_many(self, decisions: Sequence[Decision], *, source: str | None = None) -> list[dict[str, Any]]:
        """Record several decisions all-or-nothing, in one transaction (one audit entry each)."""
        checked = decision_problems([(d.decision, d.reason, d.reviewer) for d in decisions])
        for d, problems in zip(decisions, checked, strict=True):
            if problems:
                raise UsageError(f"cannot record the decision on draft {safe_id(d.draft_id)}: " + "; ".join(problems))
        decided_at = now()
        out = []
        with self._store.transaction() as conn:
            for d in decisions:
                draft = draft_row(conn, self._store.state_dir, d.draft_id)
                reason, reviewer = d.reason.strip(), d.reviewer.strip()
                cur = conn.execute(
                    "INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at, source) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (d.draft_id, d.decision, reason, reviewer, decided_at, source),
                )
                review_id = int(cur.lastrowid or 0)
                entry = chain.append(conn, "review", {
                    "review_id": review_id,
                    "draft_id": d.draft_id,
                    "week": draft["week"],
                    "municipality": draft["municipality"],
                    "decision": d.decision,
                    "reviewer": reviewer,
                    "reason_sha256": hashlib.sha256(reason.encode("utf-8")).hexdigest(),
                    "source": source,
                    "row_sha256": integrity.review_hash(conn, review_id),
                }, at=decided_at)
                out.append({"draft_id": d.draft_id, "decision": d.decision, "reason": reason, "reviewer": reviewer,
                            "decided_at": decided_at, "source": source, "audit_seq": entry.seq})
        self._store.commit_audited()
        return out

    def latest(self, draft_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """draft_id → the latest decision (``decision``, ``reason``, ``reviewer``, ``decided_at``).

        Read as the AUDIT CHAIN records it: the chain's latest review entry per draft, whose
        row must still hash to what the entry holds (else
        :class:`~socialsearch.errors.AuditError`). A row inserted behind the chain is ignored.
        Drafts without a decision are absent.
        """
        return integrity.latest_decisions(self._conn, draft_ids)
