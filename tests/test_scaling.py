"""Past one machine (docs/scaling.md): the station's event work partitions by police district.

The station run on each group of districts' files (with the whole register and relations, and
the other districts named as absent) ships, together, exactly the hub extract of the whole
input: every pseudonymised frame's rows, as a set, are the union of the parts'. Only existing
pieces are used: the input is split by the files the districts deliver, each part is the
ordinary station, and the union is a Polars ``concat`` + ``unique``; any engine that runs a
function per partition (a process pool, Ray, Dask, Spark) would run the parts. The last cut, to
the children a draft can be made for (``draftable``, the weekly search with no history, from
which the hub extract is sealed), needs each child's events from every district, so it runs
once, on the union: the parts are compared before it (the frames ``draftable`` is given), and
``draftable`` on the union gives the whole's signals and drafts.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from socialsearch.catalogue import load_catalogue
from socialsearch.crypto.keys import KeyStore
from socialsearch.geography import geography
from socialsearch.hub_extract import HubExtract
from socialsearch.station import pipeline as station_pipeline
from socialsearch.station.extracts import read_raw
from socialsearch.station.pipeline import draftable, pseudonymise_extracts
from socialsearch.synthetic import synth
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek.parse("2026-W47")
SEARCHED = WEEK.shift(-1)  # this small country's week 47 drafts no one; week 46 drafts four children
# Compared without: the station's own row numbers of the raw files (``_event``, which a part counts
# from its own files), and the sealed columns.
SEALED = ("_event", "event_sealed", "person_sealed")


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scaling") / "extract"
    synth(folder, scale=0.01, seed=3, week=str(WEEK))
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


_FRAMES = ("incidents", "persons", "children", "relations")


def _station(folder: Path, keystore: KeyStore, absent: list[str],
             monkeypatch: pytest.MonkeyPatch) -> tuple[HubExtract, dict[str, pl.DataFrame]]:
    """The station's hub extract, and the pseudonymised frames it handed to ``draftable``."""
    given: dict[str, pl.DataFrame] = {}

    def recording(*args: Any) -> Any:
        given.update(zip(_FRAMES, args[:4], strict=True))
        return draftable(*args)

    monkeypatch.setattr(station_pipeline, "draftable", recording)
    hub = pseudonymise_extracts(read_raw(folder, absent_districts=absent), keystore, week=SEARCHED,
                                catalogue=load_catalogue())
    return hub, given


def _rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The table as a set of rows (sealed columns left out), in one order."""
    kept = frame.drop([c for c in SEALED if c in frame.columns]).unique()
    return kept.sort(kept.columns, nulls_last=True)


def test_the_station_by_district_groups_ships_the_union_of_the_whole(extract: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    keystore = KeyStore.init(tmp_path / "keys")
    codes = sorted(geography().district_codes)
    assert sorted(p.stem for p in (extract / "incidents").iterdir()) == codes  # one file per district
    whole, frames = _station(extract, keystore, [], monkeypatch)
    groups = [codes[i::3] for i in range(3)]
    parts = [_station(_part(extract, tmp_path / f"part-{i}", group), keystore,
                      [c for c in codes if c not in group], monkeypatch)[1]
             for i, group in enumerate(groups)]
    assert frames["incidents"].height > 0 and frames["children"].height > 0 and whole.children.height > 0
    union = {}
    for table, frame in frames.items():
        union[table] = pl.concat([part[table].drop("_event", strict=False) for part in parts], how="vertical").unique()
        assert _rows(union[table]).equals(_rows(frame)), table
    # Each event is shipped by exactly one part: its district's.
    assert sum(part["incidents"].height for part in parts) == frames["incidents"].height
    # The cut, run once on the union, gives the whole's signals and drafts (what the extract seals).
    catalogue = load_catalogue()
    _, signals, drafts = draftable(*(union[t] for t in _FRAMES), catalogue, SEARCHED)
    _, whole_signals, whole_drafts = draftable(*(frames[t].drop("_event", strict=False) for t in _FRAMES),
                                               catalogue, SEARCHED)
    assert signals.equals(whole_signals) and drafts.equals(whole_drafts)
    assert whole.signals.select("child", "event_ref", "person").equals(
        signals.select("child", "event_ref", "person").unique().sort("child", "event_ref", "person"))
