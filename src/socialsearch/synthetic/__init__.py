"""The synthetic Denmark: people, families and a year of police events in the input contract.

:func:`synth` writes the input contract's layout (``docs/data-contract.md``: one incidents and one
incident_persons file per police district, ``population`` and ``relations``) for a country of
``scale`` × Denmark, plus the
ground truth under ``OUT/truth/`` (not part of the input contract). Everything is drawn with
vectorised NumPy from the seed (one generator for the country, one stream per police district
for its incident persons), so the same seed, scale, week and catalogue give the same files.
Loops run over municipalities, districts, codes, role slots, name sources and chunks only,
never over people or events.

The country is held as compact arrays (names as indices into the name tables of
``data/names.json`` and Faker's lists); text is built and written per district and per chunk
of ``chunk_rows`` rows, which keeps ten Denmarks within a few GB.

The model (assumptions, rates and the sources of the name model) is documented in
``docs/synthetic-data.md``.

Examples
--------
>>> import tempfile, pathlib
>>> from socialsearch.weeks import IsoWeek
>>> s = synth(pathlib.Path(tempfile.mkdtemp()), scale=0.001, seed=1, week=IsoWeek(2026, 47))
>>> sorted(s.rows)
['incident_persons', 'incidents', 'population', 'relations']
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..catalogue import Catalogue, load_catalogue
from ..errors import UsageError
from ..geography import geography
from ..weeks import IsoWeek
from ._events import draw_events, event_specs, incident_frame
from ._model import INPUT_SCHEMAS, P_DASHED, Format
from ._names import draw_foreign_pool
from ._people import draw_people
from ._persons import corrupt, incident_persons
from ._registers import families_frame, population_chunk, relations_chunk, truth_people_chunk
from ._writing import ChunkedFile, check_out, remove_partial, write_frame, write_summary

__all__ = ["INPUT_SCHEMAS", "SynthSummary", "synth"]

# --------------------------------------------------------------------------- public API
#: Rows per chunk when the population, relations and truth/people are built and written.
_CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synth` wrote.

    ``rows`` counts rows per input table (``incidents``, ``incident_persons``, ``population``,
    ``relations``); ``fallback`` counts incident persons with an empty or invalid CPR, of whom
    ``foreign`` are in no register; ``files`` lists every file written, truth included.
    """

    out: Path
    week: str
    seed: int
    scale: float
    format: str
    rows: dict[str, int]
    people: int
    children: int
    families: int
    fallback: int
    foreign: int
    files: tuple[Path, ...]
    seconds: float = field(compare=False)


def synth(
    out: str | Path,
    *,
    scale: float = 0.01,
    seed: int = 0,
    week: str | IsoWeek,
    fmt: Format = "parquet",
    catalogue: Catalogue | str | Path | None = None,
    chunk_rows: int = _CHUNK_ROWS,
) -> SynthSummary:
    """Write a synthetic Denmark of ``scale`` × 5.97 million people to ``out`` (``socialsearch synth``).

    The country is drawn as compact numeric arrays (about 50 bytes a person); the text columns
    are built and written one police district, or one chunk of ``chunk_rows`` people or
    relations, at a time, so the peak memory stays well below the size of the tables.

    Parameters
    ----------
    out
        Folder to write to (created). Files of an earlier run in the same format are replaced; a
        folder holding input files of the other format is refused (the reader would read both).
    scale
        1.0 is Denmark; 0.01 (the default, as `socialsearch synth`) is about 60,000 people; 10 is ten
        Denmarks (about 60 million).
    seed
        Same seed, scale, week, format and catalogue → identical files.
    week
        The last ISO week of the 52 weeks of police events (by ``registered_at``).
    fmt
        ``"parquet"`` (date-times as ``Datetime("us", "Europe/Copenhagen")``) or ``"csv"``
        (UTF-8 with a header, local date-times without offset).
    catalogue
        The event-code catalogue (or its TOML file) whose codes get events; ``None`` loads the
        packaged one.
    chunk_rows
        Rows built and written at a time for the population, relations and ``truth/people``.
        It changes the memory used and the Parquet row groups, never the rows written.

    Raises
    ------
    UsageError
        A non-positive scale or chunk size, an unknown format, or ``out`` holding files of the
        other format.

    A run that fails or is interrupted removes what it wrote: the whole ``out`` when it made
    it, else the files of this run and the temporary files.
    """
    started = time.perf_counter()
    if not scale > 0:
        raise UsageError(f"scale {scale!r}: expected a positive number (1.0 is Denmark)")
    if fmt not in ("parquet", "csv"):
        raise UsageError(f"format {fmt!r}: expected 'parquet' or 'csv'")
    if chunk_rows < 1:
        raise UsageError(f"chunk_rows {chunk_rows!r}: expected a positive number of rows")
    if not isinstance(catalogue, Catalogue):
        catalogue = load_catalogue(catalogue)
    out = Path(out)
    week = week if isinstance(week, IsoWeek) else IsoWeek.parse(week)
    check_out(out, fmt)
    fresh = not out.exists()
    geo = geography()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x50C1A1]))

    people = draw_people(rng, geo, scale, week)
    specs = event_specs(catalogue)
    events = draw_events(rng, geo, people, specs, scale, week)
    foreign_pool = draw_foreign_pool(rng, int(events.persons[0].shape[0]))
    pop_dashed = rng.random(people.n) < P_DASHED["population"]
    n_rel = int(people.relations[0].shape[0])
    rel_dashed = (rng.random(n_rel) < P_DASHED["relations"], rng.random(n_rel) < P_DASHED["relations"])

    rows = {"incidents": 0, "incident_persons": 0}
    files: list[Path] = []
    scratch = out / f".synth-parts-{os.getpid()}"
    try:
        truth_incidents = ChunkedFile(out / "truth" / "incidents.parquet", "parquet", scratch)
        fallback_parts: list[pl.DataFrame] = []
        for d_index, district in enumerate(sorted(geo.district_codes)):
            # each district draws from its own stream, so no district depends on another's size
            drng = np.random.default_rng(np.random.SeedSequence([seed, 0x50C1A1, 1 + d_index]))
            incidents = incident_frame(geo, specs, events, district)
            rows["incidents"] += incidents.height
            files.append(write_frame(incidents.select(*INPUT_SCHEMAS["incidents"]),
                                      out / "incidents" / f"{district}.{fmt}", fmt))
            truth_incidents.add(incidents.select(
                "district", "incident_id", in_catalogue="_in_catalogue", category="_category",
                boundary=pl.when(pl.col("_boundary") != "").then("_boundary"),
            ))
            persons = incident_persons(drng, people, events, incidents)
            del incidents
            persons, fallback = corrupt(drng, persons, foreign_pool)
            rows["incident_persons"] += persons.height
            files.append(write_frame(persons.drop("_row"), out / "incident_persons" / f"{district}.{fmt}", fmt))
            fallback_parts.append(fallback)
            del persons
        del events

        population = ChunkedFile(out / f"population.{fmt}", fmt, scratch)
        order = np.lexsort((people.birth, people.municipality))  # by municipality, then age
        for start in range(0, people.n, chunk_rows):
            population.add(population_chunk(people, order[start:start + chunk_rows], pop_dashed))
        del order, pop_dashed
        files.append(population.close())

        relations = ChunkedFile(out / f"relations.{fmt}", fmt, scratch)
        for start in range(0, max(n_rel, 1), chunk_rows):
            relations.add(relations_chunk(people, slice(start, start + chunk_rows), rel_dashed))
        del rel_dashed
        files.append(relations.close())

        truth_people = ChunkedFile(out / "truth" / "people.parquet", "parquet", scratch)
        for start in range(0, people.n, chunk_rows):
            truth_people.add(truth_people_chunk(people, np.arange(start, min(start + chunk_rows, people.n))))
        fallback = pl.concat(fallback_parts)
        files += [
            write_frame(fallback, out / "truth" / "fallback.parquet", "parquet"),
            truth_people.close(),
            write_frame(families_frame(people), out / "truth" / "families.parquet", "parquet"),
            truth_incidents.close(),
        ]
    except BaseException:  # a full disk, Ctrl-C: no half-written country is left behind
        remove_partial(out, fresh=fresh, written=files)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = {"incidents": rows["incidents"], "incident_persons": rows["incident_persons"],
            "population": population.rows, "relations": relations.rows}
    foreign = int((fallback["kind"] == "foreign").sum())
    summary_json = {
        "week": str(week), "seed": seed, "scale": scale, "format": fmt,
        "catalogue_digest": catalogue.digest, "rows": rows,
        "people": people.n, "children": people.n_children, "families": people.n_families,
        "fallback": fallback.height, "foreign": foreign,
    }
    files.append(write_summary(out, summary_json))
    return SynthSummary(
        out=out, week=str(week), seed=seed, scale=scale, format=fmt, rows=rows,
        people=people.n, children=people.n_children, families=people.n_families,
        fallback=fallback.height, foreign=foreign, files=tuple(files),
        seconds=round(time.perf_counter() - started, 3),
    )


