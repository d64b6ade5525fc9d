"""The matching hub's weekly run (``socialsearch.run``) on the hand-made scenario.

The hub reads a hub extract made by a source station (:mod:`socialsearch.station.pipeline`) with a hub
keystore that holds no secret; single-site, it reads the raw extracts with the full keystore and
makes the same hub extract in memory. What the drafts say is worked out in ``tests/test_e2e.py``;
here: what the run reports and writes, where its figures come from, and what it refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import socialsearch
from socialsearch.catalogue import load_catalogue
from socialsearch.crypto.keys import KeyStore
from socialsearch.errors import KeyStoreError, UsageError
from socialsearch.hub_extract import read_hub
from socialsearch.weeks import IsoWeek

WEEK = "2026-W47"


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    return socialsearch.keys_init(tmp_path / "keys")


@pytest.fixture
def station(scenario: Path, catalogue_file: Path, tmp_path: Path, keystore: KeyStore) -> dict[str, Path]:
    """The station's hub extract of WEEK and the hub's keystore (an export without the secret)."""
    pseudo, hub_keys = tmp_path / "pseudo", tmp_path / "hub-keys"
    socialsearch.pseudonymise(scenario, pseudo, keystore.directory, week=WEEK, catalogue=catalogue_file)
    socialsearch.keys_export(keystore.directory, hub_keys, "hub")
    return {"pseudo": pseudo, "hub_keys": hub_keys}


def _drafts(out_dir: Path) -> dict[str, list[dict[str, object]]]:
    return {p.parent.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((out_dir / WEEK).glob("*/drafts.json"))}


def test_the_run_reports_and_writes_its_summary(station: dict[str, Path], catalogue_file: Path,
                                                 tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state"
    # str paths and a str week: the public surface takes both
    report = socialsearch.run(str(station["pseudo"]), WEEK, str(out), str(state), str(station["hub_keys"]),
                              catalogue=str(catalogue_file), new_state=True)
    hub = read_hub(station["pseudo"])
    summary = report.summary
    assert report.week == WEEK and report.out_dir == out
    assert report.drafts_per_municipality == {"101": 1, "461": 1}
    assert summary["drafts"]["total"] == report.drafts == 2
    assert summary["drafts"]["per_municipality"] == report.drafts_per_municipality
    assert summary["key_id"] == hub.key_id
    assert summary["catalogue"] == {"source": catalogue_file.name, "sha256": load_catalogue(catalogue_file).digest}
    assert summary["inputs"]["hub_extract_rows"] == {name: frame.height for name, frame in hub.tables.items()}
    assert summary["inputs"]["rows_read"] == hub.manifest["counts"]["rows_read"]
    assert summary["warnings"] == []
    assert json.loads((out / WEEK / "summary.json").read_text(encoding="utf-8")) == summary
    assert sorted(p.relative_to(out).as_posix() for p in report.html_paths) == [
        f"{WEEK}/101/drafts.html", f"{WEEK}/461/drafts.html"]
    assert (state / "vault" / f"{WEEK}.vault").is_file()
    listed = socialsearch.drafts_list(state, week=IsoWeek.parse(WEEK))
    assert sorted(r["municipality"] for r in listed) == ["101", "461"]
    assert socialsearch.audit_verify(state).entries >= 1


def test_persons_counts_come_from_the_hub_extracts_manifest(station: dict[str, Path], tmp_path: Path,
                                                            catalogue_file: Path) -> None:
    # The hub holds pseudonyms only: who was resolved at the station is the station's count,
    # carried in the manifest, never recomputed at the hub.
    manifest_path = station["pseudo"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert {k: manifest["counts"]["persons"][k] for k in ("without_valid_cpr", "resolved", "unresolved")} == {
        "without_valid_cpr": 2, "resolved": 1, "unresolved": 1}
    manifest["counts"]["persons"].update(without_valid_cpr=17, resolved=11, unresolved=6)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    report = socialsearch.run(station["pseudo"], WEEK, tmp_path / "out", tmp_path / "state", station["hub_keys"],
                              catalogue=catalogue_file, new_state=True)
    assert report.summary["persons"] == {"without_valid_cpr": 17, "resolved_probabilistically": 11,
                                         "unresolved": 6}
    assert "persons without a valid CPR: 17, resolved at the station: 11, unresolved: 6" in report.describe()


def test_the_hub_refuses_another_week_another_catalogue_and_version_1(scenario: Path, catalogue_file: Path,
                                                                       tmp_path: Path, keystore: KeyStore) -> None:
    from socialsearch.hub.pipeline import load_hub

    out = tmp_path / "pseudo"
    socialsearch.pseudonymise(scenario, out, keystore.directory, week=WEEK, catalogue=catalogue_file)
    with pytest.raises(UsageError, match="made for week 2026-W47, not 2026-W48"):
        load_hub(out, keystore, week=IsoWeek.parse("2026-W48"), catalogue=load_catalogue(catalogue_file))
    with pytest.raises(UsageError, match="another catalogue"):
        load_hub(out, keystore, week=IsoWeek.parse(WEEK), catalogue=load_catalogue(None))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    (out / "manifest.json").write_text(json.dumps({**manifest, "format": "socialsearch-pseudonymised",
                                                   "version": 1}), encoding="utf-8")
    with pytest.raises(UsageError, match="version 1.*pseudonymise the raw extracts again"):
        read_hub(out)


def test_a_refused_extract_writes_no_drafts(station: dict[str, Path], catalogue_file: Path, tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state"
    with pytest.raises(UsageError, match="made for week 2026-W47, not 2026-W46"):
        socialsearch.run(station["pseudo"], "2026-W46", out, state, station["hub_keys"], catalogue=catalogue_file,
                         new_state=True)
    with pytest.raises(UsageError, match="another catalogue"):
        socialsearch.run(station["pseudo"], WEEK, out, state, station["hub_keys"], new_state=True)
    # A refused first run leaves no state folder behind (not even an empty ledger or lock file).
    assert not out.exists() and not state.exists()


def test_a_refused_run_keeps_an_existing_state(station: dict[str, Path], catalogue_file: Path,
                                               tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state"
    socialsearch.run(station["pseudo"], WEEK, out, state, station["hub_keys"], catalogue=catalogue_file, new_state=True)
    before = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}
    with pytest.raises(UsageError, match="made for week 2026-W47, not 2026-W48"):
        socialsearch.run(station["pseudo"], "2026-W48", out, state, station["hub_keys"], catalogue=catalogue_file,
                         new_state=True)
    assert {p: p.read_bytes() for p in state.rglob("*") if p.is_file()} == before


def test_a_hub_keystore_cannot_read_raw_extracts(scenario: Path, station: dict[str, Path], catalogue_file: Path,
                                                 tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="no pseudonymisation secret"):
        socialsearch.run(scenario, WEEK, tmp_path / "out", tmp_path / "state", station["hub_keys"],
                         catalogue=catalogue_file, new_state=True)


def test_single_site_equals_station_then_hub(scenario: Path, station: dict[str, Path], keystore: KeyStore,
                                             catalogue_file: Path, tmp_path: Path) -> None:
    single = socialsearch.run(scenario, WEEK, tmp_path / "single", tmp_path / "single-state", keystore.directory,
                              catalogue=catalogue_file, new_state=True)
    hub = socialsearch.run(station["pseudo"], WEEK, tmp_path / "hub", tmp_path / "hub-state", station["hub_keys"],
                           catalogue=catalogue_file, new_state=True)
    assert single.drafts_per_municipality == hub.drafts_per_municipality
    assert _drafts(tmp_path / "single") == _drafts(tmp_path / "hub")
    for key in ("drafts", "signals", "search", "persons", "key_id", "catalogue"):
        assert single.summary[key] == hub.summary[key], key
    assert [r["draft_id"] for r in socialsearch.drafts_list(tmp_path / "single-state")] == [
        r["draft_id"] for r in socialsearch.drafts_list(tmp_path / "hub-state")]
