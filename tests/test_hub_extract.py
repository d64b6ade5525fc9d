"""The hub extract format (socialsearch.hub_extract): written whole, read strictly."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from socialsearch.catalogue import load_catalogue
from socialsearch.crypto.keys import KeyStore
from socialsearch.errors import InputError, UsageError
from socialsearch.hub_extract import HUB_PATHS, HUB_SCHEMA, is_hub_extract, read_hub, write_hub
from socialsearch.station.extracts import read_raw
from socialsearch.station.pipeline import pseudonymise_extracts
from socialsearch.weeks import IsoWeek


@pytest.fixture
def folder(scenario: Path, catalogue_file: Path, tmp_path: Path) -> Path:
    hub = pseudonymise_extracts(read_raw(scenario), KeyStore.init(tmp_path / "keys"),
                                week=IsoWeek.parse("2026-W47"), catalogue=load_catalogue(catalogue_file))
    write_hub(hub, tmp_path / "pseudo")
    return tmp_path / "pseudo"


def test_round_trip(folder: Path) -> None:
    hub = read_hub(folder)
    assert is_hub_extract(folder)
    again = folder.parent / "again"
    write_hub(hub, again)
    back = read_hub(again)
    for table in HUB_SCHEMA:
        assert back.tables[table].equals(hub.tables[table])


def test_a_changed_file_is_refused(folder: Path) -> None:
    frame = pl.read_parquet(folder / "children.parquet")
    frame.with_columns(pl.lit(3, pl.Int64).alias("age")).write_parquet(folder / "children.parquet")
    with pytest.raises(InputError, match=r"children.parquet: expected the content recorded in manifest.json"):
        read_hub(folder)


def _rewrite(folder: Path, table: str, frame: pl.DataFrame) -> None:
    """Replace a table and record its digest, as a careless tool would (so the schema checks run)."""
    import hashlib

    frame.write_parquet(folder / HUB_PATHS[table])
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][HUB_PATHS[table]] = hashlib.sha256((folder / HUB_PATHS[table]).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_an_extra_column_such_as_a_name_is_refused(folder: Path) -> None:
    frame = pl.read_parquet(folder / "children.parquet")
    _rewrite(folder, "children", frame.with_columns(pl.lit("Mette").alias("given_name")))
    with pytest.raises(InputError) as err:
        read_hub(folder)
    assert "children.parquet" in str(err.value) and "other column" in str(err.value)
    assert "Mette" not in str(err.value)


def test_value_rules_name_file_row_and_column(folder: Path) -> None:
    children = pl.read_parquet(folder / HUB_PATHS["children"])
    _rewrite(folder, "children", children.with_columns(pl.lit("999").alias("municipality")))
    with pytest.raises(InputError, match=r"children.parquet, row 1, column 'municipality': expected one of the 98") \
            as err:
        read_hub(folder)
    assert "999" not in str(err.value)


def test_a_signal_of_an_unknown_event_child_or_person_is_refused(folder: Path) -> None:
    signals = pl.read_parquet(folder / HUB_PATHS["signals"])
    _rewrite(folder, "signals", signals.with_columns(pl.lit("e.k0.unknown").alias("event_ref")))
    with pytest.raises(InputError) as err:
        read_hub(folder)
    text = str(err.value)
    assert "signals.parquet, row 1, column 'event_ref': expected an event that exists in events" in text
    assert "e.k0.unknown" not in text
    _rewrite(folder, "signals", pl.concat([signals, signals.head(1)]))
    with pytest.raises(InputError, match=r"signals.parquet, row \d+, column 'person': expected each "
                                         r"\(child, event_ref, person\) once"):
        read_hub(folder)


def test_missing_manifest_fields_and_other_formats(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    (folder / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "week"}))
    with pytest.raises(InputError, match="'week'"):
        read_hub(folder)
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format": "something-else"}))
    with pytest.raises(InputError, match="format"):
        read_hub(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="readable JSON"):
        read_hub(folder)


def test_write_refuses_a_non_empty_folder_without_force(folder: Path) -> None:
    hub = read_hub(folder)
    with pytest.raises(UsageError, match="--force"):
        write_hub(hub, folder)
    write_hub(hub, folder, force=True)
    assert read_hub(folder).tables["children"].equals(hub.children)


@pytest.mark.parametrize("version", [2, 3])
def test_an_extract_of_an_earlier_version_is_refused_with_what_to_do(folder: Path, version: int) -> None:
    """Version 2 carried children's ages and event times and places, version 3 codes, roles,
    relation types, districts and weeks in clear: run says to pseudonymise again."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": version}), encoding="utf-8")
    with pytest.raises(UsageError, match=rf"format version {version} .*pseudonymise the raw extracts again"):
        read_hub(folder)
