"""The municipality's side: its drafts, and decisions on them recorded in the ledger and the audit log.

Decisions come one at a time (:func:`review`, ``socialsearch review --draft``) or as the
file the caseworker's page produces (:func:`import_decisions`, ``socialsearch review --import``)::

    {"format": "socialsearch-decisions", "version": 1, "week": "2026-W47", "municipality": "101",
     "decisions": [{"draft_id": "D2026-W47-k1a2b3c4d-0123456789abcdef", "decision": "approve",
                    "reason": "Kendt familie, tages op på teammøde", "reviewer": "ABC"}]}

A file is validated whole before anything is recorded: every draft must be a known draft of
that week and municipality, every reason free of anything that could be a CPR number, every
reviewer 1–8 letters; then all of its new decisions are recorded in one transaction, each
audit entry carrying the file's sha256. A decision equal to the one already recorded for the
draft (same decision, reason and reviewer) is not recorded again, so importing a file twice
changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from .errors import UsageError
from .hub.drafts import DECISIONS_FORMAT  # the page writes what review --import reads: one name for both
from .ledger import Decision, Ledger, check_decision, require_ledger, safe_id
from .weeks import IsoWeek

__all__ = ["DECISIONS_FORMAT", "drafts_list", "import_decisions", "review"]

_MUNICIPALITY = re.compile(r"^\d{3}$")
_LIMIT = 20


def review(state_dir: str | Path, draft_id: str, decision: str, reason: str, reviewer: str) -> dict[str, Any]:
    """Record a municipality's decision (``approve`` or ``dismiss``) on a draft (``socialsearch review``).

    ``reason`` says why (kept in the ledger; nothing that could be a CPR number), ``reviewer``
    is the caseworker's initials (1–8 letters). The state folder and its ledger must exist
    (nothing is created). A whole page's decisions: :func:`import_decisions`.
    """
    with Ledger.open(state_dir, create=False) as ledger:
        return ledger.reviews.record(draft_id, decision, reason, reviewer)


def drafts_list(
    state_dir: str | Path, *, week: str | IsoWeek | None = None, municipality: str | None = None, pending: bool = False
) -> list[dict[str, Any]]:
    """The drafts in the ledger (draft_id, week, municipality, rule, score, age, decision,
    reviewer, decided_at), decisions as the audit chain records them; nothing is created."""
    with Ledger.open(state_dir, readonly=True) as ledger:
        return ledger.drafts.list(week=None if week is None else str(IsoWeek.parse(str(week))),
                                  municipality=municipality, pending=pending)


def _refuse(path: Path, problems: list[str]) -> UsageError:
    shown = problems[:_LIMIT]
    more = [f"... and {len(problems) - _LIMIT} more"] if len(problems) > _LIMIT else []
    return UsageError(
        f"{path}: {len(problems)} problem(s) in the decisions file; nothing was recorded:\n  "
        + "\n  ".join(shown + more)
    )


def _read(path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the decisions file {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a byte-order mark is tolerated
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise UsageError(
            f"{path} is not a decisions file: expected UTF-8 JSON{where}, as the drafts page downloads it"
        ) from None
    if not isinstance(data, dict) or data.get("format") != DECISIONS_FORMAT:
        raise UsageError(f"{path} is not a decisions file: expected \"format\": \"{DECISIONS_FORMAT}\"")
    if data.get("version") != 1:
        raise UsageError(f"{path}: decisions file version {data.get('version')!r} is not supported (expected 1)")
    return raw, data


def _validate(path: Path, data: dict[str, Any], ledger: Ledger) -> list[Decision]:
    """Every problem of the file at once, or the decisions to consider."""
    problems: list[str] = []
    week, municipality = data.get("week"), data.get("municipality")
    if not isinstance(week, str) or not re.match(r"^\d{4}-W\d{2}$", week):
        problems.append("week: expected an ISO week such as 2026-W47")
    if not isinstance(municipality, str) or not _MUNICIPALITY.match(municipality):
        problems.append("municipality: expected a three-digit kommunekode such as 101")
    items = data.get("decisions")
    if not isinstance(items, list) or not items:
        problems.append("decisions: expected a non-empty list")
        items = []
    decisions: list[Decision] = []
    seen: set[str] = set()
    known = {d["draft_id"]: d for d in ledger.drafts.list()}
    for n, item in enumerate(items, start=1):
        where = f"decision {n}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object with draft_id, decision, reason, reviewer")
            continue
        draft_id = item.get("draft_id")
        if not isinstance(draft_id, str) or not draft_id:
            problems.append(f"{where}, draft_id: missing")
            continue
        draft = known.get(draft_id)
        if draft is None:
            problems.append(f"{where}, draft_id: {safe_id(draft_id)} is not a draft in this ledger")
        elif draft["municipality"] != municipality or draft["week"] != week:
            problems.append(
                f"{where}, draft_id: {safe_id(draft_id)} is a draft of week {draft['week']} for municipality "
                f"{draft['municipality']}, not of this file's week and municipality"
            )
        if draft_id in seen:
            problems.append(f"{where}, draft_id: {safe_id(draft_id)} is decided twice in this file")
        seen.add(draft_id)
        decision, reason, reviewer = item.get("decision"), item.get("reason"), item.get("reviewer")
        problems += [f"{where} ({safe_id(draft_id)}), {p}" for p in check_decision(decision, reason, reviewer)]
        if isinstance(decision, str) and isinstance(reason, str) and isinstance(reviewer, str):
            decisions.append(Decision(draft_id, decision, reason, reviewer))
    if problems:
        raise _refuse(path, problems)
    return decisions


def _already_recorded(decision: Decision, latest: dict[str, Any] | None) -> bool:
    """Whether the draft's latest decision is this one (same decision, reason and reviewer)."""
    return latest is not None and (latest["decision"], latest["reason"], latest["reviewer"]) == (
        decision.decision, decision.reason.strip(), decision.reviewer.strip()
    )


def import_decisions(state_dir: str | Path, path: str | Path) -> dict[str, Any]:
    """Record the decisions of a ``decisions.json`` file from the drafts page, all or nothing.

    Returns the file's sha256 and how many decisions were recorded and how many were already
    recorded (unchanged). The state folder and its ledger must exist (nothing is created).
    """
    path = Path(path)
    require_ledger(state_dir)
    raw, data = _read(path)
    digest = hashlib.sha256(raw).hexdigest()
    with Ledger.open(state_dir, create=False) as ledger:
        decisions = _validate(path, data, ledger)
        latest = ledger.reviews.latest([d.draft_id for d in decisions])
        new = [d for d in decisions if not _already_recorded(d, latest.get(d.draft_id))]
        recorded = ledger.reviews.record_many(new, source=digest) if new else []
    return {
        "file_sha256": digest,
        "week": data["week"],
        "municipality": data["municipality"],
        "recorded": len(recorded),
        "unchanged": len(decisions) - len(recorded),
        "decisions": [{"draft_id": r["draft_id"], "decision": r["decision"]} for r in recorded],
    }
