"""The synthetic Denmark: people, families and a year of police events in the input contract.

:func:`synth` writes DESIGN.md §3's layout (one incidents and one incident_persons file per
police district, ``population`` and ``relations``) for a country of ``scale`` × Denmark, plus the
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

import importlib
import json
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from .catalogue import Catalogue, Code, load_catalogue
from .contract import RAW_SCHEMA, RELATIONS, ROLES, TIME_ZONE
from .errors import UsageError
from .geography import Geography, geography
from .weeks import IsoWeek

__all__ = ["INPUT_SCHEMAS", "SynthSummary", "synth"]

Format = Literal["parquet", "csv"]
#: The input contract's columns and the types the generator writes (parquet).
INPUT_SCHEMAS = RAW_SCHEMA

# --------------------------------------------------------------------------- model constants
CHILDREN_NATIONAL = 1_150_000  # aged 0-17 (Danmarks Statistik, 2025)
KIDS_PER_FAMILY = np.array([0.38, 0.43, 0.15, 0.04])  # 1, 2, 3, 4 children under 18
# family structures
TOGETHER, SEP_JOINT, SEP_SOLE, FATHER_UNKNOWN, OTHER_CUSTODIAN = range(5)
STRUCTURES = ("together", "separated_joint_custody", "separated_sole_custody", "father_unknown",
              "custodian_not_parent")
STRUCTURE_P = np.array([0.68, 0.215, 0.07, 0.02, 0.015])
P_OTHER_PARENT_MOVED = 0.40  # separated: the non-resident parent lives in another municipality
P_STEP_PARENT = 0.45  # separated / father unknown: the resident parent lives with a new partner
P_MOTHER_RESIDENT = 0.80
# person kinds (truth/people.parquet "member")
OTHER, CHILD, MOTHER, FATHER, HOUSEHOLD, CUSTODIAN = range(6)
MEMBERS = ("other", "child", "mother", "father", "household", "custodian")
# risk: a small share of adults (and of 13-17-year-olds) carries most police involvement
RISK_SHARE_BY_AGE = ((18, 0.04), (30, 0.018), (50, 0.01), (65, 0.003))
RISK_SHAPE, RISK_BASELINE = 1.0, 0.012
CARER_RISK_FACTOR = 0.5  # adults living with children are less often at risk
YOUTH_RISK_SHARE, YOUTH_BASELINE = 0.04, 0.006
P_EVENT_AWAY = 0.2  # event in a random municipality rather than the main person's own
# identifiers
P_DASHED = {"population": 0.02, "relations": 0.02, "incident_persons": 0.08}
P_FALLBACK = 0.014  # incident persons with an empty or invalid CPR (a foreign person adds more)
P_FOREIGN = 0.003  # incident persons present in no register
FALLBACK_KINDS = ("empty", "wrong_length", "impossible_date", "fullwidth", "typo")
FALLBACK_P = np.array([0.45, 0.15, 0.12, 0.10, 0.18])
NAME_VARIANTS = ("none", "letter_swap", "transliterated", "dropped_given_name", "surname_variant",
                 "day_month_swap")
NAME_VARIANT_P = np.array([0.45, 0.13, 0.13, 0.09, 0.12, 0.08])

#: Journal-number prefixes (the district part of "0100-80123-00456-26"); the project's own.
DISTRICT_NUMBERS = {"KBH": "0100", "KVE": "0200", "NSJ": "0300", "MVS": "0400", "SSL": "0500",
                    "BOR": "0600", "FYN": "0700", "SSJ": "0800", "SOJ": "0900", "MVJ": "1000",
                    "OJY": "1100", "NJY": "1200"}
_OFFICES = ("76102", "80123", "80145", "81210", "84330")
# local hour of registration (police events peak in the evening and at weekend nights)
_HOUR_W = np.array([5.5, 5.0, 4.5, 3.5, 2.5, 2.0, 2.2, 3.0, 3.5, 4.0, 4.2, 4.3,
                    4.4, 4.5, 4.6, 4.8, 5.0, 5.2, 5.3, 5.3, 5.4, 5.5, 5.6, 5.6])

# --------------------------------------------------------------------------- event profiles
# Pools people are drawn from for a role slot.
RISK, RISK_PARENT, YOUTH, ANY_ADULT, ANY_CHILD, YOUNG_CHILD, CRIME, PARTNER, CHILD_OF, PARENT_OF = (
    range(10))
Mix = Mapping[int, float]
Slot = tuple[str, float, Mix]  # (role, probability the slot is filled, pool mixture)


@dataclass(frozen=True)
class _Profile:
    """How often a category occurs (national, per year) and who takes part in its events."""

    rate: float
    primary: Mix
    roles: tuple[str, ...]  # preferred role of the main person, first one the code allows
    others: tuple[Slot, ...] = ()


_VICTIM: Mix = {PARTNER: 0.25, CHILD_OF: 0.04, ANY_ADULT: 0.6, ANY_CHILD: 0.11}
_WITNESS: Slot = ("witness", 0.3, {ANY_ADULT: 1.0})
_ADULT_RISK: Mix = {RISK: 0.9, YOUTH: 0.1}
# Catalogue categories by id keyword (first match wins); unknown categories get _DEFAULT_PROFILE.
_PROFILES: tuple[tuple[str, _Profile], ...] = (
    ("psychological", _Profile(1_500, {RISK: 1.0}, ("suspect",), (("victim", 0.9, {PARTNER: 0.7, ANY_ADULT: 0.3}),))),
    ("sexual", _Profile(2_000, {RISK: 0.85, YOUTH: 0.15}, ("suspect",),
                        (("victim", 0.9, {ANY_CHILD: 0.6, CHILD_OF: 0.1, ANY_ADULT: 0.3}),))),
    ("violence", _Profile(25_000, {RISK: 0.85, YOUTH: 0.15}, ("suspect",),
                          (("victim", 0.9, _VICTIM), _WITNESS, ("witness", 0.1, {ANY_ADULT: 1.0})))),
    ("neglect", _Profile(3_000, {RISK_PARENT: 1.0}, ("suspect", "involved"), (("victim", 0.9, {CHILD_OF: 1.0}),))),
    ("threat", _Profile(10_000, {RISK: 0.9, YOUTH: 0.1}, ("suspect",),
                        (("victim", 0.9, {ANY_ADULT: 0.7, PARTNER: 0.2, ANY_CHILD: 0.1}), _WITNESS))),
    ("stalking", _Profile(1_500, {RISK: 1.0}, ("suspect",), (("victim", 0.95, {PARTNER: 0.6, ANY_ADULT: 0.4}),))),
    ("honour", _Profile(300, {RISK_PARENT: 1.0}, ("suspect", "involved"),
                        (("victim", 0.9, {CHILD_OF: 0.5, PARTNER: 0.3, ANY_ADULT: 0.2}),))),
    ("driving", _Profile(16_000, {RISK: 0.99, YOUTH: 0.01}, ("suspect",))),
    ("drug", _Profile(16_000, {RISK: 0.85, YOUTH: 0.15}, ("suspect",), (("suspect", 0.2, {RISK: 0.8, YOUTH: 0.2}),))),
    ("weapon", _Profile(4_000, {RISK: 0.9, YOUTH: 0.1}, ("suspect",))),
    ("arrest", _Profile(8_000, {RISK: 0.9, YOUTH: 0.1}, ("suspect",))),
    ("domestic", _Profile(18_000, {RISK: 1.0}, ("involved", "suspect"),
                          (("involved", 0.85, {PARTNER: 0.9, ANY_ADULT: 0.1}),
                           ("involved", 0.25, {CHILD_OF: 1.0}), ("witness", 0.1, {ANY_ADULT: 1.0})))),
    ("intoxica", _Profile(10_000, {RISK: 0.95, YOUTH: 0.05}, ("involved", "suspect"))),
    ("psychiatr", _Profile(14_000, {RISK: 0.95, YOUTH: 0.05}, ("involved",))),
    ("suicide", _Profile(5_000, {RISK: 0.88, YOUTH: 0.12}, ("involved",))),
    ("child", _Profile(1_500, {YOUTH: 0.6, YOUNG_CHILD: 0.4}, ("involved", "victim"),
                       (("involved", 0.7, {PARENT_OF: 1.0}),))),
)
_DEFAULT_PROFILE = _Profile(4_000, _ADULT_RISK, ("suspect", "involved"), (("victim", 0.5, {ANY_ADULT: 1.0}),))

# Codes outside the catalogue: (kind, code, label, national rate per year, slots; first = main person).
_GENERIC_INCIDENT = ("9000", "9010")  # hændelseskode of a reported offence / a patrol's own finding
_OTHER_CODES: tuple[tuple[str, str, str, float, tuple[Slot, ...]], ...] = (
    ("offence", "7100", "Tyveri", 85_000,
     (("victim", 1.0, {ANY_ADULT: 1.0}), ("suspect", 0.2, {CRIME: 0.8, YOUTH: 0.2}))),
    ("offence", "7110", "Butikstyveri", 30_000,
     (("suspect", 0.9, {CRIME: 0.7, YOUTH: 0.3}), ("witness", 0.5, {ANY_ADULT: 1.0}))),
    ("offence", "7120", "Indbrud i beboelse", 38_000,
     (("victim", 1.0, {ANY_ADULT: 1.0}), ("suspect", 0.08, {CRIME: 1.0}))),
    ("offence", "7130", "Cykeltyveri", 40_000,
     (("victim", 1.0, {ANY_ADULT: 0.8, ANY_CHILD: 0.2}), ("suspect", 0.03, {CRIME: 0.5, YOUTH: 0.5}))),
    ("offence", "7140", "Tyveri af eller fra bil", 20_000,
     (("victim", 1.0, {ANY_ADULT: 1.0}), ("suspect", 0.05, {CRIME: 1.0}))),
    ("offence", "7200", "Hærværk", 25_000,
     (("victim", 0.9, {ANY_ADULT: 1.0}), ("suspect", 0.2, {CRIME: 0.6, YOUTH: 0.4}))),
    ("offence", "7300", "Bedrageri", 45_000,
     (("victim", 1.0, {ANY_ADULT: 1.0}), ("suspect", 0.4, {CRIME: 1.0}))),
    ("offence", "7400", "Hastighedsovertrædelse", 60_000, (("suspect", 1.0, {ANY_ADULT: 1.0}),)),
    ("offence", "7410", "Kørsel uden kørekort", 12_000, (("suspect", 1.0, {CRIME: 0.7, ANY_ADULT: 0.3}),)),
    ("offence", "7500", "Overtrædelse af ordensbekendtgørelsen", 8_000,
     (("suspect", 1.0, {CRIME: 0.6, YOUTH: 0.4}),)),
    ("incident", "9100", "Færdselsuheld", 40_000,
     (("involved", 1.0, {ANY_ADULT: 1.0}), ("involved", 0.6, {ANY_ADULT: 1.0}), _WITNESS)),
    ("incident", "9110", "Støj og naboklage", 80_000, (("involved", 1.0, {ANY_ADULT: 1.0}),)),
    ("incident", "9120", "Hittegods", 40_000, (("involved", 0.8, {ANY_ADULT: 1.0}),)),
    ("incident", "9130", "Alarm", 60_000, (("involved", 0.3, {ANY_ADULT: 1.0}),)),
    ("incident", "9140", "Assistance til borger", 90_000, (("involved", 1.0, {ANY_ADULT: 0.8, RISK: 0.2}),)),
    ("incident", "9150", "Savnet voksen", 5_000, (("involved", 1.0, {RISK: 0.5, ANY_ADULT: 0.5}),)),
    ("incident", "9160", "Dyr", 15_000, (("involved", 0.7, {ANY_ADULT: 1.0}),)),
    ("incident", "9170", "Nabostrid", 25_000,
     (("involved", 1.0, {ANY_ADULT: 1.0}), ("involved", 1.0, {ANY_ADULT: 1.0}))),
    ("incident", "9180", "Uro og ordensforstyrrelse", 60_000,
     (("involved", 0.7, {ANY_ADULT: 0.6, CRIME: 0.2, YOUTH: 0.2}), ("witness", 0.2, {ANY_ADULT: 1.0}))),
    ("incident", "9190", "Færdselskontrol uden sigtelse", 50_000, (("involved", 1.0, {ANY_ADULT: 1.0}),)),
)


@dataclass(frozen=True)
class _Spec:
    """One code the generator emits events for."""

    incident_code: str
    offence_code: str  # "" when none
    rate: float  # national events per year
    slots: tuple[Slot, ...]
    category: str | None  # catalogue category, None outside the catalogue


# --------------------------------------------------------------------------- public API
#: Rows per chunk when the population, relations and truth/people are built and written.
CHUNK_ROWS = 1_000_000


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
    scale: float = 1.0,
    seed: int = 0,
    week: str | IsoWeek,
    fmt: Format = "parquet",
    catalogue: Catalogue | str | Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
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
        1.0 is Denmark; 0.01 is about 60,000 people; 10 is ten Denmarks (about 60 million).
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
    _check_out(out, fmt)
    geo = geography()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x50C1A1]))

    people = _people(rng, geo, scale, week)
    specs = _specs(catalogue)
    events = _events(rng, geo, people, specs, scale, week)
    foreign_pool = _foreign_pool(rng, int(events.persons[0].shape[0]))
    pop_dashed = rng.random(people.n) < P_DASHED["population"]
    n_rel = int(people.relations[0].shape[0])
    rel_dashed = (rng.random(n_rel) < P_DASHED["relations"], rng.random(n_rel) < P_DASHED["relations"])

    rows = {"incidents": 0, "incident_persons": 0}
    files: list[Path] = []
    scratch = out / f".synth-parts-{os.getpid()}"
    try:
        truth_incidents = _ChunkedFile(out / "truth" / "incidents.parquet", "parquet", scratch)
        fallback_parts: list[pl.DataFrame] = []
        for d_index, district in enumerate(sorted(geo.district_codes)):
            # each district draws from its own stream, so no district depends on another's size
            drng = np.random.default_rng(np.random.SeedSequence([seed, 0x50C1A1, 1 + d_index]))
            incidents = _incident_frame(geo, specs, events, district)
            rows["incidents"] += incidents.height
            files.append(_write_frame(incidents.select(*INPUT_SCHEMAS["incidents"]),
                                      out / "incidents" / f"{district}.{fmt}", fmt))
            truth_incidents.add(incidents.select(
                "district", "incident_id", in_catalogue="_in_catalogue", category="_category",
                boundary=pl.when(pl.col("_boundary") != "").then("_boundary"),
            ))
            persons = _incident_persons(drng, people, events, incidents)
            del incidents
            persons, fallback = _corrupt(drng, persons, foreign_pool)
            rows["incident_persons"] += persons.height
            files.append(_write_frame(persons.drop("_row"), out / "incident_persons" / f"{district}.{fmt}", fmt))
            fallback_parts.append(fallback)
            del persons
        del events

        population = _ChunkedFile(out / f"population.{fmt}", fmt, scratch)
        order = np.lexsort((people.birth, people.municipality))  # by municipality, then age
        for start in range(0, people.n, chunk_rows):
            population.add(_population_chunk(people, order[start:start + chunk_rows], pop_dashed))
        del order, pop_dashed
        files.append(population.close())

        relations = _ChunkedFile(out / f"relations.{fmt}", fmt, scratch)
        for start in range(0, max(n_rel, 1), chunk_rows):
            relations.add(_relations_chunk(people, slice(start, start + chunk_rows), rel_dashed))
        del rel_dashed
        files.append(relations.close())

        truth_people = _ChunkedFile(out / "truth" / "people.parquet", "parquet", scratch)
        for start in range(0, people.n, chunk_rows):
            truth_people.add(_truth_people_chunk(people, np.arange(start, min(start + chunk_rows, people.n))))
        fallback = pl.concat(fallback_parts)
        files += [
            _write_frame(fallback, out / "truth" / "fallback.parquet", "parquet"),
            truth_people.close(),
            _write_frame(_families_frame(people), out / "truth" / "families.parquet", "parquet"),
            truth_incidents.close(),
        ]
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
    files.append(_write_summary(out, summary_json))
    return SynthSummary(
        out=out, week=str(week), seed=seed, scale=scale, format=fmt, rows=rows,
        people=people.n, children=people.n_children, families=people.n_families,
        fallback=fallback.height, foreign=foreign, files=tuple(files),
        seconds=round(time.perf_counter() - started, 3),
    )


# --------------------------------------------------------------------------- people
@dataclass
class _People:
    """Everyone in the register as compact parallel arrays indexed by person number.

    Text (CPR numbers as strings, names) is never held for everyone at once: :meth:`cpr_str`,
    :meth:`given_str` and :meth:`surname_str` build it for the people of one chunk.
    """

    birth: np.ndarray  # int32 days since 1970-01-01
    male: np.ndarray  # bool
    municipality: np.ndarray  # int16 index into geography().municipalities
    member: np.ndarray  # int8 kind (CHILD, MOTHER, ...)
    family: np.ndarray  # int32 family number, -1 none
    partner: np.ndarray  # int32 person, -1 none
    risk: np.ndarray  # float32 adult propensity (0 for children)
    youth: np.ndarray  # float32 youth propensity (13-17-year-olds)
    cpr: np.ndarray  # int64, the ten digits DDMMYYSSSS as a number
    names: _PersonNames
    fam_start: np.ndarray  # first child of each family (children are contiguous by family)
    fam_size: np.ndarray
    fam_structure: np.ndarray
    fam_home: np.ndarray
    fam_mother: np.ndarray
    fam_father: np.ndarray  # -1 unknown
    relations: tuple[np.ndarray, np.ndarray, np.ndarray]  # child, adult, relation index
    sunday: int  # days since epoch of the week's Sunday

    @property
    def n(self) -> int:
        return int(self.birth.shape[0])

    @property
    def n_children(self) -> int:
        return int(self.fam_size.sum())

    @property
    def n_families(self) -> int:
        return int(self.fam_size.shape[0])

    def cpr_str(self, idx: np.ndarray) -> pl.Series:
        """CPR numbers ``DDMMYYSSSS`` of the people ``idx``."""
        return _cpr_strings(self.cpr[idx])

    def given_str(self, idx: np.ndarray) -> pl.Series:
        """Given names (one or two, space-separated) of the people ``idx``."""
        return _name_tables().given_str(self.names.g1[idx], self.names.g2[idx])

    def surname_str(self, idx: np.ndarray) -> pl.Series:
        """Surnames (with a middle name, hyphenated or not) of the people ``idx``."""
        nm = self.names
        return _name_tables().surname_str(nm.sm[idx], nm.s1[idx], nm.s2[idx], ~self.male[idx])




def _days(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def _shares(geo: Geography) -> np.ndarray:
    pop = np.array([m.population for m in geo.municipalities], dtype=np.float64)
    if pop.sum() <= 0:
        pop = np.ones_like(pop)
    return np.asarray(pop / pop.sum(), dtype=np.float64)


def _people(rng: np.random.Generator, geo: Geography, scale: float, week: IsoWeek) -> _People:
    """Families with their children, the other adults, residence, names and CPR numbers."""
    shares = _shares(geo)
    n_muni = shares.shape[0]
    total = max(int(round(sum(m.population for m in geo.municipalities) * scale)), 50)
    sunday = week.sunday
    sun = _days(sunday)
    child_min = _days(_years_before(sunday, 18)) + 1  # still 17 on Sunday
    adult_max = _days(_years_before(sunday, 18))  # 18 on Sunday at the latest

    # families and children (children contiguous by family)
    n_children_target = max(int(round(CHILDREN_NATIONAL * scale)), 10)
    mean_kids = float((np.arange(1, 5) * KIDS_PER_FAMILY).sum())
    n_fam = max(int(round(n_children_target / mean_kids)), 2)
    fam_size = rng.choice(4, size=n_fam, p=KIDS_PER_FAMILY) + 1
    structure = rng.choice(5, size=n_fam, p=STRUCTURE_P)
    home = rng.choice(n_muni, size=n_fam, p=shares)
    n_child = int(fam_size.sum())
    fam_start = np.concatenate(([0], np.cumsum(fam_size)[:-1]))
    child_fam = np.repeat(np.arange(n_fam), fam_size)
    child_birth = rng.integers(child_min, sun + 1, size=n_child)
    oldest = np.minimum.reduceat(child_birth, fam_start)

    # parents: mothers for every family, fathers unless unknown
    has_father = structure != FATHER_UNKNOWN
    mother_age_first = np.clip(rng.normal(29.5, 5.0, n_fam), 18.0, 45.0)
    mother_birth = np.minimum(oldest - np.round(mother_age_first * 365.25).astype(np.int64), adult_max)
    gap = np.clip(rng.normal(2.5, 3.5, n_fam), -6.0, 15.0)
    father_birth = np.minimum(mother_birth - np.round(gap * 365.25).astype(np.int64),
                              oldest - 6575)  # at least 18 at the first child's birth
    father_birth = np.minimum(father_birth, adult_max)
    fathers_fam = np.flatnonzero(has_father)

    # the rest: adults drawn so the whole adult age pyramid looks Danish
    n_parents = n_fam + fathers_fam.shape[0]
    n_other = max(total - n_child - n_parents, n_fam)  # room for step-parents and custodians
    ages = np.arange(18, 105)
    pyramid = np.select([ages < 60, ages < 70, ages < 80, ages < 90, ages < 100],
                        [1.0, 0.95, 0.8, 0.35, 0.07], 0.003)
    parent_births = np.concatenate((mother_birth, father_birth[fathers_fam]))
    parent_age = np.clip((sun - parent_births) // 365, 18, 104) - 18
    target = pyramid / pyramid.sum() * (n_other + n_parents)
    other_w = np.clip(target - np.bincount(parent_age, minlength=ages.shape[0]), 0.0, None) + 1e-9
    other_age = ages[rng.choice(ages.shape[0], size=n_other, p=other_w / other_w.sum())]
    other_birth = np.minimum(sun - other_age * 365 - np.round(other_age * 0.2425).astype(np.int64)
                             - rng.integers(0, 365, size=n_other), adult_max)

    # person numbers: [children][mothers][fathers][others]
    i_mother = n_child + np.arange(n_fam)
    i_father = np.full(n_fam, -1, dtype=np.int64)
    i_father[fathers_fam] = n_child + n_fam + np.arange(fathers_fam.shape[0])
    i_other0 = n_child + n_parents
    n = i_other0 + n_other
    birth = np.concatenate((child_birth, mother_birth, father_birth[fathers_fam], other_birth))
    male = np.concatenate((rng.random(n_child) < 0.512, np.zeros(n_fam, bool),
                           np.ones(fathers_fam.shape[0], bool), rng.random(n_other) < 0.497))
    member = np.concatenate((np.full(n_child, CHILD), np.full(n_fam, MOTHER),
                             np.full(fathers_fam.shape[0], FATHER), np.full(n_other, OTHER))).astype(np.int8)
    family = np.full(n, -1, dtype=np.int32)
    family[:n_child] = child_fam
    family[i_mother] = np.arange(n_fam)
    family[i_father[fathers_fam]] = fathers_fam
    municipality = np.empty(n, dtype=np.int16)
    municipality[:n_child] = home[child_fam]
    municipality[i_other0:] = rng.choice(n_muni, size=n_other, p=shares)

    # who lives where: separated parents, and parents of children in another's custody
    separated = (structure == SEP_JOINT) | (structure == SEP_SOLE)
    mother_resident = np.where(separated, rng.random(n_fam) < P_MOTHER_RESIDENT, True)
    elsewhere = rng.choice(n_muni, size=n_fam, p=shares)
    moved = rng.random(n_fam) < P_OTHER_PARENT_MOVED
    other_custodian = structure == OTHER_CUSTODIAN
    municipality[i_mother] = np.where((~mother_resident | other_custodian) & moved, elsewhere, home)
    father_home = np.where((separated & mother_resident | other_custodian) & moved, elsewhere, home)
    municipality[i_father[fathers_fam]] = father_home[fathers_fam]

    # step-parents (household) and non-parent custodians, taken from the other adults
    other_idx = np.arange(i_other0, n)
    step_fam = np.flatnonzero((separated | (structure == FATHER_UNKNOWN)) & (rng.random(n_fam) < P_STEP_PARENT))
    cust_fam = np.flatnonzero(other_custodian)
    pool = other_idx[(other_age >= 25) & (other_age <= 65)]
    picked = rng.choice(pool, size=min(step_fam.shape[0] + cust_fam.shape[0], pool.shape[0]), replace=False)
    step_fam = step_fam[: max(picked.shape[0] - cust_fam.shape[0], 0)]
    i_step, i_cust = picked[: step_fam.shape[0]], picked[step_fam.shape[0]:]
    cust_fam = cust_fam[: i_cust.shape[0]]
    member[i_step], member[i_cust] = HOUSEHOLD, CUSTODIAN
    family[i_step], family[i_cust] = step_fam, cust_fam
    municipality[i_step], municipality[i_cust] = home[step_fam], home[cust_fam]

    # partners: couples, and a resident parent's new partner
    partner = np.full(n, -1, dtype=np.int32)
    couple = np.flatnonzero(has_father)
    partner[i_mother[couple]] = i_father[couple]
    partner[i_father[couple]] = i_mother[couple]
    resident = np.where(mother_resident, i_mother, i_father)
    partner[i_step] = resident[step_fam]
    partner[resident[step_fam]] = i_step
    male[i_step] = ~male[resident[step_fam]]  # the new partner of the resident parent

    relations = _relation_arrays(n_fam, fam_size, structure, i_mother, i_father,
                                 mother_resident, step_fam, i_step, cust_fam, i_cust)
    risk, youth = _propensities(rng, birth, member, sun)
    cpr = _cpr_numbers(birth, male, rng)
    names = _draw_names(rng, _name_tables(), male, i_father, i_mother, child_fam, n_child)
    return _People(
        birth=birth.astype(np.int32), male=male, municipality=municipality, member=member, family=family,
        partner=partner, risk=risk, youth=youth, cpr=cpr, names=names,
        fam_start=fam_start, fam_size=fam_size, fam_structure=structure, fam_home=home,
        fam_mother=i_mother, fam_father=i_father, relations=relations, sunday=sun,
    )


def _relation_arrays(
    n_fam: int, fam_size: np.ndarray, structure: np.ndarray,
    i_mother: np.ndarray, i_father: np.ndarray, mother_resident: np.ndarray,
    step_fam: np.ndarray, i_step: np.ndarray, cust_fam: np.ndarray, i_cust: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(child, adult, relation) rows: parents, custodians and household adults per family."""
    child_fam = np.repeat(np.arange(n_fam), fam_size)
    child = np.arange(child_fam.shape[0])
    mother, father = i_mother[child_fam], i_father[child_fam]
    st = structure[child_fam]
    has_father = father >= 0
    # custody: both parents unless sole custody (the resident parent), father unknown (the mother)
    # or custody with someone else (no parent)
    m_cust = (st != OTHER_CUSTODIAN) & ((st != SEP_SOLE) | mother_resident[child_fam])
    f_cust = has_father & (st != OTHER_CUSTODIAN) & ((st != SEP_SOLE) | ~mother_resident[child_fam])
    step_of = np.full(n_fam, -1, dtype=np.int64)
    step_of[step_fam] = i_step
    cust_of = np.full(n_fam, -1, dtype=np.int64)
    cust_of[cust_fam] = i_cust
    step, cust = step_of[child_fam], cust_of[child_fam]
    parts = [
        (child, mother, 0),
        (child[has_father], father[has_father], 1),
        (child[m_cust], mother[m_cust], 2),
        (child[f_cust], father[f_cust], 2),
        (child[cust >= 0], cust[cust >= 0], 2),
        (child[step >= 0], step[step >= 0], 3),
    ]
    c = np.concatenate([p[0] for p in parts]).astype(np.int32)
    a = np.concatenate([p[1] for p in parts]).astype(np.int32)
    r = np.concatenate([np.full(p[0].shape[0], p[2], dtype=np.int8) for p in parts])
    order = np.lexsort((r, c))
    return c[order], a[order], r[order]


def _propensities(rng: np.random.Generator, birth: np.ndarray, member: np.ndarray,
                  sun: int) -> tuple[np.ndarray, np.ndarray]:
    """Adult risk (heavy-tailed on a few per cent) and the same for 13-17-year-olds."""
    n = birth.shape[0]
    age = (sun - birth) // 365.2425
    share = np.zeros(n)
    for lo, p in RISK_SHARE_BY_AGE:
        share[age >= lo] = p
    adult = member != CHILD
    share[member != OTHER] *= CARER_RISK_FACTOR
    at_risk = adult & (rng.random(n) < share)
    risk = np.where(adult, RISK_BASELINE, 0.0)
    risk[at_risk] += rng.gamma(RISK_SHAPE, 1.0, int(at_risk.sum()))
    risk[adult & (age >= 80)] *= 0.2
    teen = (member == CHILD) & (age >= 13)
    youth_at = teen & (rng.random(n) < YOUTH_RISK_SHARE)
    youth = np.where(teen, YOUTH_BASELINE * (age - 11), 0.0)
    youth[youth_at] += rng.gamma(RISK_SHAPE, 1.0, int(youth_at.sum()))
    return risk.astype(np.float32), youth.astype(np.float32)


# the 7th digit per birth century (reference/README.md): allowed digits, a 4-slot class has -1s
_CENTURY_DIGITS = {1800: (5, 6, 7, 8), 1900: (0, 1, 2, 3), 1937: (0, 1, 2, 3, 4, 9),
                   2000: (4, 5, 6, 7, 8, 9)}


# the 7th digit per birth century (reference/README.md): allowed digits, a 4-slot class has -1s
_CENTURY_DIGITS = {1800: (5, 6, 7, 8), 1900: (0, 1, 2, 3), 1937: (0, 1, 2, 3, 4, 9),
                   2000: (4, 5, 6, 7, 8, 9)}
_CPR_BLOCK = 4_000_000  # people per block of the serial arithmetic (bounds its temporaries)


def _cpr_numbers(birth: np.ndarray, male: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unique, valid CPR numbers ``DDMMYYSSSS`` (as int64) for the birth dates and sexes.

    Within each (birth date, sex) the k-th person gets serial ``(offset + k * 7919) mod M`` over
    the M = digits × 500 serials the century table allows with the right parity (odd = male);
    7919 is prime and M's prime factors are 2, 3 and 5, so the serials are distinct.
    :func:`_cpr_strings` writes them with their leading zero.
    """
    n = int(birth.shape[0])
    key = birth.astype(np.int64) * 2 + male
    order = np.argsort(key, kind="stable")
    sk = key[order]
    first = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    del sk
    rank_sorted = np.arange(n, dtype=np.int64) - np.repeat(first, np.diff(np.r_[first, n]))
    del first
    rank = np.empty(n, dtype=np.int64)
    rank[order] = rank_sorted
    del order, rank_sorted
    table = np.full((4, 6), -1, dtype=np.int64)
    for i, digits in enumerate(_CENTURY_DIGITS.values()):
        table[i, : len(digits)] = digits
    salt = int(rng.integers(0, 1 << 20))
    number = np.empty(n, dtype=np.int64)
    for a in range(0, n, _CPR_BLOCK):
        b = min(a + _CPR_BLOCK, n)
        days = birth[a:b].astype("datetime64[D]")
        months = days.astype("datetime64[M]")
        year = months.astype("datetime64[Y]").astype(np.int64) + 1970
        month = months.astype(np.int64) % 12 + 1
        day = (days - months).astype(np.int64) + 1
        cls = np.select([year < 1900, year < 1937, year < 2000], [0, 1, 2], 3)
        m = (table >= 0).sum(axis=1)[cls] * 500
        v = ((key[a:b] * 2654435761 + salt) % m + rank[a:b] * 7919) % m
        rem = v % 500
        serial = table[cls, v // 500] * 1000 + (rem // 5) * 10 + 2 * (rem % 5) + male[a:b]
        number[a:b] = day * 10**8 + month * 10**6 + (year % 100) * 10**4 + serial
    return number


def _cpr_strings(number: np.ndarray) -> pl.Series:
    """CPR numbers from :func:`_cpr_numbers` as ten-digit strings."""
    return pl.Series("cpr", number, dtype=pl.Int64).cast(pl.String).str.zfill(10)


# --------------------------------------------------------------------------- names
_NAMES_FILE = Path(__file__).resolve().parent / "data" / "names.json"
P_DOUBLE_GIVEN = (0.25, 0.10)  # two given names: Danish origin, other origins
P_MIDDLE = 0.15  # a Danish-origin adult with a middle name (a surname-like name before the surname)
P_HYPHEN = 0.02  # a Danish-origin adult with a hyphenated surname
P_TAKE_PARTNERS = 0.55  # a mother with a known father carries the father's surname ...
P_KEEP_AS_MIDDLE = 0.5  # ... and keeps her own as a middle name
P_CHILD_FATHERS = 0.7  # a child carries the father's surname (else the mother's)
P_CHILD_MIDDLE = 0.25  # a child carries the other parent's surname as a middle name
_CYRILLIC = dict(zip(
    "абвгґдеєёжзиіїйклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "h", "g", "d", "e", "ie", "io", "zh", "z", "y", "i", "i", "i", "k", "l", "m", "n",
     "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "iu", "ia"],
    strict=True,
))


@dataclass(frozen=True)
class _PersonNames:
    """Names as indices into the name tables (-1: none)."""

    origin: np.ndarray  # int8 name source (0 Danish, see _NameTables.sources)
    g1: np.ndarray  # int32 first given name
    g2: np.ndarray  # int32 second given name or -1
    sm: np.ndarray  # int32 middle name (a surname) or -1
    s1: np.ndarray  # int32 surname
    s2: np.ndarray  # int32 second part of a hyphenated surname or -1


@dataclass(frozen=True)
class _Group:
    """Weighted names of several groups in one table; group g's cumulative weights run from g to g + 1."""

    cdf: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def of(weights: list[np.ndarray]) -> _Group:
        sizes = np.array([w.shape[0] for w in weights], dtype=np.int64)
        cdf = np.concatenate([g + np.cumsum(w) / w.sum() for g, w in enumerate(weights)])
        lo = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        return _Group(cdf=cdf, lo=lo, hi=lo + sizes)

    def draw(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        """One name index per row, drawn by weight within the row's group."""
        idx = np.searchsorted(self.cdf, group + rng.random(group.shape[0]), side="right")
        return np.clip(idx, self.lo[group], self.hi[group] - 1).astype(np.int32)


@dataclass(frozen=True)
class _NameTables:
    """Every name the generator uses, with its popularity, per name source (origin)."""

    sources: tuple[str, ...]  # "dk" first, then Faker locales and the curated lists
    origin_p: np.ndarray  # share of each source among people of foreign origin (index 0 unused)
    immigrant_share: float
    given: pl.Series  # groups source*2 + female
    given_groups: _Group
    surname: pl.Series  # groups by source; the masculine or neutral form
    surname_female: pl.Series  # the feminine form (Polish -ska, Russian -ova, ...), else the same
    surname_groups: _Group
    danish_surname_p: np.ndarray  # the Danish surname distribution (for documentation and tests)
    hyphenated: np.ndarray  # bool per surname: already hyphenated (Nørgaard-Pedersen, Al-Hassan)

    def draw_origin(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Name sources for ``size`` households or people: Danish or, for ~15 %, a foreign origin."""
        foreign = rng.random(size) < self.immigrant_share
        src = rng.choice(len(self.sources), size=size, p=self.origin_p)
        return np.where(foreign, src, 0).astype(np.int8)

    def given_str(self, g1: np.ndarray, g2: np.ndarray) -> pl.Series:
        frame = pl.DataFrame({"a": self.given.gather(g1), "b": self.given.gather(np.maximum(g2, 0)),
                              "two": g2 >= 0})
        return frame.select(given_name=pl.when("two").then(pl.concat_str(["a", "b"], separator=" "))
                            .otherwise("a")).to_series()

    def surname_str(self, sm: np.ndarray, s1: np.ndarray, s2: np.ndarray, female: np.ndarray) -> pl.Series:
        frame = pl.DataFrame({
            "mid": self.surname.gather(np.maximum(sm, 0)), "has_mid": sm >= 0,
            "m1": self.surname.gather(s1), "f1": self.surname_female.gather(s1),
            "m2": self.surname.gather(np.maximum(s2, 0)), "f2": self.surname_female.gather(np.maximum(s2, 0)),
            "has_second": s2 >= 0, "female": female,
        })
        first = pl.when("female").then("f1").otherwise("m1")
        second = pl.when("female").then("f2").otherwise("m2")
        last = pl.when("has_second").then(pl.concat_str([first, second], separator="-")).otherwise(first)
        return frame.select(surname=pl.when("has_mid").then(pl.concat_str([pl.col("mid"), last], separator=" "))
                            .otherwise(last)).to_series()


def _zipf(n: int, s: float, shuffle_seed: int | None, offset: float = 3.0) -> np.ndarray:
    """Zipf-like popularity of ``n`` names (in list order, or in a fixed shuffled order)."""
    w = 1.0 / (np.arange(n) + offset) ** s
    if shuffle_seed is not None:  # lists in alphabetical order: fixed, seed-independent popularity
        w = np.random.default_rng(shuffle_seed).permutation(w)
    return np.asarray(w / w.sum(), dtype=np.float64)


def _plain(name: str) -> str:
    """Cyrillic transliterated, Vietnamese tone marks removed; other Latin letters kept."""
    if any("\u0400" <= c <= "\u04ff" for c in name):
        out = "".join(_CYRILLIC.get(c.lower(), c) if c.lower() in _CYRILLIC else c for c in name)
        return out[:1].upper() + out[1:]
    return name


def _strip_marks(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _weighted(names: object, seed: int) -> tuple[list[str], np.ndarray]:
    """A Faker list (alphabetical: Zipf in a fixed shuffled order) or weighted dict, deduplicated."""
    if isinstance(names, Mapping):
        keys, w = list(names), np.array(list(names.values()), dtype=np.float64)
    else:
        keys = list(names)  # type: ignore[call-overload]
        w = _zipf(len(keys), 0.8, seed)
    frame = pl.DataFrame({"n": keys, "w": w}).group_by("n", maintain_order=True).agg(pl.col("w").sum())
    return frame["n"].to_list(), frame["w"].to_numpy()


def _feminine(name: str, locale: str) -> str:
    """The feminine form of a surname where the language has one and Faker lists only one form."""
    if locale == "bg_BG" and name.endswith(("ов", "ев", "ин")):
        return name + "а"
    if locale == "pl_PL":
        for male, female in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")):
            if name.endswith(male):
                return name[: -len(male)] + female
    return name


def _paired(male: Sequence[str], female: Sequence[str]) -> bool:
    """Whether Faker's masculine and feminine surname lists are the same names (Ivanov, Ivanova)."""
    if not male or len(male) != len(female):
        return False
    return sum(f.startswith(m[:-2]) for m, f in zip(male, female, strict=True)) > 0.9 * len(male)


def _source_lists(key: str, curated: Mapping[str, Mapping[str, list[str]]], seed: int) -> tuple[
        tuple[list[str], np.ndarray], tuple[list[str], np.ndarray], tuple[list[str], list[str], np.ndarray]]:
    """(male given, female given, (surnames, feminine surnames, weights)) of one name source."""
    if key in curated:
        lists = curated[key]
        men, women, last = lists["male"], lists["female"], lists["surnames"]
        return ((men, _zipf(len(men), 0.9, None)), (women, _zipf(len(women), 0.9, None)),
                (last, last, _zipf(len(last), 0.9, None)))
    provider = importlib.import_module(f"faker.providers.person.{key}").Provider
    if key == "zh_CN":
        given = _weighted(provider.first_romanized_names, seed)
        last_names, last_w = _weighted(provider.last_romanized_names, seed + 1)
        return given, given, (last_names, last_names, last_w)
    male = _weighted(getattr(provider, "first_names_male", None) or provider.first_names, seed)
    female = _weighted(getattr(provider, "first_names_female", None) or provider.first_names, seed + 1)
    fem_list: list[str] | None = None
    if key == "pl_PL":
        last_names, last_w = _weighted(provider.male_last_names, seed + 2)
    elif key == "uk_UA":
        last_names, last_w = _weighted(provider.last_names_common, seed + 2)  # same for both sexes
    elif _paired(getattr(provider, "last_names_male", ()), getattr(provider, "last_names_female", ())):
        last_names, last_w = _weighted(provider.last_names_male, seed + 2)
        pairs = dict(zip(provider.last_names_male, provider.last_names_female, strict=True))
        fem_list = [pairs[n] for n in last_names]
    else:
        last_names, last_w = _weighted(provider.last_names, seed + 2)
    if fem_list is None:
        fem_list = [_feminine(n, key) for n in last_names]
    clean = _strip_marks if key == "vi_VN" else _plain
    return (([clean(n) for n in male[0]], male[1]), ([clean(n) for n in female[0]], female[1]),
            ([clean(n) for n in last_names], [clean(n) for n in fem_list], last_w))


def _danish_surnames(spec: Mapping[str, object], immigrant_share: float,
                     foreign_sen: float) -> tuple[list[str], np.ndarray]:
    """Danish surnames and their probabilities (see docs/synthetic-data.md, "Names").

    The ten most common names get their 2016 shares; the other -sen names and the rest share
    the remaining mass, Zipf-like in list order, so that ``sen_share`` of everyone carries a -sen
    name. The tail is Faker's da_DK list, the listed names, then place-name compounds
    (prefix + suffix: Øster+gaard, Birk+holm, Lund+by, ...) in a fixed shuffled order.
    """
    from faker.providers.person.da_DK import Provider as Da

    top: Mapping[str, int] = spec["top_2016"]  # type: ignore[assignment]
    population = float(spec["population_2016"])  # type: ignore[arg-type]
    prefixes: list[str] = spec["compound_prefixes"]  # type: ignore[assignment]
    suffixes: list[str] = spec["compound_suffixes"]  # type: ignore[assignment]
    compounds = [p + s for p in prefixes for s in suffixes
                 if s not in p.lower() and p.lower() not in s and not re.search(r"(.)\1\1", (p + s).lower())]
    compounds = list(np.random.default_rng(0x5E7).permutation(np.array(compounds)))
    listed = [*Da.last_names, *spec["sen"], *spec["other"], *compounds]  # type: ignore[misc]
    seen = set(top)
    tail: list[str] = []
    for name in listed:
        if name not in seen:
            seen.add(name)
            tail.append(str(name))
    sen = [n for n in tail if n.endswith("sen")]
    other = [n for n in tail if not n.endswith("sen")]
    # shares among the Danish-origin draws: exact top ten after hyphenation, and the -sen total
    p_top = np.array(list(top.values()), dtype=np.float64) / population / (1 - immigrant_share) / (1 - P_HYPHEN)
    sen_total = (float(spec["sen_share"]) - immigrant_share * foreign_sen) / (1 - immigrant_share)  # type: ignore[arg-type]
    p_sen = _zipf(len(sen), 1.0, None, 3.0) * (sen_total - p_top.sum())
    p_other = _zipf(len(other), 1.0, None, 12.0) * (1.0 - sen_total)
    return [*top, *sen, *other], np.concatenate((p_top, p_sen, p_other))


@lru_cache(maxsize=1)
def _name_tables() -> _NameTables:
    """The name tables, built once from names.json and Faker's lists."""
    spec = json.loads(_NAMES_FILE.read_text(encoding="utf-8"))
    from faker.providers.person.da_DK import Provider as Da

    curated = spec["curated"]
    origins = spec["origins"]
    weight: dict[str, float] = {}
    for _country, count, keys in origins["countries"]:
        parts = keys.split()
        for key in parts:
            weight[key] = weight.get(key, 0.0) + count / len(parts)
    foreign = sorted(weight, key=lambda k: -weight[k])
    sources = ("dk", *foreign)
    origin_p = np.array([0.0, *(weight[k] for k in foreign)])
    origin_p /= origin_p.sum()
    immigrant_share = float(origins["share_of_population"])

    given: list[str] = []
    given_w: list[np.ndarray] = []
    surnames: list[str] = []
    surnames_f: list[str] = []
    surname_w: list[np.ndarray] = []
    foreign_sen = 0.0
    for i, key in enumerate(foreign):
        (male, male_w), (female, female_w), (last, last_f, last_w) = _source_lists(key, curated, 100 + 10 * i)
        given += [*male, *female]
        given_w += [male_w, female_w]
        surnames += last
        surnames_f += last_f
        surname_w.append(last_w)
        sen = np.array([n.endswith("sen") for n in last])
        foreign_sen += origin_p[1 + i] * float(last_w[sen].sum() / last_w.sum())
    dk_last, dk_p = _danish_surnames(spec["surnames_dk"], immigrant_share, foreign_sen)
    dk_male, dk_female = list(Da.first_names_male), list(Da.first_names_female)
    given = [*dk_male, *dk_female, *given]
    given_w = [_zipf(len(dk_male), 0.8, 11), _zipf(len(dk_female), 0.8, 12), *given_w]
    return _NameTables(
        sources=sources, origin_p=origin_p, immigrant_share=immigrant_share,
        given=pl.Series(given, dtype=pl.String), given_groups=_Group.of(given_w),
        surname=pl.Series([*dk_last, *surnames], dtype=pl.String),
        surname_female=pl.Series([*dk_last, *surnames_f], dtype=pl.String),
        surname_groups=_Group.of([dk_p, *surname_w]), danish_surname_p=dk_p,
        hyphenated=np.array(["-" in name for name in [*dk_last, *surnames]], dtype=bool),
    )


def _draw_names(rng: np.random.Generator, tables: _NameTables, male: np.ndarray, i_father: np.ndarray,
                i_mother: np.ndarray, child_fam: np.ndarray, n_child: int) -> _PersonNames:
    """Origins, given names and surnames; families share an origin and pass surnames on.

    Everyone draws their own names first (as indices, from their origin's lists). Then a mother
    with a known father takes his surname (often keeping hers as a middle name), and children
    take the father's or the mother's surname, sometimes the other parent's as a middle name.
    """
    n = int(male.shape[0])
    n_fam = int(i_mother.shape[0])
    origin = tables.draw_origin(rng, n)
    fam_origin = tables.draw_origin(rng, n_fam)
    origin[:n_child] = fam_origin[child_fam]
    origin[i_mother] = fam_origin
    has_father = i_father >= 0
    origin[i_father[has_father]] = fam_origin[has_father]
    danish = origin == 0

    ggroup = origin.astype(np.int64) * 2 + ~male
    g1, g2 = tables.given_groups.draw(rng, ggroup), tables.given_groups.draw(rng, ggroup)
    del ggroup
    double = (rng.random(n) < np.where(danish, P_DOUBLE_GIVEN[0], P_DOUBLE_GIVEN[1])) & (g1 != g2)
    g2 = np.where(double, g2, -1).astype(np.int32)

    sgroup = origin.astype(np.int64)
    s1 = tables.surname_groups.draw(rng, sgroup)
    s2 = tables.surname_groups.draw(rng, sgroup)
    plain = ~tables.hyphenated[s1] & ~tables.hyphenated[s2] & (s1 != s2)  # no triple-barrelled names
    s2 = np.where(danish & (rng.random(n) < P_HYPHEN) & plain, s2, -1).astype(np.int32)
    del plain
    del sgroup
    mid_draw = tables.surname_groups.draw(rng, np.zeros(n, dtype=np.int64))
    sm = np.where(danish & (rng.random(n) < P_MIDDLE) & (mid_draw != s1), mid_draw, -1).astype(np.int32)
    del mid_draw

    # a mother takes the father's surname, often keeping her own as a middle name
    take = np.flatnonzero(has_father & (rng.random(n_fam) < P_TAKE_PARTNERS))
    keep = rng.random(take.shape[0]) < P_KEEP_AS_MIDDLE
    mothers, fathers = i_mother[take], i_father[take]
    own = s1[mothers]
    sm[mothers] = np.where(keep & danish[mothers] & (s2[mothers] < 0) & (own != s1[fathers]), own, sm[mothers])
    s1[mothers], s2[mothers] = s1[fathers], s2[fathers]

    # children: the father's surname (70 %) or the mother's, the same for all siblings; sometimes
    # the other parent's as a middle name
    from_father = has_father & (rng.random(n_fam) < P_CHILD_FATHERS)
    src = np.where(from_father, i_father, i_mother)
    other = np.where(from_father, i_mother, i_father)
    other_s1 = s1[np.maximum(other, 0)]
    middle = (fam_origin == 0) & (other >= 0) & (rng.random(n_fam) < P_CHILD_MIDDLE) & (other_s1 != s1[src]) \
        & (s2[src] < 0)
    s1[:n_child], s2[:n_child] = s1[src][child_fam], s2[src][child_fam]
    sm[:n_child] = np.where(middle, other_s1, sm[src])[child_fam]
    return _PersonNames(origin=origin, g1=g1, g2=g2, sm=sm, s1=s1, s2=s2)


@dataclass(frozen=True)
class _ForeignPool:
    """People in no register (tourists, foreign workers): their names and birth dates."""

    given: pl.Series
    surname: pl.Series
    birth: pl.Series  # Date


def _foreign_pool(rng: np.random.Generator, n_rows: int) -> _ForeignPool:
    """A pool smaller than the foreign rows expected, so some foreigners appear on several events."""
    tables = _name_tables()
    size = max(int(n_rows * P_FOREIGN / 1.3), 1)
    src = rng.choice(len(tables.sources) - 1, size=size, p=tables.origin_p[1:]) + 1
    male = rng.random(size) < 0.6
    gg = src.astype(np.int64) * 2 + ~male
    g1, g2 = tables.given_groups.draw(rng, gg), tables.given_groups.draw(rng, gg)
    g2 = np.where((rng.random(size) < P_DOUBLE_GIVEN[1]) & (g1 != g2), g2, -1)
    s1 = tables.surname_groups.draw(rng, src.astype(np.int64))
    none = np.full(size, -1, dtype=np.int32)
    return _ForeignPool(
        given=tables.given_str(g1, g2),
        surname=tables.surname_str(none, s1, none, ~male),
        birth=pl.Series(rng.integers(-15_000, 11_000, size=size).astype("datetime64[D]")),
    )


# --------------------------------------------------------------------------- events
def _profile(category: str) -> _Profile:
    for keyword, profile in _PROFILES:
        if keyword in category.lower():
            return profile
    return _DEFAULT_PROFILE


def _specs(catalogue: Catalogue) -> list[_Spec]:
    """Catalogue codes (rates split within a category, rarer for heavier weight) and other codes."""
    taken = {c.code for c in catalogue.codes}
    by_cat: dict[str, list[Code]] = {}
    for code in catalogue.codes:
        by_cat.setdefault(code.category, []).append(code)
    specs: list[_Spec] = []

    def free(code: str) -> str:  # never clash with the catalogue (or with each other)
        while code in taken:
            code = str(int(code) + 1).zfill(len(code)) if code.isdigit() else code + "X"
        taken.add(code)
        return code

    generic = tuple(free(c) for c in _GENERIC_INCIDENT)
    for cat_id, codes in by_cat.items():
        profile = _profile(cat_id)
        inv = np.array([4.0 ** -c.weight for c in codes])  # heavier codes are much rarer
        for code, share in zip(codes, inv / inv.sum(), strict=True):
            main = next((r for r in profile.roles if r in code.roles), code.roles[0])
            slots = ((main, 1.0, profile.primary), *profile.others)
            if code.kind == "offence":
                specs.append(_Spec(generic[0], code.code, profile.rate * share, slots, cat_id))
            else:
                specs.append(_Spec(code.code, "", profile.rate * share, slots, cat_id))
    for kind, other, _label, rate, slots in _OTHER_CODES:
        c = free(other)
        if kind == "offence":
            specs.append(_Spec(generic[0], c, rate * 0.7, slots, None))
            specs.append(_Spec(generic[1], c, rate * 0.3, slots, None))
        else:
            specs.append(_Spec(c, "", rate, slots, None))
    return specs


@dataclass
class _Events:
    """A year of events as arrays indexed by event number, and their people."""

    spec: np.ndarray  # index into the specs
    muni: np.ndarray  # int16 municipality index
    district: np.ndarray  # int8 index into the sorted district codes
    reg_day: np.ndarray  # registration: days since epoch (local)
    reg_sec: np.ndarray  # ... and seconds of the day
    delay: np.ndarray  # seconds from occurrence to registration
    boundary: np.ndarray  # 1 Sunday 23:xx of W, 2 Monday 00:xx of W, 3 Sunday 23:xx of W-1
    office: np.ndarray  # index into _OFFICES
    persons: tuple[np.ndarray, np.ndarray, np.ndarray]  # event, person, role index


class _Pools:
    """Samplers for the people who take part in events."""

    def __init__(self, people: _People) -> None:
        self.p = people
        age = (people.sunday - people.birth) // 365.2425
        adult = people.member != CHILD
        self.adults = np.flatnonzero(adult).astype(np.int32)
        self.children = np.flatnonzero((people.member == CHILD) & (age >= 3)).astype(np.int32)
        self.young = np.flatnonzero((people.member == CHILD) & (age <= 10)).astype(np.int32)
        carer = np.isin(people.member, (MOTHER, FATHER, HOUSEHOLD, CUSTODIAN))
        self.weighted = {
            RISK: self._cdf(self.adults, people.risk[self.adults]),
            RISK_PARENT: self._cdf(np.flatnonzero(carer), people.risk[carer]),
            YOUTH: self._cdf(np.flatnonzero(people.youth > 0), people.youth[people.youth > 0]),
            CRIME: self._cdf(self.adults, 0.5 * people.risk[self.adults] + 0.01),
        }

    @staticmethod
    def _cdf(idx: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return idx.astype(np.int32), np.cumsum(w, dtype=np.float64)

    def draw(self, rng: np.random.Generator, pool: int, primary: np.ndarray) -> np.ndarray:
        """One person per row of ``primary`` (the event's main person, -1 none); -1 if none fits."""
        size = primary.shape[0]
        if pool in self.weighted:
            idx, cdf = self.weighted[pool]
            if idx.shape[0] == 0:
                return np.full(size, -1, dtype=np.int64)
            pos = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
            return np.asarray(idx[np.minimum(pos, idx.shape[0] - 1)])
        if pool in (ANY_ADULT, ANY_CHILD, YOUNG_CHILD):
            idx = {ANY_ADULT: self.adults, ANY_CHILD: self.children, YOUNG_CHILD: self.young}[pool]
            if idx.shape[0] == 0:
                return np.full(size, -1, dtype=np.int64)
            return np.asarray(idx[rng.integers(0, idx.shape[0], size=size)])
        p = self.p
        ok = primary >= 0
        fam = np.where(ok, p.family[np.maximum(primary, 0)], -1)
        if pool == PARTNER:
            got = np.where(ok, p.partner[np.maximum(primary, 0)], -1)
            fill = (got < 0) & ok
            got[fill] = self.adults[rng.integers(0, self.adults.shape[0], size=int(fill.sum()))]
            return got
        if pool == CHILD_OF:
            is_carer = ok & (fam >= 0) & (p.member[np.maximum(primary, 0)] != CHILD)
            f = np.maximum(fam, 0)
            k = (rng.random(size) * p.fam_size[f]).astype(np.int64)
            return np.where(is_carer, p.fam_start[f] + k, -1)
        if pool == PARENT_OF:
            is_child = ok & (fam >= 0) & (p.member[np.maximum(primary, 0)] == CHILD)
            f = np.maximum(fam, 0)
            father = p.fam_father[f]
            got = np.where((rng.random(size) < 0.3) & (father >= 0), father, p.fam_mother[f])
            return np.where(is_child, got, -1)
        raise ValueError(f"unknown pool {pool}")




def _events(rng: np.random.Generator, geo: Geography, people: _People, specs: list[_Spec],
            scale: float, week: IsoWeek) -> _Events:
    """A year (52 weeks ending with ``week``) of events, their people, places and times."""
    rates = np.array([s.rate for s in specs]) * scale * 364 / 365.25
    counts = rng.poisson(rates)
    spec = np.repeat(np.arange(len(specs)), counts)
    n_ev = int(spec.shape[0])
    first_monday = week.shift(-51).monday
    reg_day = _days(first_monday) + rng.integers(0, 364, size=n_ev)
    reg_sec = (rng.choice(24, size=n_ev, p=_HOUR_W / _HOUR_W.sum()) * 3600
               + rng.integers(0, 3600, size=n_ev))
    boundary = np.zeros(n_ev, dtype=np.int8)  # 1 Sunday 23:xx of W, 2 Monday 00:xx of W, 3 Sunday 23:xx of W-1
    cat_events = np.flatnonzero(np.array([s.category is not None for s in specs])[spec])
    k = min(max(2, int(round(n_ev * 0.0003))), cat_events.shape[0] // 3)
    if k > 0:
        chosen = rng.choice(cat_events, size=3 * k, replace=False)
        for b in range(3):
            ev = chosen[b * k:(b + 1) * k]
            boundary[ev] = b + 1
            reg_day[ev] = _days(week.sunday) if b == 0 else _days(week.monday) if b == 1 else _days(week.monday) - 1
            reg_sec[ev] = (0 if b == 1 else 23 * 3600) + rng.integers(0, 3600, size=k)

    # delay from occurrence to registration: minutes mostly, hours often, days sometimes
    u = rng.random(n_ev)
    delay = np.where(u < 0.65, rng.exponential(20 * 60, n_ev),
                     np.where(u < 0.9, rng.uniform(3600, 2 * 86400, n_ev), rng.uniform(2 * 86400, 60 * 86400, n_ev)))
    delay = np.maximum(delay.astype(np.int64), 60)
    delay[boundary == 2] = np.minimum(delay[boundary == 2], reg_sec[boundary == 2] + 1800)

    # people on the events, slot by slot, vectorised over each code's events
    pools = _Pools(people)
    starts = np.concatenate(([0], np.cumsum(counts)))
    primary = np.full(n_ev, -1, dtype=np.int64)
    ev_parts: list[np.ndarray] = []
    person_parts: list[np.ndarray] = []
    role_parts: list[np.ndarray] = []
    for s, sp in enumerate(specs):
        evs = np.arange(starts[s], starts[s + 1])
        if evs.shape[0] == 0:
            continue
        for j, (role, prob, mix) in enumerate(sp.slots):
            take = evs[rng.random(evs.shape[0]) < prob]
            keys = list(mix)
            which = rng.choice(len(keys), size=take.shape[0], p=np.array([mix[x] for x in keys]) / sum(mix.values()))
            got = np.full(take.shape[0], -1, dtype=np.int64)
            for w, pool in enumerate(keys):
                sel = which == w
                got[sel] = pools.draw(rng, pool, primary[take[sel]])
            if j == 0:
                primary[take] = got
            ev_parts.append(take)
            person_parts.append(got)
            role_parts.append(np.full(take.shape[0], ROLES.index(role), dtype=np.int8))
    ev_p = np.concatenate(ev_parts) if ev_parts else np.zeros(0, np.int64)
    person_p = np.concatenate(person_parts) if person_parts else np.zeros(0, np.int64)
    role_p = np.concatenate(role_parts) if role_parts else np.zeros(0, np.int8)
    # nobody takes part before birth; a person appears once per event
    keep = (person_p >= 0)
    keep[keep] = people.birth[person_p[keep]] <= reg_day[ev_p[keep]] - delay[ev_p[keep]] // 86400
    ev_p, person_p, role_p = ev_p[keep], person_p[keep], role_p[keep]
    pair = ev_p * people.n + person_p
    _, first = np.unique(pair, return_index=True)
    first.sort()
    ev_p, person_p, role_p = ev_p[first], person_p[first], role_p[first]

    # place: the main person's municipality mostly, else anywhere (busy places by population)
    shares = _shares(geo)
    anywhere = rng.choice(shares.shape[0], size=n_ev, p=shares)
    main_ok = primary >= 0
    own = np.where(main_ok, people.municipality[np.maximum(primary, 0)], anywhere)
    muni = np.where(main_ok & (rng.random(n_ev) >= P_EVENT_AWAY), own, anywhere)

    district_of = np.array([sorted(geo.district_codes).index(m.district) for m in geo.municipalities], dtype=np.int8)
    office = rng.integers(0, len(_OFFICES), size=n_ev).astype(np.int8)
    return _Events(spec=spec, muni=muni.astype(np.int16), district=district_of[muni], reg_day=reg_day,
                   reg_sec=reg_sec, delay=delay, boundary=boundary, office=office,
                   persons=(ev_p, person_p, role_p))


def _local(day: np.ndarray, sec: np.ndarray) -> pl.Series:
    """Local wall-clock (days since epoch, seconds of day) as Europe/Copenhagen date-times.

    A wall-clock time skipped by the spring change to summer time moves an hour later; one that
    occurs twice in autumn is the first (summer time) one.
    """
    naive = pl.Series((day.astype(np.int64) * 86400 + sec) * 1_000_000).cast(pl.Datetime("us"))
    aware = naive.dt.replace_time_zone(TIME_ZONE, ambiguous="earliest", non_existent="null")
    later = (naive + timedelta(hours=1)).dt.replace_time_zone(TIME_ZONE, ambiguous="earliest", non_existent="null")
    return aware.fill_null(later)


def _incident_frame(geo: Geography, specs: list[_Spec], events: _Events, district: str) -> pl.DataFrame:
    """One district's incidents with journal number, codes and date-times, sorted by time.

    Returns the input columns plus ``_event`` (the event number) and the truth helpers
    ``_boundary``, ``_in_catalogue`` and ``_category``.
    """
    sel = np.flatnonzero(events.district == sorted(geo.district_codes).index(district))
    codes = [m.code for m in geo.municipalities]
    registered = _local(events.reg_day[sel], events.reg_sec[sel])
    occurred = registered - pl.Series(events.delay[sel] * 1_000_000).cast(pl.Duration("us"))
    spec = events.spec[sel]
    frame = pl.DataFrame({
        "_event": sel,
        "district": pl.Series([district] * sel.shape[0], dtype=pl.String),
        "registered_at": registered,
        "occurred_at": occurred,
        "municipality": pl.Series(codes, dtype=pl.String).gather(events.muni[sel]),
        "incident_code": pl.Series([s.incident_code for s in specs], dtype=pl.String).gather(spec),
        "offence_code": pl.Series([s.offence_code for s in specs], dtype=pl.String).gather(spec),
        "_office": pl.Series(_OFFICES, dtype=pl.String).gather(events.office[sel]),
        "_boundary": pl.Series(["", "sunday_23", "monday_00", "previous_sunday_23"]).gather(events.boundary[sel]),
        "_in_catalogue": np.array([s.category is not None for s in specs], dtype=bool)[spec],
        "_category": pl.Series([s.category for s in specs], dtype=pl.String).gather(spec),
    }).sort("registered_at", "_event")
    prefix = DISTRICT_NUMBERS.get(district, "9900")
    yy = (pl.col("registered_at").dt.year() % 100).cast(pl.String).str.zfill(2)
    seq = (pl.int_range(1, pl.len() + 1).over("_office", yy) + 100).cast(pl.String).str.zfill(5)
    frame = frame.with_columns(
        incident_id=pl.concat_str([pl.lit(prefix), pl.col("_office"), seq, yy], separator="-"),
    )
    return frame.select("_event", *INPUT_SCHEMAS["incidents"], "_boundary", "_in_catalogue", "_category")


# --------------------------------------------------------------------------- incident persons
def _incident_persons(rng: np.random.Generator, people: _People, events: _Events,
                      incidents: pl.DataFrame) -> pl.DataFrame:
    """One row per (event, person) of one district's ``incidents``: CPR (some dashed), role, names, birth date."""
    ev_all, person_all, role_all = events.persons
    in_district = np.zeros(events.spec.shape[0], dtype=bool)
    in_district[incidents["_event"].to_numpy()] = True
    rows = np.flatnonzero(in_district[ev_all])
    del in_district
    ev_p, person_p = ev_all[rows], person_all[rows]
    dashed = rng.random(int(rows.shape[0])) < P_DASHED["incident_persons"]
    frame = pl.DataFrame({
        "_event": ev_p,
        "_order": rows,
        "_person": person_p,
        "cpr": _maybe_dashed(people.cpr_str(person_p), dashed),
        "role": pl.Series(ROLES, dtype=pl.String).gather(role_all[rows]),
        "given_name": people.given_str(person_p),
        "surname": people.surname_str(person_p),
        "birth_date": pl.Series(people.birth[person_p].astype("datetime64[D]")),
    })
    keys = incidents.select("_event", "district", "incident_id").with_row_index("_pos")
    frame = (frame.join(keys, on="_event", how="inner").sort("_pos", "_order")
             .with_columns(_row=pl.int_range(pl.len()).cast(pl.UInt32)))
    return frame.select("_event", "_person", "_row", *INPUT_SCHEMAS["incident_persons"])


def _maybe_dashed(cpr: pl.Series, dashed: np.ndarray) -> pl.Series:
    """``cpr`` with the rows flagged in ``dashed`` written ``DDMMYY-SSSS``."""
    idx = np.flatnonzero(dashed)
    sub = cpr.gather(idx)
    return cpr.scatter(idx, sub.str.slice(0, 6) + "-" + sub.str.slice(6)).rename("cpr")


_FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


def _corrupt(rng: np.random.Generator, persons: pl.DataFrame,
             pool: _ForeignPool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Blank or corrupt ~1.4 % of CPR numbers (plus ~0.3 % foreigners), vary names; return truth.

    Returns the incident persons (``_row`` and the input columns) and the truth of every changed row.
    """
    n = persons.height
    u = rng.random(n)
    foreign = u < P_FOREIGN
    fallback = (u >= P_FOREIGN) & (u < P_FOREIGN + P_FALLBACK)
    kind_i = rng.choice(len(FALLBACK_KINDS), size=n, p=FALLBACK_P)
    variant_i = rng.choice(len(NAME_VARIANTS), size=n, p=NAME_VARIANT_P)
    pos = rng.integers(0, 1 << 16, size=n)
    digit = rng.integers(0, 10, size=n)
    letters = pl.Series(list("OlSBZ")).gather(rng.integers(0, 5, size=n))
    bad_day = pl.Series(rng.integers(32, 60, size=n)).cast(pl.String)
    bad_month = pl.Series(rng.integers(13, 100, size=n)).cast(pl.String)
    # foreign persons come from a pool shared by all districts, so some appear on several events
    fid = rng.integers(0, pool.given.len(), size=n)

    digits = pl.col("cpr").str.replace_all("-", "", literal=True)
    p10 = pl.col("_pos") % 10
    kind = pl.Series(FALLBACK_KINDS).gather(kind_i)
    full = digits
    for d, w in _FULLWIDTH.items():
        full = full.str.replace_all(d, w, literal=True)
    new_cpr = (
        pl.when(pl.col("_kind") == "empty").then(pl.lit(""))
        .when(pl.col("_kind") == "wrong_length").then(
            pl.when(pl.col("_pos") % 2 == 0)
            .then(pl.concat_str([digits.str.slice(0, p10), digits.str.slice(p10 + 1)]))  # 9 digits
            .otherwise(pl.concat_str([digits, pl.col("_digit").cast(pl.String)])))  # 11 digits
        .when(pl.col("_kind") == "impossible_date").then(
            pl.when(pl.col("_pos") % 2 == 0)
            .then(pl.concat_str([pl.col("_bad_day"), digits.str.slice(2)]))
            .otherwise(pl.concat_str([digits.str.slice(0, 2), pl.col("_bad_month"), digits.str.slice(4)])))
        .when(pl.col("_kind") == "fullwidth").then(full)
        .otherwise(pl.concat_str([digits.str.slice(0, p10), pl.col("_letter"), digits.str.slice(p10 + 1)]))
    )
    frame = persons.with_columns(
        _fallback=pl.Series(fallback), _foreign=pl.Series(foreign), _kind=kind,
        _variant=pl.Series(NAME_VARIANTS).gather(variant_i), _pos=pl.Series(pos),
        _digit=pl.Series(digit), _letter=letters, _bad_day=bad_day, _bad_month=bad_month,
        _fid=pl.Series(fid), _fgiven=pool.given.gather(fid), _flast=pool.surname.gather(fid),
        _fbirth=pool.birth.gather(fid),
    )
    frame = frame.with_columns(_true=pl.col("cpr").str.replace_all("-", "", literal=True))
    frame = frame.with_columns(
        cpr=pl.when("_foreign").then(pl.lit(""))
        .when("_fallback").then(new_cpr).otherwise(pl.col("cpr")),
        given_name=pl.when("_foreign").then(pl.col("_fgiven")).otherwise(pl.col("given_name")),
        surname=pl.when("_foreign").then(pl.col("_flast")).otherwise(pl.col("surname")),
        birth_date=pl.when("_foreign").then(pl.col("_fbirth")).otherwise(pl.col("birth_date")),
    )
    frame = _vary_names(frame)
    truth = (
        frame.filter(pl.col("_fallback") | pl.col("_foreign"))
        .select(
            "district", "incident_id", pl.col("_row").alias("row_in_file"), "role",
            kind=pl.when("_foreign").then(pl.lit("foreign")).otherwise(pl.col("_kind")),
            true_cpr=pl.when("_foreign").then(pl.lit(None, pl.String)).otherwise(pl.col("_true")),
            foreign_id=pl.when("_foreign").then(pl.format("F{}", pl.col("_fid").cast(pl.String).str.zfill(7))),
            name_variant=pl.when("_foreign").then(pl.lit("none")).otherwise(pl.col("_applied")),
        )
    )
    return frame.select("_row", *INPUT_SCHEMAS["incident_persons"]), truth


def _vary_names(frame: pl.DataFrame) -> pl.DataFrame:
    """On fallback rows, the name and date errors a police officer makes when there is no CPR."""
    v = pl.col("_variant")
    on = pl.col("_fallback") & ~pl.col("_foreign")
    g, s = pl.col("given_name"), pl.col("surname")
    p = pl.col("_pos") % pl.max_horizontal(s.str.len_chars() - 1, 1)
    swapped = pl.concat_str([s.str.slice(0, p), s.str.slice(p + 1, 1), s.str.slice(p, 1), s.str.slice(p + 2)])

    def translit(e: pl.Expr) -> pl.Expr:
        for a, b in (("æ", "ae"), ("ø", "oe"), ("å", "aa"), ("Æ", "Ae"), ("Ø", "Oe"), ("Å", "Aa")):
            e = e.str.replace_all(a, b, literal=True)
        return e

    part = s.str.split_exact("-", 1).struct.field("field_0")
    surname_var = (pl.when(s.str.contains(" ", literal=True)).then(s.str.replace_all(" ", "-", literal=True))
                   .when(s.str.contains("-", literal=True) & (pl.col("_pos") % 2 == 0))
                   .then(s.str.replace_all("-", " ", literal=True))
                   .when(s.str.contains("-", literal=True)).then(part).otherwise(s))
    d = pl.col("birth_date")
    swap_ok = (d.dt.day() <= 12) & (d.dt.day() != d.dt.month())
    new = frame.with_columns(
        _g=pl.when(on & (v == "transliterated")).then(translit(g))
        .when(on & (v == "dropped_given_name")).then(g.str.split(" ").list.first()).otherwise(g),
        _s=pl.when(on & (v == "letter_swap")).then(swapped)
        .when(on & (v == "transliterated")).then(translit(s))
        .when(on & (v == "surname_variant")).then(surname_var).otherwise(s),
        _d=pl.when(on & (v == "day_month_swap") & swap_ok)
        .then(pl.date(d.dt.year(), d.dt.day(), d.dt.month())).otherwise(d),
    )
    changed = (pl.col("_g") != g) | (pl.col("_s") != s) | (pl.col("_d") != d)
    return new.with_columns(
        _applied=pl.when(on & changed).then(v).otherwise(pl.lit("none")),
    ).with_columns(given_name=pl.col("_g"), surname=pl.col("_s"), birth_date=pl.col("_d"))




# --------------------------------------------------------------------------- register tables
def _population_chunk(people: _People, idx: np.ndarray, dashed: np.ndarray) -> pl.DataFrame:
    """The CPR extract's rows for the people ``idx`` (in file order); a few numbers with the dash."""
    codes = pl.Series([m.code for m in geography().municipalities], dtype=pl.String)
    return pl.DataFrame({
        "cpr": _maybe_dashed(people.cpr_str(idx), dashed[idx]),
        "municipality": codes.gather(people.municipality[idx]),
        "given_name": people.given_str(idx),
        "surname": people.surname_str(idx),
    })


def _relations_chunk(people: _People, rows: slice, dashed: tuple[np.ndarray, np.ndarray]) -> pl.DataFrame:
    child, adult, rel = (a[rows] for a in people.relations)
    return pl.DataFrame({
        "child_cpr": _maybe_dashed(people.cpr_str(child), dashed[0][rows]),
        "adult_cpr": _maybe_dashed(people.cpr_str(adult), dashed[1][rows]),
        "relation": pl.Series(RELATIONS, dtype=pl.String).gather(rel),
    })


def _truth_people_chunk(people: _People, idx: np.ndarray) -> pl.DataFrame:
    """``truth/people`` for the people ``idx``: birth, sex, home, family role, propensities, name origin."""
    codes = pl.Series([m.code for m in geography().municipalities], dtype=pl.String)
    fam_id = pl.Series(people.family[idx].astype(np.int64))
    return pl.DataFrame({
        "cpr": people.cpr_str(idx),
        "birth_date": pl.Series(people.birth[idx].astype("datetime64[D]")),
        "sex": pl.Series(np.where(people.male[idx], "M", "F")),
        "municipality": codes.gather(people.municipality[idx]),
        "member": pl.Series(MEMBERS).gather(people.member[idx]),
        "family_id": fam_id.set(fam_id < 0, None),
        "risk": people.risk[idx].astype(np.float64),
        "youth_risk": people.youth[idx].astype(np.float64),
        "origin": pl.Series(_name_tables().sources, dtype=pl.String).gather(people.names.origin[idx]),
    })


def _families_frame(people: _People) -> pl.DataFrame:
    codes = pl.Series([m.code for m in geography().municipalities], dtype=pl.String)
    return pl.DataFrame({
        "family_id": np.arange(people.n_families),
        "structure": pl.Series(STRUCTURES).gather(people.fam_structure),
        "municipality": codes.gather(people.fam_home),
        "children": people.fam_size,
    })


# --------------------------------------------------------------------------- writing
_TABLE_DIRS = ("incidents", "incident_persons")


def _check_out(out: Path, fmt: str) -> None:
    other = "csv" if fmt == "parquet" else "parquet"
    stale = [p for d in _TABLE_DIRS for p in (out / d).glob(f"*.{other}")]
    stale += [p for p in (out / f"population.{other}", out / f"relations.{other}") if p.exists()]
    if stale:
        raise UsageError(
            f"{out}: holds {other} extracts from an earlier run ({stale[0].relative_to(out)}); "
            f"choose an empty folder or remove them, since a reader would read both formats"
        )


def _write_frame(frame: pl.DataFrame, path: Path, fmt: str) -> Path:
    """Write atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "parquet":
        frame.write_parquet(tmp, compression="zstd", statistics=True)
    else:
        local = frame.with_columns(pl.col(pl.Datetime).dt.replace_time_zone(None))
        local.write_csv(tmp, datetime_format="%Y-%m-%dT%H:%M:%S", date_format="%Y-%m-%d")
    os.replace(tmp, path)
    return path


class _ChunkedFile:
    """One output file written from row chunks without holding them all.

    Each chunk goes to a part file in ``scratch``; :meth:`close` streams the parts, in order,
    into the target (one Parquet file of several row groups, or one CSV file) and renames it
    into place.
    """

    def __init__(self, path: Path, fmt: str, scratch: Path) -> None:
        self.path, self.fmt, self.scratch = path, fmt, scratch
        self.parts: list[Path] = []
        self.rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        part = self.scratch / f"{self.path.parent.name}-{self.path.stem}-{len(self.parts):06d}.parquet"
        frame.write_parquet(part, compression="lz4", statistics=False)
        self.parts.append(part)
        self.rows += frame.height

    def close(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        lazy = pl.scan_parquet(self.parts)
        if self.fmt == "parquet":
            lazy.sink_parquet(tmp, compression="zstd", statistics=True)
        else:
            lazy.with_columns(pl.col(pl.Datetime).dt.replace_time_zone(None)).sink_csv(
                tmp, datetime_format="%Y-%m-%dT%H:%M:%S", date_format="%Y-%m-%d")
        os.replace(tmp, self.path)
        for part in self.parts:
            part.unlink()
        return self.path


def _write_summary(out: Path, summary: dict[str, object]) -> Path:
    path = out / "truth" / "summary.json"
    tmp = path.with_name(".summary.json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
