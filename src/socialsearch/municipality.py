"""The municipality's side: its drafts, and decisions on them recorded in the ledger and the audit log.

Decisions come one at a time (:func:`review`, ``socialsearch review --draft``) or as the
file the caseworker's page produces (:func:`import_decisions`, ``socialsearch review --import``)::

    {"format": "socialsearch-decisions", "version": 1, "week": "2026-W47", "municipality": "101",
     "decisions": [{"draft_id": "D2026-W47-k1a2b3c4d-0123456789abcdef", "decision": "approve",
                    "reason": "Kendt familie, tages op på teammøde", "reviewer": "ABC"}]}

A file is validated whole before anything is recorded, by the schema the page itself checks
(:data:`~socialsearch.contract.DECISIONS_SCHEMA`): a regular file of at most
:data:`~socialsearch.contract.DECISIONS_FILE_MAX_BYTES`, JSON nested no deeper than the format
needs, no key twice in one object and no key the format does not have; every draft a known draft
of that week and municipality; every reason at most 2,000 characters, without control or
bidirectional characters and free of anything that could be a CPR number; every reviewer 2–6
capital letters. Then all of its new decisions are recorded in one transaction, each audit entry
carrying the file's sha256. A decision equal to the one already recorded for the
draft (same decision, reason and reviewer) is not recorded again, so importing a file twice
changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ._terminal import printable
from .contract import DECISIONS_FILE_MAX_BYTES, DECISIONS_SCHEMA, decision_problems
from .errors import UsageError
from .hub.drafts import DECISIONS_FORMAT  # the page writes what review --import reads: one name for both
from .ledger import Decision, Ledger, require_ledger, safe_id
from .weeks import IsoWeek

__all__ = ["DECISIONS_FORMAT", "drafts_list", "import_decisions", "review"]

_LIMIT = 20


def review(state_dir: str | Path, draft_id: str, decision: str, reason: str, reviewer: str) -> dict[str, Any]:
    """Record a municipality's decision (``approve`` or ``dismiss``) on a draft (``socialsearch review``).

    ``reason`` says why (kept in the ledger; nothing that could be a CPR number), ``reviewer``
    is the caseworker's initials (2–6 letters A–Z, Æ, Ø, Å; upper-cased here, as the page
    does). The state folder and its ledger must exist (nothing is created). A whole page's
    decisions: :func:`import_decisions`.
    """
    with Ledger.open(state_dir, create=False) as ledger:
        return ledger.reviews.record(draft_id, decision, reason, reviewer.strip().upper())


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


class _DuplicateKey(ValueError):
    """A JSON object names a key twice (the standard library would keep the last silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicated = next(k for k in keys if keys.count(k) > 1)
        raise _DuplicateKey(duplicated)
    return dict(pairs)


def _depth(raw: bytes) -> int:
    """The deepest nesting of objects and arrays in JSON text, brackets inside strings left out.

    Linear and without recursion, whatever the text: a quote preceded by an odd run of
    backslashes is escaped; the unescaped quotes open and close strings; the brackets outside
    them step the depth up and down. (On text that is not JSON the count may be off past the
    first error; the parser then stops at that error before it goes any deeper.)
    """
    text = np.frombuffer(raw, dtype=np.uint8)
    quotes = np.flatnonzero(text == ord('"'))
    if quotes.size:
        position = np.arange(text.size, dtype=np.int64)
        last_plain = np.maximum.accumulate(np.where(text != ord("\\"), position, -1))
        del position
        before = quotes - 1
        run = np.where(before >= 0, before - last_plain[np.maximum(before, 0)], 0)
        del last_plain
        quotes = quotes[run % 2 == 0]
    opens = np.flatnonzero((text == ord("[")) | (text == ord("{")))
    closes = np.flatnonzero((text == ord("]")) | (text == ord("}")))
    opens = opens[np.searchsorted(quotes, opens) % 2 == 0]
    closes = closes[np.searchsorted(quotes, closes) % 2 == 0]
    order = np.argsort(np.concatenate([opens, closes]), kind="stable")
    steps = np.concatenate([np.ones(opens.size, np.int64), -np.ones(closes.size, np.int64)])[order]
    return int(np.cumsum(steps).max(initial=0))


def _read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never blocks on a FIFO or device."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError(f"cannot read the decisions file {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{path} is not a regular file: give the decisions.json the drafts page downloaded")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UsageError(f"cannot read the decisions file {path}: {exc.strerror or type(exc).__name__}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise UsageError(f"{path} is too large for a decisions file: more than {limit:,} bytes")
    return b"".join(chunks)


def _read(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its JSON object, read within :data:`DECISIONS_FILE_MAX_BYTES`."""
    raw = _read_bounded(path, DECISIONS_FILE_MAX_BYTES)
    not_decisions = f"{path} is not a decisions file"
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is tolerated
    except UnicodeDecodeError:
        raise UsageError(f"{not_decisions}: expected UTF-8 JSON, as the drafts page downloads it") from None
    limit = DECISIONS_SCHEMA["maxDepth"]
    if _depth(raw) > limit:
        raise UsageError(f"{not_decisions}: objects and lists nested deeper than {limit} levels")
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise UsageError(f"{not_decisions}: the key {_quote(str(exc))} appears twice in one object; "
                         "a file must say each thing once") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{not_decisions}: expected UTF-8 JSON (line {exc.lineno}, column {exc.colno}), "
            "as the drafts page downloads it"
        ) from None
    except RecursionError:  # the depth check above makes this unreachable; a sentence all the same
        raise UsageError(f"{not_decisions}: objects and lists nested deeper than {limit} levels") from None
    if not isinstance(data, dict) or data.get("format") != DECISIONS_FORMAT:
        raise UsageError(f"{not_decisions}: expected \"format\": \"{DECISIONS_FORMAT}\"")
    if data.get("version") != 1:
        shown = data.get("version") if isinstance(data.get("version"), int) else "of another kind"
        raise UsageError(f"{path}: decisions file version {shown} is not supported (expected 1)")
    return raw, data


_TOP = DECISIONS_SCHEMA["properties"]
_ITEM = _TOP["decisions"]["items"]
_WEEK = re.compile(_TOP["week"]["pattern"])
_MUNICIPALITY = re.compile(_TOP["municipality"]["pattern"])
_DRAFT_ID = re.compile(_ITEM["properties"]["draft_id"]["pattern"])


def _quote(key: str) -> str:
    """A key of the file, shortened, for a message (never one that looks like a CPR number)."""
    return printable(safe_id(key if len(key) <= 40 else key[:40] + "..."))


def _extra_keys(found: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    return [_quote(k) for k in found if k not in schema["properties"]]


def _validate(path: Path, data: dict[str, Any], ledger: Ledger) -> list[Decision]:
    """Every problem of the file at once (:data:`DECISIONS_SCHEMA`), or the decisions to consider."""
    problems: list[str] = []
    extra = _extra_keys(data, DECISIONS_SCHEMA)
    if extra:
        problems.append(f"unexpected key(s) {', '.join(extra)}: a decisions file holds only "
                        + ", ".join(DECISIONS_SCHEMA["required"]))
    week, municipality = data.get("week"), data.get("municipality")
    if not isinstance(week, str) or not _WEEK.match(week):
        problems.append("week: expected an ISO week such as 2026-W47")
    if not isinstance(municipality, str) or not _MUNICIPALITY.match(municipality):
        problems.append("municipality: expected a three-digit kommunekode such as 101")
    items = data.get("decisions")
    if not isinstance(items, list) or not items:
        problems.append("decisions: expected a non-empty list")
        items = []
    decisions: list[Decision] = []
    per_item: list[list[str]] = []  # each decision's problems, in file order
    fields: list[tuple[object, object, object]] = []
    checked: list[tuple[int, str]] = []  # (index into per_item, label) of each checked decision
    seen: set[str] = set()
    known = {d["draft_id"]: d for d in ledger.drafts.list()}
    for n, item in enumerate(items, start=1):
        where = f"decision {n}"
        found: list[str] = []
        per_item.append(found)
        if not isinstance(item, dict):
            found.append(f"{where}: expected an object with draft_id, decision, reason, reviewer")
            continue
        extra = _extra_keys(item, _ITEM)
        if extra:
            found.append(f"{where}: unexpected key(s) {', '.join(extra)}; expected draft_id, decision, reason, "
                         "reviewer only")
        draft_id = item.get("draft_id")
        if not isinstance(draft_id, str) or not draft_id:
            found.append(f"{where}, draft_id: missing")
            continue
        draft = known.get(draft_id)
        shown = safe_id(draft_id) if len(draft_id) <= 96 else "an over-long id"
        if not _DRAFT_ID.match(draft_id):
            found.append(f"{where}, draft_id: {shown} is not a draft id (D followed by letters, digits and dashes)")
        elif draft is None:
            found.append(f"{where}, draft_id: {shown} is not a draft in this ledger")
        elif draft["municipality"] != municipality or draft["week"] != week:
            found.append(
                f"{where}, draft_id: {safe_id(draft_id)} is a draft of week {draft['week']} for municipality "
                f"{draft['municipality']}, not of this file's week and municipality"
            )
        if draft_id in seen:
            found.append(f"{where}, draft_id: {shown} is decided twice in this file")
        seen.add(draft_id)
        decision, reason, reviewer = item.get("decision"), item.get("reason"), item.get("reviewer")
        fields.append((decision, reason, reviewer))
        checked.append((n - 1, f"{where} ({shown})"))
        if isinstance(decision, str) and isinstance(reason, str) and isinstance(reviewer, str):
            decisions.append(Decision(draft_id, decision, reason, reviewer))
    for (index, label), found in zip(checked, decision_problems(fields), strict=True):
        per_item[index] += [f"{label}, {p}" for p in found]
    problems += [p for found in per_item for p in found]
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
