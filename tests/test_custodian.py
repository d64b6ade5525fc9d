"""The key custodian: re-identification trusts the audit chain, not the tables; folder safety."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from conftest import tamper

from socialsearch import custodian
from socialsearch.crypto import vault
from socialsearch.crypto.keys import KeyStore
from socialsearch.errors import AuditError, KeyStoreError, LedgerError
from socialsearch.hub.pipeline import run
from socialsearch.ledger import Ledger
from socialsearch.municipality import review
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")


@pytest.fixture
def world(scenario: Path, catalogue_file: Path, tmp_path: Path) -> dict[str, Path | str]:
    """One weekly run of the hand-made scenario; A (101) approved, D (461) dismissed."""
    keys = tmp_path / "keys"
    KeyStore.init(keys)
    state = tmp_path / "state"
    run(input_dir=scenario, week=WEEK, out_dir=tmp_path / "out", state_dir=state, keys_dir=keys,
             catalogue=catalogue_file, new_state=True)
    with Ledger.open(state, readonly=True) as ledger:
        ids = {r["municipality"]: r["draft_id"] for r in ledger.drafts.list()}
    review(state, ids["101"], "approve", "Relevant", "ABC")
    review(state, ids["461"], "dismiss", "Kendt af forvaltningen", "XY")
    return {"keys": keys, "state": state, "A": ids["101"], "D": ids["461"], "out": tmp_path / "out"}


def test_approved_draft_is_reidentified_and_audited(world: dict) -> None:
    opened = custodian.reidentify(world["state"], world["keys"], world["A"])
    assert opened["child"]["cpr"] == "1003154123"
    with Ledger.open(world["state"], readonly=True) as ledger:
        [entry] = ledger.audit_entries("reidentify")
    assert entry.data["draft_id"] == world["A"] and "1003154123" not in entry.payload


def test_reidentification_names_the_pseudonyms_the_caseworker_sees(world: dict) -> None:
    """The draft page shows pseudonyms scoped to the municipality; the custodian's answer maps those."""
    opened = custodian.reidentify(world["state"], world["keys"], world["A"])
    [draft] = json.loads((world["out"] / str(WEEK) / "101" / "drafts.json").read_text(encoding="utf-8"))
    assert opened["child"]["pseudonym"] == draft["child"]["pseudonym"]
    assert {p["pseudonym"] for p in opened["persons"]} == {p["pseudonym"] for p in draft["persons"]}
    assert {e["event_ref"] for e in opened["events"]} == {s["event_ref"] for s in draft["signals"]}
    assert opened["child"]["hub_pseudonym"] != opened["child"]["pseudonym"]


def test_dismissed_draft_is_refused(world: dict) -> None:
    with pytest.raises(LedgerError, match="not approved \\(decision: dismiss\\)"):
        custodian.reidentify(world["state"], world["keys"], world["D"])


@pytest.mark.parametrize("statement", [
    "UPDATE reviews SET decision = 'approve' WHERE draft_id = '{D}'",
    "INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at) "
    "VALUES ('{D}', 'approve', 'ok', 'ABC', '2026-11-30T10:00:00+00:00')",
], ids=["dismiss edited to approve", "approve row inserted"])
def test_forged_approval_opens_nothing(world: dict, statement: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tamper(world["state"], statement.format(D=world["D"]))
    opened: list[Path] = []
    monkeypatch.setattr(vault, "read_vault", lambda path, keystore: opened.append(path))
    with pytest.raises(AuditError, match="behind the audit log"):
        custodian.reidentify(world["state"], world["keys"], world["D"])
    assert opened == []


def test_any_tampering_blocks_even_an_approved_draft(world: dict) -> None:
    tamper(world["state"], "DELETE FROM draft_signals WHERE rowid = (SELECT min(rowid) FROM draft_signals)")
    with pytest.raises(AuditError, match="drafts or signals of week 2026-W47 differ"):
        custodian.reidentify(world["state"], world["keys"], world["A"])


def test_custodian_commands_create_no_state_folder(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no state folder"):
        custodian.reidentify(tmp_path / "typo", tmp_path / "keys", "D2026-W47-k1a2b3c4d-0123456789abcdef")
    with pytest.raises(LedgerError, match="no state folder"):  # before the keystore is even looked at
        custodian.keys_rekey(tmp_path / "typo", tmp_path / "no-keys")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "state").mkdir()
    with pytest.raises(LedgerError, match="no ledger at"):
        custodian.keys_rekey(tmp_path / "state", tmp_path / "no-keys")
    assert list((tmp_path / "state").iterdir()) == []


def test_rekey_keeps_the_ledger_verifiable(world: dict) -> None:
    from socialsearch.crypto.keys import keys_rotate

    store = keys_rotate(world["keys"])
    new = next(k for k in (d["id"] for d in store.describe()["keys"]) if k != store.primary_key_id)
    keys_rotate(world["keys"], promote=new)
    report = custodian.keys_rekey(world["state"], world["keys"])
    assert report["to_key_id"] == new
    from socialsearch.ledger import integrity

    assert integrity.audit_verify(world["state"]).rows["drafts"] == 2  # type: ignore[index]
    assert custodian.reidentify(world["state"], world["keys"], world["A"])["child"]["cpr"] == "1003154123"
    with pytest.raises(KeyStoreError):
        custodian.keys_rekey(world["state"], world["keys"], "k-unknown")


def _children(state: Path) -> dict[str, str]:
    import sqlite3

    con = sqlite3.connect(state / "ledger.sqlite")
    try:
        return dict(con.execute("SELECT draft_id, child FROM drafts").fetchall())
    finally:
        con.close()


def test_rotation_protects_against_the_old_key_and_says_plainly_the_hub_links_its_history(
        world: dict, scenario: Path, catalogue_file: Path, tmp_path: Path) -> None:
    """What docs/privacy.md promises of a rotation, and what it does not."""
    from socialsearch.crypto.keys import keys_export, keys_rotate
    from socialsearch.crypto.pseudonyms import Pseudonymiser

    old_station = keys_export(world["keys"], tmp_path / "old-station", "station")  # what a thief might hold
    before = _children(world["state"])
    store = keys_rotate(world["keys"])
    new = next(k for k in store.key_ids if k != store.primary_key_id)
    keys_rotate(world["keys"], promote=new)
    custodian.keys_rekey(world["state"], world["keys"])
    after = _children(world["state"])
    # Promised: the old key makes no new pseudonym; what it makes is no longer in the ledger.
    with pytest.raises(KeyStoreError):
        old_station.subkey("person", new)
    old_a = Pseudonymiser(old_station).persons(pl.Series(["1003154123"]))[0]
    assert old_a == before[world["A"]] and old_a not in after.values()
    # Nothing is notified twice: the week run again with the new key gives the same drafts.
    run(input_dir=scenario, week=WEEK, out_dir=world["out"], state_dir=world["state"], keys_dir=world["keys"],
        catalogue=catalogue_file)
    assert _children(world["state"]) == after
    # Said plainly, not promised: the hub links old to new pseudonyms through its own ledger (same draft ids).
    assert after.keys() == before.keys() and all(after[d] != before[d] for d in before)
