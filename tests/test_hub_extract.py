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
    persons = pl.read_parquet(folder / "incident_persons" / "incident_persons.parquet")
    _rewrite(folder, "incident_persons", persons.with_columns(pl.lit("boss").alias("role")))
    with pytest.raises(InputError, match=r"incident_persons.parquet, row 1, column 'role': expected a role"):
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


def test_a_version_2_extract_is_refused_with_what_to_do(folder: Path) -> None:
    """Version 2 carried children's ages and event times and places: run says to pseudonymise again."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": 2}), encoding="utf-8")
    with pytest.raises(UsageError, match=r"format version 2 .*pseudonymise the raw extracts again"):
        read_hub(folder)


def test_a_bad_registration_week_is_refused_without_quoting_it(folder: Path) -> None:
    frame = pl.read_parquet(folder / HUB_PATHS["incidents"])
    _rewrite(folder, "incidents", frame.with_columns(pl.lit("2026-11-16").alias("registered_week")))
    with pytest.raises(InputError, match=r"registered_week.*an ISO week such as 2026-W47") as err:
        read_hub(folder)
    assert "2026-11-16" not in str(err.value)
