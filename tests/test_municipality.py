"""The municipality's side: single decisions, the decisions file from the page, and the drafts list."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
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


# --- the decisions file: one schema, bounded reading (issue 21) -------------------------------------


def ok(draft_id: str = "D47-a", **fields: Any) -> dict[str, Any]:
    return {"draft_id": draft_id, "decision": "approve", "reason": "Kendt familie", "reviewer": "ABC", **fields}


def refused(state: Path, path: Path, match: str) -> str:
    """Import ``path``, expect one UsageError matching ``match``; nothing recorded."""
    before = (state / "ledger.sqlite").read_bytes()
    with pytest.raises(UsageError, match=match) as err:
        import_decisions(state, path)
    assert (state / "ledger.sqlite").read_bytes() == before and reviews(state) == []
    return str(err.value)


@pytest.mark.parametrize("text", [
    '{"format": "socialsearch-decisions", "format": "socialsearch-decisions", "version": 1, "week": "2026-W47", '
    '"municipality": "101", "decisions": []}',
    '{"format": "socialsearch-decisions", "version": 1, "week": "2026-W47", "municipality": "101", "decisions": '
    '[{"draft_id": "D47-a", "decision": "dismiss", "decision": "approve", "reason": "ok", "reviewer": "AB"}]}',
])
def test_a_key_given_twice_is_refused(state: Path, text: str) -> None:
    path = state / "d.json"
    path.write_text(text, encoding="utf-8")
    message = refused(state, path, "appears twice in one object")
    assert "'format'" in message or "'decision'" in message


def test_keys_the_format_does_not_have_are_refused(state: Path) -> None:
    path = write(state / "d.json", [ok(note="x")], extra=1)
    message = refused(state, path, "unexpected key")
    assert "'extra'" in message and "decision 1: unexpected key(s) 'note'" in message


def test_a_file_over_the_limit_is_refused_after_reading_at_most_the_limit(state: Path) -> None:
    from socialsearch.contract import DECISIONS_FILE_MAX_BYTES

    path = write(state / "d.json", [ok()])
    with path.open("ab") as f:
        f.truncate(DECISIONS_FILE_MAX_BYTES + 1)  # JSON padded with NULs past the limit
    refused(state, path, rf"too large for a decisions file: more than {DECISIONS_FILE_MAX_BYTES:,} bytes")


def test_a_fifo_or_a_device_is_refused_without_blocking(state: Path) -> None:
    fifo = state / "fifo.json"
    os.mkfifo(fifo)  # nobody writes to it: a blocking open would hang the test
    refused(state, fifo, "is not a regular file")
    if Path("/dev/zero").exists():
        refused(state, Path("/dev/zero"), "is not a regular file")


def test_deep_nesting_is_refused_without_recursion(state: Path) -> None:
    path = state / "d.json"
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    refused(state, path, "nested deeper than 3 levels")
    # brackets inside strings do not count; escaped quotes do not end a string
    document = write(state / "e.json", [ok(reason='Se "[[[[{{{{" og \\" ]]]]')])
    assert import_decisions(state, document)["recorded"] == 1


@pytest.mark.parametrize(("reason", "what"), [
    ("ok\x00", "NUL"), ("ok \x1b]0;title\x07", "ESC"), ("ok \u202eevil", "U+202E"), ("ok \u2066x\u2069", "isolate"),
    ("ok\rX", "CR"), ("ok \x85 mere", "C1 NEL"), ("ok \x9b31m", "C1 CSI"),
])
def test_control_and_bidi_characters_in_a_reason_are_refused(state: Path, reason: str, what: str) -> None:
    message = refused(state, write(state / "d.json", [ok(reason=reason)]), "control, bidirectional or invisible")
    assert "\x1b" not in message and "\u202e" not in message
    with pytest.raises(UsageError, match="control, bidirectional"):
        review(state, "D47-a", "approve", reason, "ABC")


def test_a_line_break_in_a_reason_is_kept(state: Path) -> None:
    assert import_decisions(state, write(state / "d.json", [ok(reason="Første linje\nanden linje")]))["recorded"] == 1


def test_a_reason_over_2000_characters_is_refused(state: Path) -> None:
    refused(state, write(state / "d.json", [ok(reason="x" * 2001)]), "2,001 characters; at most 2,000")
    assert import_decisions(state, write(state / "e.json", [ok(reason="x" * 2000)]))["recorded"] == 1


@pytest.mark.parametrize("initials", [
    "\u0410\u0412\u0421",  # Cyrillic А, В, С: look like ABC
    "\u0391\u0392",  # Greek Α, Β
    "A", "ABCDEFG", "abc", "A1", "A B",
])
def test_initials_are_2_to_6_capital_letters(state: Path, initials: str) -> None:
    refused(state, write(state / "d.json", [ok(reviewer=initials)]), "2 to 6 capital letters")


def test_danish_initials_are_accepted_and_review_upper_cases(state: Path) -> None:
    assert import_decisions(state, write(state / "d.json", [ok(reviewer="ÆØÅ")]))["recorded"] == 1
    assert review(state, "D47-b", "dismiss", "ok", " kb ")["reviewer"] == "KB"


def test_the_cli_refuses_a_bad_decisions_file_with_exit_2_and_one_sentence(state: Path) -> None:
    from click.testing import CliRunner

    from socialsearch.cli import cli

    fifo = state / "fifo.json"
    os.mkfifo(fifo)
    deep = state / "deep.json"
    deep.write_bytes(b"[" * 200_000)
    for path, message in ((fifo, "is not a regular file"), (deep, "nested deeper")):
        result = CliRunner().invoke(cli, ["review", "--state", str(state), "--import", str(path)])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_many_reasons_are_checked_with_one_cpr_pass(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 reasons took 24 s when each built its own Polars frame; now one frame for all."""
    import socialsearch.identifiers as identifiers
    from socialsearch.contract import decision_problems

    calls = []
    real = identifiers.normalise_cpr

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(identifiers, "normalise_cpr", counting)
    reasons = [f"Hændelsen 2026-11-17 10:00 er kendt (sag {i})" for i in range(500)] + ["ring 0101901234"]
    found = decision_problems([("dismiss", r, "AB") for r in reasons] + [("dismiss", "far 01.01.90 1234", "AB")])
    assert [bool(p) for p in found] == [False] * 500 + [True, True]
    assert len(calls) == 1


def json_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\u00e6'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[]{}"\\k'), inner, max_size=4),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_the_depth_check_agrees_with_the_parser(value: Any) -> None:
    """Brackets and quotes inside strings (escaped or not) never fool the depth count."""
    from socialsearch.municipality import _depth

    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert _depth(text.encode("utf-8")) == json_depth(value)
