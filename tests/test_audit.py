"""The audit chain: a clean log verifies; every kind of tampering is found and located."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch import audit
from socialsearch.audit import GENESIS, canonical_json, entry_hash, verify
from socialsearch.errors import AuditError, LedgerError
from socialsearch.ledger import Ledger


def make_log(state: Path, n: int = 5) -> list[audit.AuditEntry]:
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
        audit.create_schema(conn)
    finally:
        conn.close()


def test_hash_is_sha256_of_the_documented_fields() -> None:
    payload = canonical_json({"b": 1, "a": "æ"})
    assert payload == '{"a":"\\u00e6","b":1}'
    expected = hashlib.sha256(f"{GENESIS}\n1\n2026-11-23T06:00:00+00:00\nrun\n{payload}".encode()).hexdigest()
    assert entry_hash(GENESIS, 1, "2026-11-23T06:00:00+00:00", "run", payload) == expected


def test_clean_log_verifies(tmp_path: Path) -> None:
    written = make_log(tmp_path)
    report = verify(tmp_path)
    assert (report.entries, report.head, report.head_seq, report.anchor_seq) == (5, written[-1].hash, 5, 5)
    assert [e.prev_hash for e in written[1:]] == [e.hash for e in written[:-1]]
    assert written[0].prev_hash == GENESIS
    assert str(report) == (f"audit log ok: 5 entries, head {written[-1].hash}; ledger rows match the log "
                           "(0 runs, 0 drafts, 0 signals, 0 reviews)")


def test_empty_log_is_refused_as_nothing_to_verify(tmp_path: Path) -> None:
    with Ledger.open(tmp_path):
        pass
    with pytest.raises(AuditError, match="is empty"):
        verify(tmp_path)
    report = audit.verify_connection(sqlite3.connect(tmp_path / "ledger.sqlite"), (0, GENESIS))
    assert (report.entries, report.head) == (0, GENESIS)


def test_missing_ledger_is_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger at"):
        verify(tmp_path)
    with pytest.raises(LedgerError, match="no state folder at"):
        verify(tmp_path / "typo")
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
    assert verify(tmp_path).entries == 2


def test_changed_payload_is_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "UPDATE audit SET payload = '{\"i\":3,\"note\":\"forged\"}' WHERE seq = 3")
    with pytest.raises(AuditError, match=r"entry seq 3 \(test\) was changed"):
        verify(tmp_path)


def test_changed_and_rehashed_entry_breaks_the_next_link(tmp_path: Path) -> None:
    written = make_log(tmp_path)
    e = written[2]
    forged = canonical_json({"i": 3, "note": "forged"})
    new_hash = entry_hash(e.prev_hash, e.seq, e.at, e.kind, forged)
    tamper(tmp_path, f"UPDATE audit SET payload = '{forged}', hash = '{new_hash}' WHERE seq = 3")
    with pytest.raises(AuditError, match="entry seq 4 does not link to seq 3"):
        verify(tmp_path)


def test_deleted_middle_entry_is_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "DELETE FROM audit WHERE seq = 3")
    with pytest.raises(AuditError, match=r"entry seq 3 is missing \(removed\)"):
        verify(tmp_path)


def test_deleted_first_entry_is_bad_genesis(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "DELETE FROM audit WHERE seq = 1")
    with pytest.raises(AuditError, match="bad genesis"):
        verify(tmp_path)


def test_deleted_middle_entry_with_renumbering_is_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "DELETE FROM audit WHERE seq = 3", "UPDATE audit SET seq = seq - 1 WHERE seq > 3")
    with pytest.raises(AuditError, match="entry seq 3"):
        verify(tmp_path)


def test_deleted_last_entry_is_found_by_the_anchor(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(tmp_path, "DELETE FROM audit WHERE seq = 5")
    with pytest.raises(AuditError, match=r"audit.head records entry seq 5, but the log ends at seq 4"):
        verify(tmp_path)


def test_deleted_anchor_is_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    (tmp_path / "audit.head").unlink()
    with pytest.raises(AuditError, match="anchor file audit.head is missing"):
        verify(tmp_path)


def test_swapped_entries_are_found(tmp_path: Path) -> None:
    make_log(tmp_path)
    tamper(
        tmp_path,
        "UPDATE audit SET seq = 1000 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = 1000",
    )
    with pytest.raises(AuditError, match="entry seq 2 is out of order"):
        verify(tmp_path)


def test_swapped_contents_are_found(tmp_path: Path) -> None:
    written = make_log(tmp_path)
    a, b = written[1], written[2]
    tamper(
        tmp_path,
        f"UPDATE audit SET payload = '{b.payload}', at = '{b.at}' WHERE seq = 2",
        f"UPDATE audit SET payload = '{a.payload}', at = '{a.at}' WHERE seq = 3",
    )
    with pytest.raises(AuditError, match=r"entry seq 2 \(test\) was changed"):
        verify(tmp_path)


def test_dropped_triggers_alone_are_reported(tmp_path: Path) -> None:
    make_log(tmp_path, 2)
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.close()
    with pytest.raises(AuditError, match="audit_no_delete were removed"):
        verify(tmp_path)


def test_lagging_anchor_is_accepted_and_repaired(tmp_path: Path) -> None:
    written = make_log(tmp_path, 3)
    # a writer killed between its commit and the anchor update leaves the anchor one behind
    (tmp_path / "audit.head").write_text(json.dumps({"seq": 2, "hash": written[1].hash}))
    assert verify(tmp_path).anchor_seq == 2
    with Ledger.open(tmp_path):
        pass
    assert audit.read_anchor(tmp_path) == (3, written[2].hash)


def test_rewritten_anchor_hash_is_found(tmp_path: Path) -> None:
    make_log(tmp_path, 3)
    (tmp_path / "audit.head").write_text(json.dumps({"seq": 3, "hash": "a" * 64}))
    with pytest.raises(AuditError, match="entry seq 3 differs from the one recorded"):
        verify(tmp_path)
    (tmp_path / "audit.head").write_text("not json")
    with pytest.raises(AuditError, match="damaged"):
        verify(tmp_path)


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
