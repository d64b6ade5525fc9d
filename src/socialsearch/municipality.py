"""The municipality's side: decisions on its drafts, recorded in the ledger and the audit log."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .ledger import Ledger, lock_state

__all__ = ["review_draft"]


def review_draft(state_dir: Path, draft_id: str, decision: str, reason: str) -> None:
    """Record a municipality's decision (``approve`` or ``dismiss``) on a draft."""
    if not reason.strip():
        raise UsageError("--reason must not be empty: say why the draft is approved or dismissed")
    with lock_state(state_dir), Ledger.open(state_dir) as ledger:
        ledger.review(draft_id, decision, reason)
