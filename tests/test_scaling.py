"""Past one machine (docs/scaling.md): the station's event work partitions by police district.

The station run on each group of districts' files (with the whole register and relations, and
the other districts named as absent) ships, together, exactly the hub extract of the whole
input: every table's rows, as a set, are the union of the parts'. Only existing pieces are used:
the input is split by the files the districts deliver, each part is the ordinary station, and
the union is a Polars ``concat`` + ``unique``; any engine that runs a function per partition
(a process pool, Ray, Dask, Spark) would run the parts. The last cut, to the children a draft
can be made for (``draftable``), needs each child's events from every district, so it runs once,
on the union: the parts are compared before it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from uncut import draftable_uncut

from socialsearch.catalogue import load_catalogue
from socialsearch.crypto.keys import KeyStore
from socialsearch.geography import geography
from socialsearch.hub_extract import HubExtract
from socialsearch.station import pipeline as station_pipeline
from socialsearch.station.extracts import read_raw
from socialsearch.station.pipeline import pseudonymise_extracts
from socialsearch.synthetic import synth
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")
# The sealed columns are AES-SIV under a data key drawn anew for every run: compared without them.
SEALED = ("event_sealed", "person_sealed")


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scaling") / "extract"
    synth(folder, scale=0.002, seed=3, week=str(WEEK))
    return folder


def _part(extract: Path, target: Path, districts: list[str]) -> Path:
    """The input of one partition: the districts' own event files; the register and relations whole."""
    for table in ("incidents", "incident_persons"):
        (target / table).mkdir(parents=True)
        for path in sorted((extract / table).iterdir()):  # one file per district
            if path.stem in districts:
                shutil.copy(path, target / table / path.name)
    for name in ("population.parquet", "relations.parquet"):
        shutil.copy(extract / name, target / name)
    return target


def _station(folder: Path, keystore: KeyStore, absent: list[str]) -> HubExtract:
    return pseudonymise_extracts(read_raw(folder, absent_districts=absent), keystore, week=WEEK,
                                 catalogue=load_catalogue())


def _rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The table as a set of rows (sealed columns left out), in one order."""
    kept = frame.drop([c for c in SEALED if c in frame.columns]).unique()
    return kept.sort(kept.columns, nulls_last=True)


def test_the_station_by_district_groups_ships_the_union_of_the_whole(extract: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(station_pipeline, "draftable", draftable_uncut)
    keystore = KeyStore.init(tmp_path / "keys")
    codes = sorted(geography().district_codes)
    assert sorted(p.stem for p in (extract / "incidents").iterdir()) == codes  # one file per district
    whole = _station(extract, keystore, [])
    groups = [codes[i::3] for i in range(3)]
    parts = [_station(_part(extract, tmp_path / f"part-{i}", group), keystore,
                      [c for c in codes if c not in group])
             for i, group in enumerate(groups)]
    assert whole.incidents.height > 0 and whole.children.height > 0
    for table, frame in whole.tables.items():
        union = pl.concat([part.tables[table] for part in parts], how="vertical")
        assert _rows(union).equals(_rows(frame)), table
    # Each event is shipped by exactly one part: its district's.
    assert sum(part.incidents.height for part in parts) == whole.incidents.height
