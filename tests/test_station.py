"""The source station (socialsearch.station.pipeline) on the hand-made scenario of tests/test_e2e.py.

Worked out by hand for 2026-W47 with tests/data/catalogue.toml (lookback from 25 May 2026):

* shipped events (6): FYN-1 (5600, child D as victim), FYN-2 (2100, B's mother as suspect),
  KBH-1, NJY-1, OJY-1 (the father F of A as suspect), SSJ-1 (1100, "Mete Hansen" with her
  CPR number written with a digit missing, resolved at the station to A's mother M: see
  tests/test_e2e.py for the weights);
* not shipped: FYN-3 (B's mother as *witness*: a role 1100 does not count), NJY-2 (code 9999
  is not in the catalogue), OJY-2/OJY-3 (the father of C, who is 18 on Sunday 22 Nov),
  SSJ-2 ("John Smith", unresolvable);
* children linked (3): A (11, 101), B (14, 461), D (7, 461); persons without a valid CPR on
  catalogue events: 2, resolved 1.
* but only what can change a draft is shipped (``docs/privacy.md``): B's one event (2100, weight
  1, not immediate) can never reach the threshold of 3, so B, FYN-2 and B's mother stay at the
  station. Shipped (format 4): events (5) KBH-1, NJY-1, OJY-1, SSJ-1, FYN-1; signal rows (5)
  A-KBH-1-F, A-NJY-1-F, A-OJY-1-F, A-SSJ-1-M (M is A's mother and custodian: one row for both
  signals), D-FYN-1-D; persons (4) A, D, F, M; children (2) A (101), D (461); sealed event
  details (5), one per (event, receiving municipality).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from socialsearch.catalogue import load_catalogue
from socialsearch.contract import iso_week
from socialsearch.crypto.keys import KeyStore
from socialsearch.errors import UsageError
from socialsearch.hub_extract import HUB_PATHS, HUB_SCHEMA, read_hub
from socialsearch.station.extracts import read_raw
from socialsearch.station.pipeline import pseudonymise, pseudonymise_extracts
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    return KeyStore.init(tmp_path / "keys")


def test_the_hub_extract_holds_exactly_what_the_week_needs(scenario: Path, catalogue_file: Path,
                                                           keystore: KeyStore) -> None:
    hub = pseudonymise_extracts(read_raw(scenario), keystore, week=WEEK, catalogue=load_catalogue(catalogue_file))
    assert {name: frame.height for name, frame in hub.tables.items()} == {
        "events": 5, "signals": 5, "children": 2, "persons": 4, "event_details": 5}
    assert sorted(hub.children["municipality"].to_list()) == ["101", "461"]
    # A's row count: F on three events, M on one (as mother and custodian: one row); D on its own
    rows = hub.signals.group_by("child").len().sort("len")["len"].to_list()
    assert rows == [1, 4]
    assert hub.relations.height == 2 and "relation" not in hub.relations.columns  # (A, F), (A, M): no types
    raw = read_raw(scenario).incidents
    in_week = raw.filter(iso_week(pl.col("registered_at")) == str(WEEK)).height
    assert 0 < hub.events["in_week"].sum() <= in_week == hub.manifest["counts"]["incidents_registered_in_week"]
    # no municipality of this scenario has a key pair at the station: nothing sealed, and said so
    assert hub.children["details"].null_count() == 2 and hub.event_details["details"].null_count() == 5
    assert hub.signals["details"].null_count() == 5
    assert hub.manifest["municipalities_without_key"] == ["101", "461"] and hub.manifest["municipal_keys"] == {}
    assert hub.children["statistics"].null_count() == 0  # sealed for the key custodian
    persons = hub.manifest["counts"]["persons"]
    assert (persons["without_valid_cpr"], persons["resolved"], persons["unresolved"]) == (2, 1, 1)
    assert not {"rows_read_per_district", "children_linked", "catalogue_events_in_window"} & set(
        hub.manifest["counts"])
    for name, frame in hub.tables.items():
        assert list(frame.columns) == list(HUB_SCHEMA[name]), name


def test_tables_are_ordered_by_keyed_values_only(scenario: Path, catalogue_file: Path, keystore: KeyStore) -> None:
    hub = pseudonymise_extracts(read_raw(scenario), keystore, week=WEEK, catalogue=load_catalogue(catalogue_file))
    assert hub.events["event_ref"].is_sorted()
    assert hub.children["person"].is_sorted()
    assert hub.persons["person"].is_sorted()
    assert hub.signals.select(pl.struct("child", "event_ref", "person").is_sorted()).item()
    assert hub.event_details.select(pl.struct("event_ref", "recipient").is_sorted()).item()


def test_a_week_outside_the_events_ships_nothing(scenario: Path, catalogue_file: Path, keystore: KeyStore) -> None:
    hub = pseudonymise_extracts(read_raw(scenario), keystore, week=IsoWeek.parse("2025-W10"),
                                catalogue=load_catalogue(catalogue_file))
    assert all(frame.height == 0 for frame in hub.tables.values())


def test_pseudonymise_writes_a_folder_the_hub_reads(scenario: Path, catalogue_file: Path, tmp_path: Path,
                                                    keystore: KeyStore) -> None:
    out = tmp_path / "pseudo"
    report = pseudonymise(scenario, out, keystore.directory, week=WEEK, catalogue=catalogue_file)
    assert report["shipped"]["children"] == 2 and report["week"] == str(WEEK)
    hub = read_hub(out)
    assert hub.week == str(WEEK) and hub.key_id == keystore.primary_key_id
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(manifest["files"]) == sorted(HUB_PATHS.values())
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        [*manifest["files"], "manifest.json"])


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_the_output_may_not_overlap_the_input(scenario: Path, catalogue_file: Path, tmp_path: Path,
                                              keystore: KeyStore, where: str) -> None:
    out = {"same": scenario, "inside": scenario / "pseudo", "around": scenario.parent}[where]
    before = sorted(p.relative_to(scenario) for p in scenario.rglob("*"))
    with pytest.raises(UsageError, match="overlap"):
        pseudonymise(scenario, out, keystore.directory, week=WEEK, catalogue=catalogue_file)
    assert sorted(p.relative_to(scenario) for p in scenario.rglob("*")) == before


def test_a_non_empty_output_needs_force_and_is_replaced_whole(scenario: Path, catalogue_file: Path,
                                                              tmp_path: Path, keystore: KeyStore) -> None:
    out = tmp_path / "pseudo"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="--force"):
        pseudonymise(scenario, out, keystore.directory, week=WEEK, catalogue=catalogue_file)
    assert (out / "keep.txt").read_text(encoding="utf-8") == "x"
    pseudonymise(scenario, out, keystore.directory, week=WEEK, catalogue=catalogue_file, force=True)
    assert not (out / "keep.txt").exists() and (out / "manifest.json").is_file()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
