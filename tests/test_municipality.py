"""The municipality's side: single decisions, the decisions file from the page, and the drafts list."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_ledger import week47

from socialsearch.errors import LedgerError, UsageError
from socialsearch.ledger import Ledger, integrity
from socialsearch.municipality import drafts_list, import_decisions, review

CPR_SPELLINGS = {
    "space": "far 010190 1234 kendt",
    "en dash": "far 010190\u20131234 kendt",
    "dots": "far 01.01.90.1234 kendt",
    "dots and dash": "far 01.01.90-1234",
    "spaced pairs": "01 01 90 1234",
    "glued to text": "sag0101901234",
    "glued both sides": "ring0101901234x",
    "ten digits": "1234567890",
    "slash": "010190/1234",
}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A ledger with week 2026-W47: D47-a for municipality 101, D47-b for 147."""
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
    return tmp_path


def write(path: Path, decisions: list[dict[str, Any]], **top: Any) -> Path:
    document = {"format": "socialsearch-decisions", "version": 1, "week": "2026-W47", "municipality": "101",
                "decisions": decisions, **top}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def reviews(state: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(state / "ledger.sqlite")
    try:
        return conn.execute("SELECT draft_id, decision, reason, reviewer, source FROM reviews ORDER BY review_id")\
            .fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("spelling", sorted(CPR_SPELLINGS))
def test_a_reason_with_a_cpr_number_in_any_spelling_is_refused(state: Path, spelling: str) -> None:
    reason = CPR_SPELLINGS[spelling]
    with pytest.raises(UsageError, match="CPR number") as err:
        review(state, "D47-a", "approve", reason, "ABC")
    assert "1234" not in str(err.value) and reason not in str(err.value)
    path = write(state / "decisions.json", [{"draft_id": "D47-a", "decision": "approve", "reason": reason,
                                            "reviewer": "ABC"}])
    with pytest.raises(UsageError, match="decision 1 .*reason: seems to contain a CPR number") as err:
        import_decisions(state, path)
    assert "1234" not in str(err.value)
    assert reviews(state) == []


@pytest.mark.parametrize("reason", ["Kendt familie; 3 børn, uge 47", "tlf. 12 34 56 78 hos skolen", "sag 2026-11-17"])
def test_ordinary_reasons_pass(state: Path, reason: str) -> None:
    review(state, "D47-a", "dismiss", reason, "ABC")
    assert reviews(state) == [("D47-a", "dismiss", reason, "ABC", None)]


def test_import_records_all_decisions_with_the_file_digest_and_is_idempotent(state: Path) -> None:
    with Ledger.open(state) as ledger:
        ledger.runs.record("2026-W47", *_two_drafts_for_101())
    path = write(state / "decisions.json", [
        {"draft_id": "D47-a", "decision": "approve", "reason": "Relevant", "reviewer": "ABC"},
        {"draft_id": "D47-c", "decision": "dismiss", "reason": "Kendt", "reviewer": "ABC"},
    ])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    report = import_decisions(state, path)
    assert (report["recorded"], report["unchanged"], report["file_sha256"]) == (2, 0, digest)
    assert reviews(state) == [("D47-a", "approve", "Relevant", "ABC", digest),
                              ("D47-c", "dismiss", "Kendt", "ABC", digest)]
    with Ledger.open(state, readonly=True) as ledger:
        assert [e.data["source"] for e in ledger.audit_entries("review")] == [digest, digest]
    again = import_decisions(state, path)
    assert (again["recorded"], again["unchanged"]) == (0, 2)
    assert len(reviews(state)) == 2
    # A changed decision in a new file is recorded; the unchanged one is not.
    path = write(state / "decisions.json", [
        {"draft_id": "D47-a", "decision": "dismiss", "reason": "Fejl", "reviewer": "ABC"},
        {"draft_id": "D47-c", "decision": "dismiss", "reason": "Kendt", "reviewer": "ABC"},
    ])
    assert import_decisions(state, path)["recorded"] == 1
    assert [r["decision"] for r in drafts_list(state, municipality="101")] == ["dismiss", "dismiss"]
    assert integrity.audit_verify(state).rows["reviews"] == 3  # type: ignore[index]


def _two_drafts_for_101() -> tuple[Any, Any]:
    from test_ledger import make_drafts, make_signals

    drafts = make_drafts("2026-W47", [{"draft_id": "D47-a", "child": "C-a"},
                                      {"draft_id": "D47-b", "child": "C-b", "municipality": "147"},
                                      {"draft_id": "D47-c", "child": "C-c"}])
    signals = make_signals([("D47-a", "C-a", "E1", "P-father", True), ("D47-a", "C-a", "E2", "P-father", True),
                            ("D47-b", "C-b", "E3", "P-other", True), ("D47-c", "C-c", "E4", "P-c", True)])
    return drafts, signals


def test_import_reports_every_problem_at_once_and_records_nothing(state: Path) -> None:
    path = write(state / "decisions.json", [
        {"draft_id": "D47-a", "decision": "approve", "reason": "ok", "reviewer": "ABC"},       # fine
        {"draft_id": "D47-b", "decision": "approve", "reason": "ok", "reviewer": "ABC"},       # municipality 147
        {"draft_id": "D-unknown", "decision": "approve", "reason": "ok", "reviewer": "ABC"},   # not in the ledger
        {"draft_id": "D47-a", "decision": "maybe", "reason": "ok", "reviewer": "ABC"},         # twice; bad decision
        {"draft_id": "0101901234", "decision": "approve", "reason": " ", "reviewer": "A1"},    # id like a CPR
        "not an object",
    ])
    before = (state / "ledger.sqlite").read_bytes()
    with pytest.raises(UsageError) as err:
        import_decisions(state, path)
    text = str(err.value)
    assert "nothing was recorded" in text
    for fragment in ("decision 2, draft_id: 'D47-b' is a draft of week 2026-W47 for municipality 147",
                     "decision 3, draft_id: 'D-unknown' is not a draft in this ledger",
                     "decision 4, draft_id: 'D47-a' is decided twice",
                     "decision 4 ('D47-a'), decision: expected one of approve, dismiss",
                     "decision 5 ((an id that looks like a CPR number)), reason: must not be empty",
                     "reviewer: expected the reviewer's initials", "decision 6: expected an object"):
        assert fragment in text
    assert "0101901234" not in text
    assert (state / "ledger.sqlite").read_bytes() == before


@pytest.mark.parametrize(("document", "message"), [
    (b"\xff\xfe{", "expected UTF-8 JSON"),
    (b"{\"format\": \"socialsearch-decisions\", ", "line 1"),
    (b"[]", "expected \"format\""),
    (json.dumps({"format": "socialsearch-decisions", "version": 2}).encode(), "version 2 is not supported"),
    (json.dumps({"format": "socialsearch-decisions", "version": 1, "week": "W47", "municipality": "1",
                 "decisions": []}).encode(), "week: expected an ISO week"),
])
def test_a_malformed_file_is_refused(state: Path, document: bytes, message: str) -> None:
    path = state / "decisions.json"
    path.write_bytes(document)
    with pytest.raises(UsageError, match=message):
        import_decisions(state, path)


def test_a_byte_order_mark_is_tolerated(state: Path) -> None:
    path = write(state / "d.json", [{"draft_id": "D47-a", "decision": "approve", "reason": "ok", "reviewer": "AB"}])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert import_decisions(state, path)["recorded"] == 1


def test_other_week_is_refused(state: Path) -> None:
    path = write(state / "d.json", [{"draft_id": "D47-a", "decision": "approve", "reason": "ok", "reviewer": "AB"}],
                 week="2026-W48")
    with pytest.raises(UsageError, match="not of this file's week and municipality"):
        import_decisions(state, path)


def test_review_and_list_need_an_existing_ledger(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no state folder"):
        review(tmp_path / "typo", "D47-a", "approve", "ok", "ABC")
    with pytest.raises(LedgerError, match="no ledger at"):
        drafts_list(tmp_path)
    path = write(tmp_path / "d.json", [])
    with pytest.raises(LedgerError, match="no ledger at"):
        import_decisions(tmp_path, path)
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]
