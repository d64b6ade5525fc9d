"""The audit chain: a clean log verifies; every kind of tampering is found and located."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import tamper as tamper_tables
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.errors import AuditError, LedgerError
from socialsearch.ledger import Ledger, chain, integrity
from socialsearch.ledger.chain import GENESIS, canonical_json, entry_hash
from socialsearch.ledger.integrity import audit_verify


def make_log(state: Path, n: int = 5) -> list[chain.AuditEntry]:
    with Ledger.open(state) as ledger:
        ledger.connection.execute("PRAGMA synchronous=OFF")  # speed only; durability is not tested here
        return [ledger.append_audit("test", {"i": i, "note": f"entry {i}"}) for i in range(1, n + 1)]


def tamper(state: Path, *statements: str) -> None:
    """Bypass the append-only triggers the way an attacker with file access would."""
    conn = sqlite3.connect(state / "ledger.sqlite", isolation_level=None)
    try:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute("DROP TRIGGER audit_chain_only")
        for s in statements:
            conn.execute(s)
        # put the triggers back so that only the chain itself can reveal the change
        chain.create_schema(conn)
    finally:
        conn.close()


def test_hash_is_sha256_of_the_documented_fields() -> None:
    payload = canonical_json({"b": 1, "a": "æ"})
    assert payload == '{"a":"\\u00e6","b":1}'
    expected = hashlib.sha256(f"{GENESIS}\n1\n2026-11-23T06:00:00+00:00\nrun\n{payload}".encode()).hexdigest()
    assert entry_hash(GENESIS, 1, "2026-11-23T06:00:00+00:00", "run", payload) == expected


def test_clean_log_verifies(tmp_path: Path) -> None:
    written = make_log(tmp_path)
    report = audit_verify(tmp_path)
    assert (report.entries, report.head, report.head_seq, report.anchor_seq) == (5, written[-1].hash, 5, 5)
    assert [e.prev_hash for e in written[1:]] == [e.hash for e in written[:-1]]
    assert written[0].prev_hash == GENESIS
    assert str(report) == (f"audit log ok: 5 entries, head {written[-1].hash}; ledger rows match the log "
                           "(0 runs, 0 drafts, 0 signals, 0 reviews)")


def test_empty_log_is_refused_as_nothing_to_verify(tmp_path: Path) -> None:
    with Ledger.open(tmp_path):
        pass
    with pytest.raises(AuditError, match="is empty"):
        audit_verify(tmp_path)
    report = integrity.verify_connection(sqlite3.connect(tmp_path / "ledger.sqlite"), (0, GENESIS))
    assert (report.entries, report.head) == (0, GENESIS)


def test_missing_ledger_is_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger at"):
        audit_verify(tmp_path)
    with pytest.raises(LedgerError, match="no state folder at"):
        audit_verify(tmp_path / "typo")
    assert list(tmp_path.iterdir()) == []


def test_triggers_refuse_update_delete_and_out_of_chain_insert(tmp_path: Path) -> None:
    make_log(tmp_path, 2)
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE refused"):
            conn.execute("UPDATE audit SET payload = '{}' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE refused"):
            conn.execute("DELETE FROM audit WHERE seq = 2")
        with pytest.raises(sqlite3.IntegrityError, match="only grows at its head"):
            conn.execute(
                "INSERT INTO audit VALUES (3, 't', 'x', '{}', ?, ?)", (GENESIS, "f" * 64)
            )
    finally:
        conn.close()
    assert audit_verify(tmp_path).entries == 2


def test_changed_payload_is_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "UPDATE audit SET payload = '{\"i\":3,\"note\":\"forged\"}' WHERE seq = 3")
    with pytest.raises(AuditError, match=r"entry seq 3 \(test\) was changed"):
        audit_verify(tmp_path)


def test_changed_and_rehashed_entry_breaks_the_next_link(tmp_path: Path) -> None:
    written = make_log(tmp_path)
    e = written[2]
    forged = canonical_json({"i": 3, "note": "forged"})
    new_hash = entry_hash(e.prev_hash, e.seq, e.at, e.kind, forged)
    tamper(tmp_path, f"UPDATE audit SET payload = '{forged}', hash = '{new_hash}' WHERE seq = 3")
    with pytest.raises(AuditError, match="entry seq 4 does not link to seq 3"):
        audit_verify(tmp_path)


def test_deleted_middle_entry_is_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "DELETE FROM audit WHERE seq = 3")
    with pytest.raises(AuditError, match=r"entry seq 3 is missing \(removed\)"):
        audit_verify(tmp_path)


def test_deleted_first_entry_is_bad_genesis(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "DELETE FROM audit WHERE seq = 1")
    with pytest.raises(AuditError, match="bad genesis"):
        audit_verify(tmp_path)


def test_deleted_middle_entry_with_renumbering_is_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "DELETE FROM audit WHERE seq = 3", "UPDATE audit SET seq = seq - 1 WHERE seq > 3")
    with pytest.raises(AuditError, match="entry seq 3"):
        audit_verify(tmp_path)


def test_deleted_last_entry_is_found_by_the_anchor(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "DELETE FROM audit WHERE seq = 5")
    with pytest.raises(AuditError, match=r"audit.head records entry seq 5, but the log ends at seq 4"):
        audit_verify(tmp_path)


def test_deleted_anchor_is_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    (tmp_path / "audit.head").unlink()
    with pytest.raises(AuditError, match="anchor file audit.head is missing"):
        audit_verify(tmp_path)


def test_swapped_entries_are_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(
        tmp_path,
        "UPDATE audit SET seq = 1000 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = 1000",
    )
    with pytest.raises(AuditError, match="entry seq 2 is out of order"):
        audit_verify(tmp_path)


def test_swapped_contents_are_found(tmp_path: Path) -> None:
    written = make_log(tmp_path)
    a, b = written[1], written[2]
    tamper(
        tmp_path,
        f"UPDATE audit SET payload = '{b.payload}', at = '{b.at}' WHERE seq = 2",
        f"UPDATE audit SET payload = '{a.payload}', at = '{a.at}' WHERE seq = 3",
    )
    with pytest.raises(AuditError, match=r"entry seq 2 \(test\) was changed"):
        audit_verify(tmp_path)


def test_dropped_triggers_alone_are_reported(tmp_path: Path) -> None:
    make_log(tmp_path, 2)
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.close()
    with pytest.raises(AuditError, match="audit_no_delete were removed"):
        audit_verify(tmp_path)


def test_lagging_anchor_is_accepted_and_repaired(tmp_path: Path) -> None:
    written = make_log(tmp_path, 3)
    # a writer killed between its commit and the anchor update leaves the anchor one behind
    (tmp_path / "audit.head").write_text(json.dumps({"seq": 2, "hash": written[1].hash}))
    assert audit_verify(tmp_path).anchor_seq == 2
    with Ledger.open(tmp_path):
        pass
    assert chain.read_anchor(tmp_path) == (3, written[2].hash)


def test_rewritten_anchor_hash_is_found(tmp_path: Path) -> None:
    make_log(tmp_path, 3)
    (tmp_path / "audit.head").write_text(json.dumps({"seq": 3, "hash": "a" * 64}))
    with pytest.raises(AuditError, match="entry seq 3 differs from the one recorded"):
        audit_verify(tmp_path)
    (tmp_path / "audit.head").write_text("not json")
    with pytest.raises(AuditError, match="damaged"):
        audit_verify(tmp_path)


def test_bad_kind_and_payload_are_refused(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        with pytest.raises(ValueError, match="audit kind"):
            ledger.append_audit("Bad Kind\n", {})
        with pytest.raises(ValueError):
            ledger.append_audit("x", {"v": float("nan")})
        assert ledger.audit_entries() == []


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.booleans())))
def test_canonical_json_roundtrips_and_is_order_independent(payload: dict) -> None:
    text = canonical_json(payload)
    assert json.loads(text) == payload
    assert canonical_json(dict(reversed(list(payload.items())))) == text
    assert "\n" not in text


# --- the chain binds the ledger's tables -------------------------------------------------------


def ledger_with_rows(state: Path) -> None:
    """A run of week 47 (drafts D47-a for 101, D47-b for 147), D47-a dismissed then approved,
    D47-b dismissed; then a re-keying and a second week."""
    from test_ledger import make_drafts, make_signals, week47

    drafts, signals = week47()
    with Ledger.open(state) as ledger:
        ledger.runs.record("2026-W47", drafts, signals, {"key_id": "k1"})
        ledger.reviews.record("D47-a", "dismiss", "kendt sag", "ABC")
        ledger.reviews.record("D47-a", "approve", "ny viden", "ABC")
        ledger.reviews.record("D47-b", "dismiss", "kendt af forvaltningen", "XY")
        ledger.keys.rekey({"C-a": "N-a"}, {"E1": "N1"}, {"to_key_id": "k2"})
        w48 = make_drafts("2026-W48", [{"draft_id": "D48-a", "child": "N-a", "previous_drafts": ["D47-a"]}])
        ledger.runs.record("2026-W48", w48, make_signals([("D48-a", "N-a", "E5", "P-father", True)]),
                           {"key_id": "k2"})


TABLE_TAMPERING: dict[str, tuple[str, ...]] = {
    "review decision": ("UPDATE reviews SET decision = 'approve' WHERE draft_id = 'D47-b'",
                        r"review 3 on draft D47-b \(audit entry seq 4\) was changed behind the audit log; the audit "
                        r"log records 'dismiss'"),
    "review reason": ("UPDATE reviews SET reason = 'noget andet' WHERE review_id = 2", "review 2 .* was changed"),
    "review reviewer": ("UPDATE reviews SET reviewer = 'ZZ' WHERE review_id = 2", "review 2 .* was changed"),
    "review deleted": ("DELETE FROM reviews WHERE review_id = 2", r"review 2 on draft D47-a .* is missing \(deleted"),
    "review inserted": ("INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at) "
                        "VALUES ('D47-b', 'approve', 'ok', 'ABC', '2026-11-30T10:00:00+00:00')",
                        r"review 4 has no audit entry \(inserted"),
    "draft municipality": ("UPDATE drafts SET municipality = '147' WHERE draft_id = 'D47-a'",
                           "drafts or signals of week 2026-W47 differ from what audit entry seq 5 \\(rekey\\)"),
    "draft week": ("UPDATE drafts SET week = '2026-W48' WHERE draft_id = 'D47-b'", "week 2026-W4[78] differ"),
    "draft deleted": ("DELETE FROM drafts WHERE draft_id = 'D48-a'", "belong to no draft"),
    "draft and signals deleted": ("DELETE FROM draft_signals WHERE draft_id = 'D48-a'",
                                  "DELETE FROM drafts WHERE draft_id = 'D48-a'", "week 2026-W48 differ"),
    "draft inserted": ("INSERT INTO drafts SELECT 'D49-x', '2026-W49', 'C-x', municipality, age, rule, score, "
                       "threshold, n_signals, n_new_signals, persons, previous_drafts, statistics, run_id "
                       "FROM drafts LIMIT 1",
                       "week 2026-W49 has drafts that no audit entry recorded"),
    "signal changed": ("UPDATE draft_signals SET weight = 9 WHERE event_ref = 'E5'", "week 2026-W48 differ"),
    "signal district": ("UPDATE draft_signals SET district = 'NJY' WHERE event_ref = 'E5'", "week 2026-W48 differ"),
    "signal deleted": ("DELETE FROM draft_signals WHERE event_ref = 'E2'", "week 2026-W47 differ"),
    "signal orphaned": ("INSERT INTO draft_signals (draft_id, child, event_ref, person, role, link, kind, code, "
                        "weight, new) VALUES ('D-none', 'C-q', 'E7', 'P', 'suspect', 'father', 'offence', '1100', "
                        "2, 1)", "draft_signals: 1 row"),
    "run changed": ("UPDATE runs SET counts = '{\"drafts\":0}' WHERE week = '2026-W48'", "ledger table runs: run"),
    "run deleted": ("DELETE FROM runs WHERE week = '2026-W48'", r"is missing \(deleted"),
    "run inserted": ("INSERT INTO runs SELECT run_id || 'x', week, started_at, finished_at, status, "
                     "catalogue_digest, inputs_digest, key_id, counts, drafts_digest FROM runs LIMIT 1",
                     r"has no audit entry \(inserted"),
}


@pytest.mark.parametrize("case", sorted(TABLE_TAMPERING))
def test_any_change_to_a_ledger_table_is_found(tmp_path: Path, case: str) -> None:
    ledger_with_rows(tmp_path)
    report = audit_verify(tmp_path)
    assert report.rows == {"runs": 2, "reviews": 3, "drafts": 3, "signals": 4}
    *statements, message = TABLE_TAMPERING[case]
    tamper_tables(tmp_path, *statements)
    with pytest.raises(AuditError, match=message):
        audit_verify(tmp_path)
    with Ledger.open(tmp_path) as ledger, pytest.raises(AuditError):
        ledger.verify()


def test_dropped_ledger_triggers_are_reported(tmp_path: Path) -> None:
    ledger_with_rows(tmp_path)
    tamper_tables(tmp_path, "SELECT 1", recreate=False)
    with pytest.raises(AuditError, match="trigger"):
        audit_verify(tmp_path)


def test_decisions_are_read_from_the_chain_not_the_table(tmp_path: Path) -> None:
    ledger_with_rows(tmp_path)
    tamper_tables(tmp_path, "INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at) "
                            "VALUES ('D47-b', 'approve', 'ok', 'ABC', '2026-11-30T10:00:00+00:00')")
    with Ledger.open(tmp_path, readonly=True) as ledger:
        # The forged later row is ignored: the chain's latest decision on D47-b is 'dismiss'.
        assert ledger.reviews.latest(["D47-b"])["D47-b"]["decision"] == "dismiss"
        assert ledger.drafts.get("D47-b")["decision"] == "dismiss"
    tamper_tables(tmp_path, "UPDATE reviews SET decision = 'approve' WHERE review_id = 3")
    with Ledger.open(tmp_path, readonly=True) as ledger:
        with pytest.raises(AuditError, match="the audit log records 'dismiss'"):
            ledger.reviews.latest(["D47-b"])
        with pytest.raises(AuditError):
            ledger.drafts.list()
        assert ledger.reviews.latest(["D47-a"])["D47-a"]["decision"] == "approve"


def test_entries_hold_row_digests_not_free_text(tmp_path: Path) -> None:
    ledger_with_rows(tmp_path)
    with Ledger.open(tmp_path, readonly=True) as ledger:
        run, *_ = ledger.audit_entries("run")
        assert len(run.data["row_sha256"]) == 64 and len(run.data["drafts_digest"]) == 64
        review = ledger.audit_entries("review")[0]
        assert len(review.data["row_sha256"]) == 64 and review.data["reviewer"] == "ABC"
        assert "kendt" not in review.payload
        [rekey] = ledger.audit_entries("rekey")
        assert set(rekey.data["weeks"]) == {"2026-W47"}
