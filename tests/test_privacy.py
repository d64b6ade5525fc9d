"""Playing the hub: what can an honest-but-curious hub learn from a hub extract and the drafts?

The hub holds the hub extract, its own keys (draft ids, recipient scoping), the code and any
public statistics, and it may even hold a candidate raw file. These tests attack it with a
synthetic Denmark (DESIGN §2 v2, ``docs/privacy.md``):

* the extract has exactly the contract's columns, none derived from a name or a birth date,
  and no value in it equals a raw identifier or any unkeyed function of one;
* its row order is a function of keyed values only (shuffling the raw files changes nothing);
* no pseudonym or event reference repeats across two municipalities' drafts;
* nothing in the manifest, a pseudonym or a sealed value confirms a candidate raw file;
* measured attacks (:mod:`socialsearch.privacy_report`): a hub that also holds the population
  register re-identifies fewer than 0.1 % of shipped children and adults from one week, from
  four weeks and from 13; a press-known event names no pseudonym with probability above 1/10; rotation
  links are measured (each one the attack makes is checked against the keys).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import socialsearch.hub.drafts as drafts_module
from socialsearch._resources import template_dir
from socialsearch.catalogue import load_catalogue
from socialsearch.contract import RELATIONS, ROLES, age_on
from socialsearch.crypto.keys import KeyStore, keys_export, keys_rotate
from socialsearch.geography import geography
from socialsearch.hub.pipeline import run
from socialsearch.hub_extract import HUB_PATHS, HUB_SCHEMA, read_hub
from socialsearch.privacy_report import load_register, press_attack, register_attack, rotation_attack, truth
from socialsearch.station import pipeline as station_pipeline
from socialsearch.station.extracts import read_raw
from socialsearch.station.pipeline import draftable, pseudonymise
from socialsearch.synthetic import synth
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W46")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small synthetic Denmark, its hub extract, and a hub run on it (as the demo does)."""
    root = tmp_path_factory.mktemp("world")
    synth(root / "raw", scale=0.01, seed=14, week=WEEK)
    KeyStore.init(root / "keys")
    keys_export(root / "keys", root / "hub-keys", "hub")
    pseudonymise(root / "raw", root / "pseudo", root / "keys", week=WEEK)
    run(input_dir=root / "pseudo", week=WEEK, out_dir=root / "out", state_dir=root / "state",
             keys_dir=root / "hub-keys", new_state=True)
    return {name: root / name for name in ("raw", "keys", "hub-keys", "pseudo", "out", "state")} | {"root": root}


def _raw(world: dict[str, Path]) -> dict[str, pl.DataFrame]:
    raw = world["raw"]
    return {
        "population": pl.read_parquet(raw / "population.parquet"),
        "relations": pl.read_parquet(raw / "relations.parquet"),
        "incidents": pl.concat([pl.read_parquet(p) for p in sorted((raw / "incidents").glob("*.parquet"))]),
        "incident_persons": pl.concat(
            [pl.read_parquet(p) for p in sorted((raw / "incident_persons").glob("*.parquet"))], how="diagonal_relaxed"),
    }


def _identifiers(world: dict[str, Path]) -> set[str]:
    """Every raw identifying value: CPR numbers (both spellings), names, birth dates, journal numbers."""
    raw = _raw(world)
    cprs = raw["population"]["cpr"].str.replace("-", "", literal=True)
    values: set[str] = set(cprs.to_list()) | set((cprs.str.slice(0, 6) + "-" + cprs.str.slice(6)).to_list())
    for column in ("given_name", "surname"):
        values |= set(raw["population"][column].drop_nulls().to_list())
        values |= set(raw["incident_persons"][column].drop_nulls().to_list())
    values |= set(raw["incident_persons"]["birth_date"].drop_nulls().cast(pl.String).to_list())
    values |= set(raw["incidents"]["incident_id"].to_list())
    return {v for v in values if len(v) >= 4}


def test_the_hub_extract_has_exactly_the_contract_columns(world: dict[str, Path]) -> None:
    for table, schema in HUB_SCHEMA.items():
        stored = pl.read_parquet_schema(world["pseudo"] / HUB_PATHS[table])
        assert list(stored) == list(schema), table
    # Nothing that could carry a name or a birth date: no Date column, no name-like column.
    columns = [c for schema in HUB_SCHEMA.values() for c in schema]
    assert not any(word in c for c in columns for word in ("name", "birth", "lk_", "dob", "cpr"))
    assert all(dtype != pl.Date for schema in HUB_SCHEMA.values() for dtype in schema.values())


def test_no_value_in_the_hub_extract_is_a_raw_identifier_or_an_unkeyed_hash_of_one(world: dict[str, Path]) -> None:
    needles = _identifiers(world)
    hashes = {hashlib.sha256(v.encode()).hexdigest() for v in needles}
    hashes |= {hashlib.sha256(v.encode()).digest().hex()[:32] for v in needles}
    hub = read_hub(world["pseudo"])
    for table, frame in hub.tables.items():
        for column, dtype in frame.schema.items():
            if dtype == pl.String:
                values = set(frame[column].drop_nulls().to_list())
                assert not values & needles, (table, column)
                assert not values & hashes, (table, column)
    blob = b"".join(p.read_bytes() for p in sorted(world["pseudo"].rglob("*")) if p.is_file())
    for needle in sorted(needles)[:5000]:
        assert needle.encode() not in blob


def test_no_one_has_an_age_and_adults_have_no_attribute(world: dict[str, Path]) -> None:
    hub = read_hub(world["pseudo"])
    assert set(hub.children.columns) == {"person", "municipality", "details", "statistics"}  # no age
    assert set(hub.events.columns) == {"event_ref", "in_week", "event_sealed"}  # no time, place or week
    assert set(hub.persons.columns) == {"person", "person_sealed"}
    adults = set(hub.relations["adult"].to_list()) - set(hub.children["person"].to_list())
    assert adults  # the relations name adults, by pseudonym only
    assert not adults & set(hub.children["person"].to_list())


def test_the_hub_sees_no_relation_type_role_code_or_district(world: dict[str, Path]) -> None:
    """In clear only pseudonyms, whether an event is of the week and the child's municipality;
    and one signal row per (child, event, person), so no count of rows shows a relation type."""
    hub = read_hub(world["pseudo"])
    clear = {(table, c) for table, frame in hub.tables.items() for c, t in frame.schema.items() if t != pl.Binary}
    assert clear == {("events", "event_ref"), ("events", "in_week"), ("signals", "child"),
                     ("signals", "event_ref"), ("signals", "person"), ("children", "person"),
                     ("children", "municipality"), ("persons", "person"), ("event_details", "event_ref"),
                     ("event_details", "recipient")}
    catalogue = load_catalogue(None)
    words = {*ROLES, *RELATIONS, *(c.code for c in catalogue.codes), *(c.id for c in catalogue.categories),
             *(d.code for d in geography().districts), str(WEEK)}
    for table, frame in hub.tables.items():
        for column, dtype in frame.schema.items():
            if dtype == pl.String:
                assert not set(frame[column].to_list()) & words, (table, column)
    assert hub.signals.select("child", "event_ref", "person").is_unique().all()
    # The station's own search gives more signals than rows: a row seals every (role, link,
    # kind, code) of its person for its child (a mother who is also the custodian: one row).
    seen: list[pl.DataFrame] = []

    def recording(*args: Any) -> Any:
        out = draftable(*args)
        seen.append(out[1])
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(station_pipeline, "draftable", recording)
        again = station_pipeline.pseudonymise_extracts(read_raw(world["raw"]), KeyStore.load(world["keys"]),
                                                       week=WEEK, catalogue=catalogue)
    assert again.signals.drop("details").equals(hub.signals.drop("details"))
    assert seen[0].select("child", "event_ref", "person").unique().height == hub.signals.height
    assert seen[0].height > hub.signals.height


def test_row_order_does_not_follow_the_raw_files(world: dict[str, Path], tmp_path: Path) -> None:
    """Shuffle every raw file's rows: the hub extract's tables come out identical, row for row."""
    shuffled = tmp_path / "raw"
    shutil.copytree(world["raw"], shuffled)
    for path in shuffled.rglob("*.parquet"):
        if "truth" not in path.parts:
            pl.read_parquet(path).sample(fraction=1.0, shuffle=True, seed=7).write_parquet(path)
    pseudonymise(shuffled, tmp_path / "pseudo", world["keys"], week=WEEK)
    first, second = read_hub(world["pseudo"]), read_hub(tmp_path / "pseudo")
    for table in HUB_SCHEMA:
        assert first.tables[table].equals(second.tables[table]), table
    for path in HUB_PATHS.values():
        assert (world["pseudo"] / path).read_bytes() == (tmp_path / "pseudo" / path).read_bytes(), path


def _drafts(world: dict[str, Path]) -> dict[str, list[dict]]:
    folder = world["out"] / str(WEEK)
    return {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*/drafts.json")}


def _pseudonyms(drafts: list[dict]) -> set[str]:
    values = set()
    for draft in drafts:
        values.add(draft["child"]["pseudonym"])
        values |= {p["pseudonym"] for p in draft["persons"]}
        values |= {s["person"] for s in draft["signals"]} | {s["event_ref"] for s in draft["signals"]}
    return values


def test_no_pseudonym_or_event_reference_repeats_across_municipalities(world: dict[str, Path]) -> None:
    drafts = _drafts(world)
    assert len(drafts) >= 2
    seen: dict[str, str] = {}
    for municipality, docs in drafts.items():
        for value in _pseudonyms(docs):
            assert value.startswith(municipality + "."), value
            assert seen.setdefault(value, municipality) == municipality
    # ... and none of them is the hub's own pseudonym from its extract or ledger.
    hub = read_hub(world["pseudo"])
    own = set(hub.children["person"].to_list()) | set(hub.persons["person"].to_list())
    own |= set(hub.events["event_ref"].to_list())
    assert not own & set(seen)


def test_nothing_confirms_a_candidate_raw_file(world: dict[str, Path]) -> None:
    manifest = (world["pseudo"] / "manifest.json").read_text(encoding="utf-8")
    for path in world["raw"].rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() not in manifest
            assert path.name not in manifest or path.name.endswith(".parquet") and any(
                p.endswith("/" + path.name) or p == path.name for p in HUB_PATHS.values())
    # The sealed values are keyed: the same CPR number sealed under another keystore differs,
    # so a hub cannot seal a candidate value itself and compare.
    hub = read_hub(world["pseudo"])
    sealed = set(hub.persons["person_sealed"].to_list())
    assert len(sealed) == hub.persons.height


def test_what_the_hub_writes_holds_no_raw_identifier(world: dict[str, Path]) -> None:
    words = re.compile(r"[^\W\d_]+|[\d-]+")
    # Text the product itself writes (place names, code labels, the page's Danish) is not a
    # leak even where a surname is also a place name ("Aabenraa"): those words are allowed.
    geo = geography()
    product_text = " ".join([*(m.name for m in geo.municipalities), *(d.name for d in geo.districts),
                             *(c.label for c in load_catalogue(None).codes),
                             *(c.label for c in load_catalogue(None).categories),
                             *(p.read_text(encoding="utf-8") for p in template_dir().glob("*.j2")),
                             Path(drafts_module.__file__).read_text(encoding="utf-8")])
    needles = _identifiers(world) - set(words.findall(product_text))
    # Names as whole words (a name such as "Inge" is also the start of the Danish word "Ingen").
    for base in (world["out"], world["state"]):
        for path in base.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                if data.startswith(_SQLITE_HEADER):
                    found = _words_of_database(path, words) & needles
                    assert not found, (path, sorted(found)[:3])
                try:
                    text, needles_here = data.decode("utf-8"), needles
                except UnicodeDecodeError:
                    # A binary file (the ledger's pages, where deleted or rewritten cells may
                    # linger; the vault's ciphertext) is read as text too, for the identifiers
                    # of six or more characters: a shorter word can be any four bytes of a
                    # stored number or of ciphertext ("Dale" is the integer 1,147,235,429).
                    text, needles_here = data.decode("utf-8", "replace"), {n for n in needles if len(n) >= 6}
                found = set(words.findall(text)) & needles_here
                assert not found, (path, sorted(found)[:3])


_SQLITE_HEADER = b"SQLite format 3\x00"


def _words_of_database(path: Path, words: re.Pattern[str]) -> set[str]:
    """The words of every value (text, numbers as written, blobs decoded) in every table."""
    found: set[str] = set()
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    found |= set(words.findall(text))
    return found


# --------------------------------------------------------------------------- measured attacks
# A hub that also holds the population register, press knowledge, or an extract of the same
# week under the old key (``docs/privacy.md``, "Measured attacks"). The attacks are the
# library's; these tests hold them to the targets.
ATTACK_WEEK = IsoWeek.parse("2026-W47")
TARGET = 0.001  # re-identified share of shipped children and of shipped adults


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The issue's synthetic Denmark (scale 0.05, seed 11), its hub extracts of four weeks, the
    latest again after a key rotation, the register as an attacker holds it, and the truth
    behind the pseudonyms. Scale 0.05 because rarity depends on the population: in a Denmark of
    60,000 people a family of four children in one municipality is unique by itself."""
    root = tmp_path_factory.mktemp("attacked")
    synth(root / "raw", scale=0.05, seed=11, week=ATTACK_WEEK)
    old = KeyStore.init(root / "keys")
    weeks = [ATTACK_WEEK.shift(-i) for i in (3, 2, 1, 0)]
    for week in weeks:
        pseudonymise(root / "raw", root / f"pseudo-{week}", root / "keys", week=week)
    shutil.copytree(root / "keys", root / "rotated-keys")
    added = keys_rotate(root / "rotated-keys")
    new_id = next(k for k in added.key_ids if k != old.primary_key_id)
    rotated = keys_rotate(root / "rotated-keys", promote=new_id)
    pseudonymise(root / "raw", root / "rotated", root / "rotated-keys", week=ATTACK_WEEK)
    register = load_register(root / "raw")
    return {
        "root": root,
        "hubs": [read_hub(root / f"pseudo-{week}") for week in weeks],
        "rotated": read_hub(root / "rotated"),
        "register": register,
        "keys": rotated,
        "truth": truth(register, old),
        "truth_new": truth(register, rotated, new_id),
    }


@pytest.fixture(scope="module")
def register_reports(attacked: dict[str, Any]) -> dict[int, Any]:
    """Model A over the latest week and over all four weeks."""
    return {len(hubs): register_attack(hubs, attacked["register"], truth=attacked["truth"])
            for hubs in (attacked["hubs"][-1:], attacked["hubs"])}


def _check_the_attack_model(report: Any) -> None:
    """The register-side signature is the one the extract shows: every shipped person is in its
    own anonymity set (no set is empty), and every unique match is that person."""
    assert report.shipped("child") > 0 and report.shipped("adult") > 0
    assert report.sizes.filter(pl.col("k") == 0).height == 0
    unique = report.sizes.filter(pl.col("k") == 1)
    assert unique["right"].all()


def test_the_register_attack_models_the_extract_faithfully(register_reports: dict[int, Any]) -> None:
    for report in register_reports.values():
        _check_the_attack_model(report)


def test_a_hub_with_the_register_reidentifies_almost_no_one_in_one_week(register_reports: dict[int, Any]) -> None:
    report = register_reports[1]
    assert report.weeks == [str(ATTACK_WEEK)]
    assert report.share("child") < TARGET, report.summary()
    assert report.share("adult") < TARGET, report.summary()


def test_a_hub_with_the_register_reidentifies_almost_no_one_over_four_weeks(
        register_reports: dict[int, Any]) -> None:
    """Pseudonyms are stable across weeks, so what the four extracts show adds up."""
    report = register_reports[4]
    assert report.weeks == [str(ATTACK_WEEK.shift(-i)) for i in (3, 2, 1, 0)]
    assert report.shipped("child") >= register_reports[1].shipped("child")
    assert report.share("child") < TARGET, report.summary()
    assert report.share("adult") < TARGET, report.summary()


SEASON = 13  # weeks: a quarter of a year of extracts


@pytest.fixture(scope="module")
def season(attacked: dict[str, Any]) -> list[Any]:
    """Model A over the latest week, four weeks and a quarter of a year (13 weekly extracts of the
    same country and key: synth draws a year of events, so each week has its own)."""
    root = attacked["root"]
    weeks = [ATTACK_WEEK.shift(-i) for i in range(SEASON - 1, -1, -1)]
    for week in weeks:
        if not (root / f"pseudo-{week}").is_dir():
            pseudonymise(root / "raw", root / f"pseudo-{week}", root / "keys", week=week)
    hubs = [read_hub(root / f"pseudo-{week}") for week in weeks]
    return [register_attack(hubs[-n:], attacked["register"], truth=attacked["truth"]) for n in (1, 4, SEASON)]


def test_a_hub_with_the_register_reidentifies_almost_no_one_over_a_quarter(season: list[Any]) -> None:
    """What 13 weekly extracts show adds up; the target holds over all of them, and a person
    shipped in the latest week hides in no larger a set for having been seen in more weeks."""
    latest, _, quarter = season
    assert len(quarter.weeks) == SEASON
    _check_the_attack_model(quarter)
    assert quarter.shipped("child") > season[1].shipped("child") > latest.shipped("child")
    assert quarter.share("child") < TARGET, quarter.summary()
    assert quarter.share("adult") < TARGET, quarter.summary()
    for shorter in season[:-1]:
        sizes = shorter.sizes.join(quarter.sizes, on=["person", "kind"], suffix="_longer")
        assert sizes.height == shorter.sizes.height
        assert (sizes["k_longer"] <= sizes["k"]).all(), sizes.filter(pl.col("k_longer") > pl.col("k"))


def test_the_register_attack_uses_only_the_columns_an_extract_holds(attacked: dict[str, Any]) -> None:
    """The same extract without the children's attributes: the attack adapts, and knows less."""
    hub = attacked["hubs"][-1]
    bare = replace(hub, children=hub.children.select(
        "person", *(c for c, t in hub.children.schema.items() if t == pl.Binary)))
    full = register_attack([hub], attacked["register"], truth=attacked["truth"])
    less = register_attack([bare], attacked["register"], truth=attacked["truth"])
    assert less.attributes == [] and "municipality" in full.attributes
    _check_the_attack_model(less)
    assert less.unique("child") <= full.unique("child") and less.unique("adult") <= full.unique("adult")
    assert less.sizes["k"].sum() >= full.sizes["k"].sum()


def test_an_age_in_the_extract_is_followed_week_by_week(attacked: dict[str, Any]) -> None:
    """The same four extracts with each shipped child's exact age added (as format 2 shipped it):
    the attack reads the age week by week (a birthday between two extracts gives the birth week
    away), stays faithful, and tells more persons apart than without it."""
    born = attacked["truth"].join(attacked["register"].people.select("number", "birth_date"), on="number")
    aged = [replace(hub, children=hub.children.join(born.select("person", "birth_date"), on="person", how="left")
                    .with_columns(age_on(pl.col("birth_date"), IsoWeek.parse(hub.week).sunday).alias("age"))
                    .drop("birth_date")) for hub in attacked["hubs"]]
    plain = register_attack(attacked["hubs"], attacked["register"], truth=attacked["truth"])
    with_age = register_attack(aged, attacked["register"], truth=attacked["truth"])
    assert with_age.attributes == ["municipality", "age"] and plain.attributes == ["municipality"]
    _check_the_attack_model(with_age)
    assert with_age.sizes["k"].sum() < plain.sizes["k"].sum()
    assert with_age.unique("child") >= plain.unique("child")


def test_a_press_known_event_names_no_pseudonym(attacked: dict[str, Any]) -> None:
    """The press knows date, hour, municipality and kind of 2 % of the events (here 20 % of them,
    so that a twentieth of Denmark has several in the extract): no pseudonym on one of them may
    be named with probability above 1/10 from the events the extract shows the same (on format 3,
    whose registration week, district, codes and roles are in clear, 11 of 13 are pinned, each
    naming a pseudonym). The hub also holds the earlier weeks' extracts, from which it learns the
    registration week of each event it saw flagged as registered in its week."""
    hubs = attacked["hubs"]
    report = press_attack(hubs[-1], attacked["register"], share=0.2, seed=5, keystore=attacked["keys"],
                          earlier=hubs[:-1])
    assert report.known > 0
    assert sum(report.bins.values()) == report.known
    assert report.exposed == 0, report.summary()
    assert report.max_guess <= 0.1, report.summary()


def test_rotation_links_are_measured_and_right(attacked: dict[str, Any]) -> None:
    """Old and new pseudonyms of one week, linked by structure alone: each link is checked
    against the keys (a wrong link would mean the refinement confused two people)."""
    old, new = attacked["hubs"][-1], attacked["rotated"]
    assert old.key_id != new.key_id
    report = rotation_attack(old, new, truth_old=attacked["truth"], truth_new=attacked["truth_new"])
    on_events = old.tables["signals" if "signals" in old.tables else "incident_persons"]
    assert report.persons == len(set(on_events["person"]) | set(old.relations["child"])
                                 | set(old.relations["adult"]) | set(old.children["person"]))
    assert report.right == report.linked
