"""The ledger: schema constraints, idempotent re-runs, week order, history, reviews, lock, privacy."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from socialsearch.errors import LedgerError, StateLockedError, UsageError
from socialsearch.ledger import Ledger, backup, chain, integrity, lock_state
from socialsearch.weeks import IsoWeek

TZ = ZoneInfo("Europe/Copenhagen")
PERSONS = pl.List(pl.Struct({"pseudonym": pl.String, "link": pl.String}))


def make_drafts(week: str, rows: list[dict]) -> pl.DataFrame:
    """Drafts frame per the result schema; rows give draft_id, child, municipality, score ..."""
    data = [
        {
            "draft_id": r["draft_id"],
            "week": week,
            "child": r["child"],
            "municipality": r.get("municipality", "101"),
            "age": r.get("age", 7),
            "rule": r.get("rule", "threshold"),
            "score": r.get("score", 4),
            "threshold": 3,
            "n_signals": r.get("n_signals", 2),
            "n_new_signals": r.get("n_new_signals", 2),
            "persons": r.get("persons", [{"pseudonym": "P-father", "link": "father"}]),
            "previous_drafts": r.get("previous_drafts", []),
        }
        for r in rows
    ]
    schema = {
        "draft_id": pl.String, "week": pl.String, "child": pl.String, "municipality": pl.String,
        "age": pl.Int64, "rule": pl.String, "score": pl.Int64, "threshold": pl.Int64,
        "n_signals": pl.Int64, "n_new_signals": pl.Int64, "persons": PERSONS,
        "previous_drafts": pl.List(pl.String),
    }
    return pl.DataFrame(data, schema=schema)


def make_signals(rows: list[tuple[str, str, str, str, bool]]) -> pl.DataFrame:
    """Signals frame: rows of (draft_id, child, event_ref, person, new)."""
    t = datetime(2026, 11, 17, 10, 30, tzinfo=TZ)
    return pl.DataFrame(
        {
            "draft_id": [r[0] for r in rows],
            "child": [r[1] for r in rows],
            "event_ref": [r[2] for r in rows],
            "registered_at": [t] * len(rows),
            "occurred_at": [t] * len(rows),
            "district": ["KBH"] * len(rows),
            "municipality": ["101"] * len(rows),
            "kind": ["offence"] * len(rows),
            "code": ["1100"] * len(rows),
            "label": ["Vold"] * len(rows),
            "category": ["violence"] * len(rows),
            "category_label": ["Vold"] * len(rows),
            "role": ["suspect"] * len(rows),
            "link": ["father"] * len(rows),
            "person": [r[3] for r in rows],
            "weight": [2] * len(rows),
            "new": [r[4] for r in rows],
            "resolved_by": ["cpr"] * len(rows),
            "match_probability": [None] * len(rows),
        },
        schema_overrides={
            "registered_at": pl.Datetime("us", "Europe/Copenhagen"),
            "occurred_at": pl.Datetime("us", "Europe/Copenhagen"),
            "match_probability": pl.Float64,
            "weight": pl.Int64,
        },
    )


def week47() -> tuple[pl.DataFrame, pl.DataFrame]:
    drafts = make_drafts("2026-W47", [
        {"draft_id": "D47-a", "child": "C-a"},
        {"draft_id": "D47-b", "child": "C-b", "municipality": "147"},
    ])
    signals = make_signals([
        ("D47-a", "C-a", "E1", "P-father", True),
        ("D47-a", "C-a", "E2", "P-father", True),
        ("D47-b", "C-b", "E3", "P-other", True),
    ])
    return drafts, signals


def table(state: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(state / "ledger.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_open_creates_schema_with_pragmas_and_anchor(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        conn = ledger.connection
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "drafts", "draft_signals", "reviews", "audit", "schema_version"} <= names
        assert ledger.runs.latest_week() is None
    assert chain.read_anchor(tmp_path) == (0, chain.GENESIS)
    assert (tmp_path / "ledger.sqlite").stat().st_mode & 0o077 == 0


def test_record_run_stores_rows_and_audit_entry(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        run_id = ledger.runs.record("2026-W47", drafts, signals, {"key_id": "k1", "catalogue_digest": "c" * 64})
        assert ledger.runs.weeks() == ["2026-W47"]
        [run] = ledger.runs.recorded()
        assert run["run_id"] == run_id and run["status"] == "recorded"
        assert run["counts"] == {"drafts": 2, "signals": 3, "new_signals": 3}
        [entry] = ledger.audit_entries("run")
        assert entry.data["week"] == "2026-W47" and entry.data["key_id"] == "k1"
        assert entry.data["catalogue_digest"] == "c" * 64 and entry.data["run_id"] == run_id
    rows = table(tmp_path, "SELECT draft_id, week, child, municipality, rule, score, threshold, run_id"
                           " FROM drafts ORDER BY 1")
    assert rows == [
        ("D47-a", "2026-W47", "C-a", "101", "threshold", 4, 3, run_id),
        ("D47-b", "2026-W47", "C-b", "147", "threshold", 4, 3, run_id),
    ]
    sig = table(tmp_path, "SELECT draft_id, child, event_ref, person, registered_at, new"
                          " FROM draft_signals ORDER BY 1, 3")
    assert sig[0] == ("D47-a", "C-a", "E1", "P-father", "2026-11-17T10:30:00+01:00", 1)
    assert len(sig) == 3
    assert chain.read_anchor(tmp_path) == (1, integrity.audit_verify(tmp_path).head)


def test_record_same_week_twice_is_idempotent(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        first = ledger.runs.record("2026-W47", drafts, signals)
        before_d = table(tmp_path, "SELECT * FROM drafts ORDER BY draft_id")
        before_s = table(tmp_path, "SELECT * FROM draft_signals ORDER BY draft_id, event_ref")
        second = ledger.runs.record(IsoWeek.parse("2026-W47"), drafts.reverse(), signals.reverse())
        assert first != second
        assert [r["status"] for r in ledger.runs.recorded()] == ["recorded", "replayed"]
    assert table(tmp_path, "SELECT * FROM drafts ORDER BY draft_id") == before_d
    assert table(tmp_path, "SELECT * FROM draft_signals ORDER BY draft_id, event_ref") == before_s
    assert table(tmp_path, "SELECT count(*) FROM drafts")[0][0] == 2
    assert integrity.audit_verify(tmp_path).entries == 2


def test_rerun_of_latest_week_with_other_drafts_replaces_them(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        fewer = drafts.filter(pl.col("draft_id") == "D47-a")
        ledger.runs.record("2026-W47", fewer, signals.filter(pl.col("draft_id") == "D47-a"))
        assert [r["status"] for r in ledger.runs.recorded()] == ["recorded", "replaced"]
    assert table(tmp_path, "SELECT draft_id FROM drafts") == [("D47-a",)]
    assert table(tmp_path, "SELECT count(*) FROM draft_signals")[0][0] == 2


def test_rerun_refuses_to_drop_a_reviewed_draft(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        ledger.reviews.record("D47-b", "approve", "relevant", "ABC")
        with pytest.raises(LedgerError, match="already reviewed"):
            ledger.runs.record("2026-W47", drafts.head(1), signals.head(2))
        assert len(ledger.runs.recorded()) == 1  # nothing of the refused run was written
    assert table(tmp_path, "SELECT count(*) FROM drafts")[0][0] == 2


def test_new_week_earlier_than_latest_is_refused(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        ledger.runs.check_week("2026-W47")  # re-run: fine
        ledger.runs.check_week("2026-W48")  # later: fine
        earlier = r"week 2026-W46 is earlier than the latest week in the ledger \(2026-W47\)"
        with pytest.raises(LedgerError, match=earlier):
            ledger.runs.check_week(IsoWeek.parse("2026-W46"))
        empty = make_drafts("2026-W46", [])
        with pytest.raises(LedgerError, match="fresh state folder"):
            ledger.runs.record("2026-W46", empty, make_signals([]))
        assert ledger.runs.weeks() == ["2026-W47"]


def test_rerun_of_an_earlier_week_must_match(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        ledger.runs.record("2026-W48", make_drafts("2026-W48", []), make_signals([]))
        ledger.runs.record("2026-W47", drafts, signals)  # identical replay of an earlier week
        changed = drafts.with_columns(score=pl.lit(9, dtype=pl.Int64))
        with pytest.raises(LedgerError, match=r"different drafts than recorded \(0 added, 0 removed, 2 changed\)"):
            ledger.runs.record("2026-W47", changed, signals)
        [(score,)] = ledger.connection.execute("SELECT DISTINCT score FROM drafts").fetchall()
        assert score == 4
        assert [r["status"] for r in ledger.runs.recorded()] == ["recorded", "recorded", "replayed"]


def test_history_only_contains_weeks_strictly_before(tmp_path: Path) -> None:
    drafts, signals = week47()
    d48 = make_drafts("2026-W48", [{"draft_id": "D48-a", "child": "C-a", "previous_drafts": ["D47-a"]}])
    s48 = make_signals([("D48-a", "C-a", "E1", "P-father", False), ("D48-a", "C-a", "E9", "P-father", True)])
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        ledger.runs.record("2026-W48", d48, s48)
        pairs, previous = ledger.runs.history("2026-W47")
        assert pairs.height == 0 and previous.height == 0
        assert pairs.schema == {"child": pl.String, "event_ref": pl.String}
        assert previous.schema == {"child": pl.String, "draft_id": pl.String, "week": pl.String}
        pairs, previous = ledger.runs.history("2026-W48")
        assert pairs.rows() == [("C-a", "E1"), ("C-a", "E2"), ("C-b", "E3")]
        assert previous.rows() == [("C-a", "D47-a", "2026-W47"), ("C-b", "D47-b", "2026-W47")]
        pairs, previous = ledger.runs.history(IsoWeek.parse("2026-W49"))
        assert pairs.rows() == [("C-a", "E1"), ("C-a", "E2"), ("C-a", "E9"), ("C-b", "E3")]
        assert previous.rows() == [
            ("C-a", "D47-a", "2026-W47"), ("C-a", "D48-a", "2026-W48"), ("C-b", "D47-b", "2026-W47"),
        ]
        # limited to the lookback window (W48..W49 for two weeks): W47's pairs drop out, not its drafts
        pairs, previous2 = ledger.runs.history("2026-W49", lookback_weeks=2)
        assert pairs.rows() == [("C-a", "E1"), ("C-a", "E9")]
        assert previous2.equals(previous)
        pairs, _ = ledger.runs.history("2026-W49", lookback_weeks=3)
        assert pairs.height == 4


def test_schema_rejects_duplicates(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        run_id = ledger.runs.record("2026-W47", drafts, signals)
        conn = ledger.connection
        row = ("D47-x", "2026-W47", "C-a", "101", 7, "threshold", 4, 3, 1, 1, "[]", "[]", run_id)
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):  # second draft for (child, week)
            conn.execute("INSERT INTO drafts (draft_id, week, child, municipality, age, rule, score, threshold,"
                         " n_signals, n_new_signals, persons, previous_drafts, run_id) VALUES"
                         " (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):  # same signal twice
            conn.execute("INSERT INTO draft_signals (draft_id, child, event_ref, person, role, link, kind, code,"
                         " weight, new) VALUES ('D47-a','C-a','E1','P-father','suspect','father','offence','1100',2,1)")
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):  # signal of another child
            conn.execute("INSERT INTO draft_signals (draft_id, child, event_ref, person, role, link, kind, code,"
                         " weight, new) VALUES ('D47-a','C-b','E7','P-father','suspect','father','offence','1100',2,1)")
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):  # review of no draft
            conn.execute("INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at)"
                         " VALUES ('nope','approve','x','ABC','t')")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at)"
                         " VALUES ('D47-a','maybe','x','ABC','t')")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # initials are 1-8 characters
            conn.execute("INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at)"
                         " VALUES ('D47-a','approve','x','','t')")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM runs")
    dup = pl.concat([drafts, drafts])
    with Ledger.open(tmp_path / "other") as ledger, pytest.raises(LedgerError, match="repeats a draft_id"):
        ledger.runs.record("2026-W47", dup, signals)
    two_for_child = make_drafts("2026-W47", [{"draft_id": "X1", "child": "C"}, {"draft_id": "X2", "child": "C"}])
    with Ledger.open(tmp_path / "third") as ledger:
        with pytest.raises(LedgerError, match="UNIQUE constraint failed: drafts.child, drafts.week"):
            ledger.runs.record("2026-W47", two_for_child, make_signals([]))
        assert ledger.runs.recorded() == [] and ledger.audit_entries() == []


def test_record_run_validates_frames(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        with pytest.raises(LedgerError, match="drafts of another week"):
            ledger.runs.record("2026-W48", drafts, signals)
        with pytest.raises(LedgerError, match="belongs to no draft"):
            ledger.runs.record("2026-W47", drafts.head(1), signals)
        with pytest.raises(LedgerError, match="lacks column"):
            ledger.runs.record("2026-W47", drafts.drop("municipality"), signals)
        with pytest.raises(LedgerError, match="lacks column"):
            ledger.runs.record("2026-W47", drafts, signals.drop("new"))
        with pytest.raises(LedgerError, match="unknown run_info key"):
            ledger.runs.record("2026-W47", drafts, signals, {"cpr": "x"})
        assert ledger.runs.recorded() == []


def test_review_and_get_draft(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        assert ledger.reviews.latest(["D47-a"]) == {}
        ledger.reviews.record("D47-a", "dismiss", "kendt sag", "ABC")
        got = ledger.reviews.record("D47-a", "approve", "  ny viden  ", "ABC")
        assert got["reason"] == "ny viden" and got["audit_seq"] == 3
        assert ledger.reviews.latest(["D47-a"])["D47-a"]["decision"] == "approve"
        draft = ledger.drafts.get("D47-a")
        assert draft["week"] == "2026-W47" and draft["municipality"] == "101" and draft["child"] == "C-a"
        assert draft["persons"] == [{"link": "father", "pseudonym": "P-father"}]
        assert draft["event_refs"] == ["E1", "E2"] and draft["decision"] == "approve"
        assert draft["previous_drafts"] == []
        assert ledger.drafts.get("D47-b")["decision"] is None
        entry = ledger.audit_entries("review")[-1]
        assert entry.data["decision"] == "approve" and "reason" not in entry.data
        assert len(entry.data["reason_sha256"]) == 64
        with pytest.raises(LedgerError, match="unknown draft 'D-missing'"):
            ledger.reviews.record("D-missing", "approve", "x", "ABC")
        with pytest.raises(LedgerError, match="looks like a CPR number") as err:
            ledger.drafts.get("010190-1234")
        assert "1234" not in str(err.value)
        with pytest.raises(UsageError):
            ledger.reviews.record("D47-a", "maybe", "x", "ABC")
        with pytest.raises(UsageError, match="empty"):
            ledger.reviews.record("D47-a", "approve", "  ", "ABC")
        with pytest.raises(UsageError, match="CPR"):
            ledger.reviews.record("D47-a", "approve", "far er 0101901234", "ABC")
        assert len(ledger.audit_entries("review")) == 2


def test_append_audit_and_verify(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        entry = ledger.append_audit("reidentify", {"draft_id": "D1", "persons": 2})
        assert entry.seq == 1 and entry.prev_hash == chain.GENESIS
    report = integrity.audit_verify(tmp_path)
    assert report.entries == 1 and report.head == entry.hash


def test_readonly_open_refuses_writes(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger"), Ledger.open(tmp_path, readonly=True):
        pass
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
    with Ledger.open(tmp_path, readonly=True) as ledger:
        assert ledger.drafts.get("D47-a")["child"] == "C-a"
        with pytest.raises(LedgerError, match="read-only"):
            ledger.append_audit("x", {})


def test_backup_copies_the_ledger(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path / "state") as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
    dest = backup(tmp_path / "state", tmp_path / "bk" / "ledger.sqlite")
    assert sqlite3.connect(dest).execute("SELECT count(*) FROM drafts").fetchone()[0] == 2


# --- the lock ----------------------------------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from socialsearch.ledger import lock_state
    with lock_state(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


def test_lock_contention_between_processes(tmp_path: Path) -> None:
    # ``with`` closes the holder's pipes and waits for it, however the test ends.
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            locked = rf"locked by another run \(pid {holder.pid}\); wait for it"
            with pytest.raises(StateLockedError, match=locked), lock_state(tmp_path):
                pass
            with pytest.raises(StateLockedError), Ledger.open(tmp_path):
                pass
        finally:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.close()
            holder.wait(timeout=30)
    with lock_state(tmp_path):  # released when the holder ends
        pass


def test_lock_is_a_real_flock_and_not_reentrant(tmp_path: Path) -> None:
    import fcntl
    import os

    with lock_state(tmp_path):
        fd = os.open(tmp_path / "lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        with pytest.raises(StateLockedError, match=rf"\(pid {os.getpid()}\)"), lock_state(tmp_path):
            pass
        with Ledger.open(tmp_path) as ledger:  # uses the lock this process holds
            ledger.append_audit("test", {})
        assert (tmp_path / "lock").read_text().strip() == str(os.getpid())
    fd = os.open(tmp_path / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(fd)


def test_ledger_open_alone_takes_the_lock(tmp_path: Path) -> None:
    with Ledger.open(tmp_path), pytest.raises(StateLockedError), lock_state(tmp_path):
        pass
    with lock_state(tmp_path):
        pass


def test_opening_an_existing_ledger_changes_no_byte(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
    before = (tmp_path / "ledger.sqlite").read_bytes()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.check_week("2026-W48")
        ledger.runs.history("2026-W48")
        ledger.drafts.get("D47-a")
    assert (tmp_path / "ledger.sqlite").read_bytes() == before


# --- privacy -----------------------------------------------------------------------------------


def test_ledger_holds_only_the_pseudonyms_given(tmp_path: Path) -> None:
    drafts, signals = week47()
    raw_cpr, raw_name, journal = "0101901234", "Jens Hansen", "0100-12345-00001-26"
    drafts = drafts.with_columns(cpr=pl.lit(raw_cpr), name=pl.lit(raw_name))
    signals = signals.with_columns(incident_id=pl.lit(journal), cpr=pl.lit(raw_cpr))
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals, {"key_id": "k1"})
        ledger.reviews.record("D47-a", "approve", "relevant", "ABC")
    blob = (tmp_path / "ledger.sqlite").read_bytes()
    for secret in (raw_cpr, raw_name, journal):
        assert secret.encode() not in blob
    people = {v for (v,) in table(tmp_path, "SELECT child FROM drafts UNION SELECT child FROM draft_signals"
                                             " UNION SELECT person FROM draft_signals")}
    assert people == {"C-a", "C-b", "P-father", "P-other"}
    refs = {v for (v,) in table(tmp_path, "SELECT event_ref FROM draft_signals")}
    assert refs == {"E1", "E2", "E3"}


# --- crashes -----------------------------------------------------------------------------------

_KILLED = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from test_ledger import week47
    from socialsearch import ledger
    from socialsearch.ledger import chain
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    if sys.argv[3] == "in-transaction":
        real = chain.append
        def append(*args, **kwargs):
            real(*args, **kwargs)  # the drafts and the audit row are written, not committed
            die()
        chain.append = append
    else:
        chain.write_anchor = die  # committed, anchor not yet moved
    with ledger.Ledger.open(sys.argv[1]) as led:
        drafts, signals = week47()
        led.runs.record("2026-W47", drafts, signals)
    """
)


@pytest.mark.parametrize("point", ["in-transaction", "before-anchor"])
def test_sigkill_during_record_run_then_rerun_ends_as_uninterrupted(tmp_path: Path, point: str) -> None:
    state = tmp_path / "state"
    with Ledger.open(state) as ledger:
        ledger.append_audit("test", {"before": True})
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(state), str(Path(__file__).parent), point],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    committed = point == "before-anchor"
    assert (state / "ledger.sqlite-journal").exists() is not committed  # a hot journal, or none
    report = integrity.audit_verify(state)  # a lagging anchor is accepted
    assert (report.entries, report.anchor_seq) == ((2, 1) if committed else (1, 1))
    drafts, signals = week47()
    with Ledger.open(state) as ledger:  # rolls back the hot journal / moves the anchor
        assert ledger.runs.weeks() == (["2026-W47"] if committed else [])
        ledger.runs.record("2026-W47", drafts, signals)
        crashed = ledger.runs.history("2026-W48")
    with Ledger.open(tmp_path / "clean") as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        clean = ledger.runs.history("2026-W48")
    assert crashed[0].equals(clean[0]) and crashed[1].equals(clean[1])
    assert not (state / "ledger.sqlite-journal").exists()
    report = integrity.audit_verify(state)
    assert report.anchor_seq == report.head_seq == (3 if committed else 2)


def test_rekey_replaces_pseudonyms_everywhere_once_and_is_audited(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals, {"key_id": "kold"})
        assert ledger.keys.id() == "kold"
        persons = {"C-a": "N-a", "P-father": "N-father"}
        events = {"E1": "N1", "E3": "N3"}
        counts = ledger.keys.rekey(persons, events, {"to_key_id": "knew"})
        assert counts == {"drafts": 1, "signal_children": 2, "signal_persons": 2, "signal_events": 2,
                          "draft_persons": 2}
        assert ledger.keys.id() == "knew"
        # The same re-keying again finds nothing left to change.
        assert set(ledger.keys.rekey(persons, events, {"to_key_id": "knew"}).values()) == {0}
        a = ledger.drafts.get("D47-a")
        assert a["child"] == "N-a"
        assert a["persons"] == [{"link": "father", "pseudonym": "N-father"}]
        assert a["event_refs"] == ["E2", "N1"]
        pairs, previous = ledger.runs.history("2026-W48")
        assert sorted(pairs.rows()) == [("C-b", "N3"), ("N-a", "E2"), ("N-a", "N1")]
        assert sorted(previous["child"].to_list()) == ["C-b", "N-a"]
        with pytest.raises(LedgerError, match="keys rekey"):
            ledger.keys.check("kold")
        ledger.keys.check("knew")
        assert [e.kind for e in ledger.audit_entries()][-2:] == ["rekey", "rekey"]
    integrity.audit_verify(tmp_path)


# --- decide, then write: check raises what record would, and writes nothing ---------------------


def _refusals(ledger: Ledger) -> dict[str, tuple[str, pl.DataFrame, pl.DataFrame, str | None, str]]:
    """week, drafts, signals, key id and the expected message of each way a run is refused."""
    drafts, signals = week47()
    other = make_drafts("2026-W48", [{"draft_id": "D47-a", "child": "C-z"}])
    other_signals = make_signals([("D47-a", "C-z", "E9", "P-father", True)])
    bad_municipality = make_drafts("2026-W48", [{"draft_id": "D48-a", "child": "C-a", "municipality": "1010"}])
    bad_signals = make_signals([("D48-a", "C-a", "E1", "P-father", True)])
    return {
        "earlier new week": ("2026-W46", make_drafts("2026-W46", []), make_signals([]), "k1", "earlier than"),
        "changed past week": ("2026-W47", drafts.with_columns(score=pl.lit(9, dtype=pl.Int64)), signals, "k1",
                              "different drafts than recorded"),
        "other key": ("2026-W48", make_drafts("2026-W48", []), make_signals([]), "k2", "keys rekey"),
        "draft id of another week": ("2026-W48", other, other_signals, "k1", "already recorded for week 2026-W47"),
        "schema constraint": ("2026-W48", bad_municipality, bad_signals, "k1", "the ledger refused the drafts"),
        "frame repeats a draft": ("2026-W48", pl.concat([other, other]), other_signals, "k1", "repeats a draft_id"),
    }


@pytest.mark.parametrize("case", ["earlier new week", "changed past week", "other key", "draft id of another week",
                                  "schema constraint", "frame repeats a draft"])
def test_check_raises_exactly_what_record_raises_and_writes_nothing(tmp_path: Path, case: str) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals, {"key_id": "k1"})
        ledger.runs.record("2026-W47", drafts, signals, {"key_id": "k1"})
        if case in ("earlier new week", "changed past week"):
            ledger.runs.record("2026-W48", make_drafts("2026-W48", []), make_signals([]), {"key_id": "k1"})
        week, d, s, key, message = _refusals(ledger)[case]
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        with pytest.raises(LedgerError, match=message) as checked:
            ledger.runs.check(week, d, s, key)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
        with pytest.raises(LedgerError, match=message) as recorded:
            ledger.runs.record(week, d, s, {"key_id": key})
        assert str(checked.value) == str(recorded.value)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_check_passes_what_record_accepts_and_changes_no_byte(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        ledger.runs.check("2026-W47", drafts, signals, "k1")
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
        ledger.runs.record("2026-W47", drafts, signals, {"key_id": "k1"})
        assert ledger.runs.weeks() == ["2026-W47"]


def test_a_reviewed_draft_may_not_change_in_a_rerun(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        ledger.reviews.record("D47-a", "dismiss", "kendt", "ABC")
        changed = signals.with_columns(weight=pl.when(pl.col("event_ref") == "E1").then(3).otherwise(pl.col("weight")))
        with pytest.raises(LedgerError, match="would change 1 draft"):
            ledger.runs.check("2026-W47", drafts, changed)
        # An unreviewed draft may still change in a re-run of the latest week.
        more = signals.with_columns(weight=pl.when(pl.col("event_ref") == "E3").then(3).otherwise(pl.col("weight")))
        ledger.runs.record("2026-W47", drafts, more)
        assert ledger.runs.recorded()[-1]["status"] == "replaced"


def test_district_is_kept_and_recorded_draft_ids_are_offered(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        assert ledger.runs.draft_ids("2026-W47").rows() == [("C-a", "D47-a"), ("C-b", "D47-b")]
        assert ledger.runs.draft_ids("2026-W48").height == 0
    assert table(tmp_path, "SELECT DISTINCT district FROM draft_signals") == [("KBH",)]


def test_reviews_record_reviewer_and_source_and_list_drafts(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        got = ledger.reviews.record("D47-a", "approve", "ok", " ÆBØ ", source="f" * 64)
        assert (got["reviewer"], got["source"]) == ("ÆBØ", "f" * 64)
        for bad in ("", "A1", "ABCDEFGHI", "A B", "A.B"):
            with pytest.raises(UsageError, match="initials"):
                ledger.reviews.record("D47-a", "approve", "ok", bad)
        [entry] = ledger.audit_entries("review")
        assert entry.data["reviewer"] == "ÆBØ" and entry.data["source"] == "f" * 64
        latest = ledger.reviews.latest()
        assert set(latest) == {"D47-a"} and set(latest["D47-a"]) == {"decision", "reason", "reviewer", "decided_at"}
        rows = ledger.drafts.list()
        assert [(r["draft_id"], r["decision"], r["reviewer"]) for r in rows] == [
            ("D47-a", "approve", "ÆBØ"), ("D47-b", None, None)]
        assert [r["draft_id"] for r in ledger.drafts.list(pending=True)] == ["D47-b"]
        assert [r["draft_id"] for r in ledger.drafts.list(municipality="147")] == ["D47-b"]
        assert ledger.drafts.list(week="2026-W48") == []
        assert [r["draft_id"] for r in ledger.drafts.list(draft_ids=["D47-b", "D-none"])] == ["D47-b"]
        assert ledger.drafts.list(draft_ids=[]) == []
        assert set(rows[0]) == {"draft_id", "week", "municipality", "rule", "score", "age", "decision", "reviewer",
                                "decided_at"}
    assert table(tmp_path, "SELECT reviewer, source FROM reviews") == [("ÆBØ", "f" * 64)]


def test_open_without_create_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no state folder at"), Ledger.open(tmp_path / "typo", create=False):
        pass
    assert not (tmp_path / "typo").exists()
    with pytest.raises(LedgerError, match="no ledger at"), Ledger.open(tmp_path, create=False):
        pass
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(LedgerError, match="no state folder"), lock_state(tmp_path / "typo", create=False):
        pass
    assert not (tmp_path / "typo").exists()


def test_version_1_ledger_is_refused_with_advice(tmp_path: Path) -> None:
    with Ledger.open(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / "ledger.sqlite", isolation_level=None)
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version VALUES (1, 'then')")
    conn.close()
    with pytest.raises(LedgerError, match="version 1.*fresh state folder"), Ledger.open(tmp_path):
        pass


_HOT = textwrap.dedent(
    """
    import os, signal, sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA cache_size=1")  # spill to the file: the journal becomes hot
    conn.execute("BEGIN IMMEDIATE")
    rows = [(i,) for i in range(10, 5000)]
    conn.executemany("INSERT INTO schema_version VALUES (?, 'x' || hex(zeroblob(200)))", rows)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_readonly_open_recovers_after_a_killed_writer(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
    proc = subprocess.run([sys.executable, "-c", _HOT, str(tmp_path / "ledger.sqlite")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert (tmp_path / "ledger.sqlite-journal").exists()
    ro = sqlite3.connect((tmp_path / "ledger.sqlite").resolve().as_uri() + "?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError):  # what a plain read-only open would meet
        ro.execute("SELECT count(*) FROM drafts").fetchone()
    ro.close()
    with Ledger.open(tmp_path, readonly=True) as ledger:  # e.g. `drafts list` right after the kill
        assert [d["draft_id"] for d in ledger.drafts.list()] == ["D47-a", "D47-b"]
    assert table(tmp_path, "SELECT count(*) FROM schema_version") == [(1,)]
    integrity.audit_verify(tmp_path)


def test_the_run_plan_is_a_pure_function_of_the_rows_and_the_week_state(tmp_path: Path) -> None:
    from socialsearch.ledger.runs import WeekState, draft_rows, plan_run, signal_rows

    drafts, signals = week47()
    d_rows, s_rows = draft_rows(drafts), signal_rows(signals)
    empty = WeekState(week=IsoWeek.parse("2026-W47"), latest=None, seen=False, key_id=None, drafts=[], signals=[],
                      same=False, reviewed=frozenset(), elsewhere=None, recorded_digests=None, state_dir=tmp_path)
    plan = plan_run(empty, d_rows, s_rows, "k1")  # no connection: nothing can be written
    assert (plan.status, plan.gone, len(plan.draft_rows)) == ("recorded", [], 2)
    assert plan.signal_rows[0].key == (plan.signal_rows[0].draft_id, *plan.signal_rows[0][2:8])
    later = dataclasses.replace(empty, latest=IsoWeek.parse("2026-W48"))
    with pytest.raises(LedgerError, match="earlier than"):
        plan_run(later, d_rows, s_rows, "k1")
    with pytest.raises(LedgerError, match="keys rekey"):
        plan_run(dataclasses.replace(empty, key_id="k0"), d_rows, s_rows, "k1")
    assert not any(tmp_path.iterdir())
