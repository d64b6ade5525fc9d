"""Playing the hub: what can an honest-but-curious hub learn from a hub extract and the drafts?

The hub holds the hub extract, its own keys (draft ids, recipient scoping), the code and any
public statistics, and it may even hold a candidate raw file. These tests attack it with a
synthetic Denmark (DESIGN §2 v2, ``docs/privacy.md``):

* the extract has exactly the contract's columns, none derived from a name or a birth date,
  and no value in it equals a raw identifier or any unkeyed function of one;
* its row order is a function of keyed values only (shuffling the raw files changes nothing);
* no pseudonym or event reference repeats across two municipalities' drafts;
* nothing in the manifest, a pseudonym or a sealed value confirms a candidate raw file.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

import socialsearch.hub.drafts as drafts_module
from socialsearch._resources import template_dir
from socialsearch.catalogue import load_catalogue
from socialsearch.crypto.keys import KeyStore, keys_export
from socialsearch.geography import geography
from socialsearch.hub.pipeline import run
from socialsearch.hub_extract import HUB_PATHS, HUB_SCHEMA, read_hub
from socialsearch.station.pipeline import pseudonymise
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
    assert set(hub.children.columns) == {"person", "municipality", "person_sealed", "details"}  # no age
    assert set(hub.incidents.columns).isdisjoint({"occurred_at", "registered_at", "municipality"})
    adults = set(hub.relations["adult"].to_list()) - set(hub.children["person"].to_list())
    assert adults  # the relations name adults, by pseudonym only
    assert not adults & set(hub.children["person"].to_list())


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
    own = set(hub.children["person"].to_list()) | set(hub.incident_persons["person"].to_list())
    own |= set(hub.incidents["event_ref"].to_list())
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
    sealed = set(hub.children["person_sealed"].to_list())
    assert len(sealed) == hub.children.height


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
                text = path.read_bytes().decode("utf-8", "replace")
                found = set(words.findall(text)) & needles
                assert not found, (path, sorted(found)[:3])
