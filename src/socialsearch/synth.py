"""The synthetic Denmark: people, families and a year of police events in the input contract.

:func:`synthesize` writes DESIGN.md §3's layout (one incidents and one incident_persons file per
police district, ``population`` and ``relations``) for a country of ``scale`` × Denmark, plus the
ground truth under ``OUT/truth/`` (not part of the input contract). Everything is drawn with
vectorised NumPy from one seeded generator, so the same seed, scale, week and catalogue give the
same files. Loops run over municipalities, districts, codes and role slots only, never over people
or events.

The model (assumptions and rates) is documented in ``docs/synthetic-data.md``.

Examples
--------
>>> import tempfile, pathlib
>>> from socialsearch.weeks import IsoWeek
>>> s = synthesize(pathlib.Path(tempfile.mkdtemp()), scale=0.001, seed=1, week=IsoWeek(2026, 47))
>>> sorted(s.rows)
['incident_persons', 'incidents', 'population', 'relations']
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from .catalogue import Catalogue, Code
from .errors import UsageError
from .geography import Geography, geography
from .weeks import IsoWeek

__all__ = ["INPUT_SCHEMAS", "SynthSummary", "synthesize"]

Format = Literal["parquet", "csv"]
_TZ = "Europe/Copenhagen"
_DT = pl.Datetime("us", _TZ)

#: The input contract's columns and the types the generator writes (parquet).
INPUT_SCHEMAS: Mapping[str, Mapping[str, pl.DataType]] = {
    "incidents": {
        "district": pl.String(),
        "incident_id": pl.String(),
        "occurred_at": _DT,
        "registered_at": _DT,
        "municipality": pl.String(),
        "incident_code": pl.String(),
        "offence_code": pl.String(),
    },
    "incident_persons": {
        "district": pl.String(),
        "incident_id": pl.String(),
        "cpr": pl.String(),
        "role": pl.String(),
        "given_name": pl.String(),
        "surname": pl.String(),
        "birth_date": pl.Date(),
    },
    "population": {
        "cpr": pl.String(),
        "municipality": pl.String(),
        "given_name": pl.String(),
        "surname": pl.String(),
    },
    "relations": {"child_cpr": pl.String(), "adult_cpr": pl.String(), "relation": pl.String()},
}

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
ROLES = ("suspect", "victim", "witness", "involved")


@dataclass(frozen=True)
class _Spec:
    """One code the generator emits events for."""

    incident_code: str
    offence_code: str  # "" when none
    rate: float  # national events per year
    slots: tuple[Slot, ...]
    category: str | None  # catalogue category, None outside the catalogue


# --------------------------------------------------------------------------- public API
@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize` wrote.

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


def synthesize(
    out: Path,
    *,
    scale: float = 1.0,
    seed: int = 0,
    week: IsoWeek,
    fmt: Format = "parquet",
    catalogue: Catalogue | None = None,
) -> SynthSummary:
    """Write a synthetic Denmark of ``scale`` × 5.97 million people to ``out``.

    Parameters
    ----------
    out
        Folder to write to (created). Files of an earlier run in the same format are replaced; a
        folder holding input files of the other format is refused (the reader would read both).
    scale
        1.0 is Denmark; 0.01 is about 60,000 people.
    seed
        Same seed, scale, week, format and catalogue → identical files.
    week
        The last ISO week of the 52 weeks of police events (by ``registered_at``).
    fmt
        ``"parquet"`` (date-times as ``Datetime("us", "Europe/Copenhagen")``) or ``"csv"``
        (UTF-8 with a header, local date-times without offset).
    catalogue
        The event-code catalogue whose codes get events; ``None`` loads the packaged one.

    Raises
    ------
    UsageError
        A non-positive scale, an unknown format, or ``out`` holding files of the other format.
    """
    started = time.perf_counter()
    if not scale > 0:
        raise UsageError(f"scale {scale!r}: expected a positive number (1.0 is Denmark)")
    if fmt not in ("parquet", "csv"):
        raise UsageError(f"format {fmt!r}: expected 'parquet' or 'csv'")
    if catalogue is None:
        from .catalogue import load_catalogue

        catalogue = load_catalogue()
    out = Path(out)
    _check_out(out, fmt)
    geo = geography()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x50C1A1]))

    people = _people(rng, geo, scale, week)
    specs = _specs(catalogue)
    events = _events(rng, geo, people, specs, scale, week)
    persons = _incident_persons(rng, people, events)
    persons, fallback = _corrupt(rng, persons)

    rows: dict[str, int] = {}
    files: list[Path] = []

    def write(name: str, table: pl.DataFrame) -> None:
        rows[name] = table.height
        files.extend(_write(out, fmt, name, table, geo))

    # written one by one (each table is built in the call), so only one table is alive at a time
    write("incidents", events.frame.drop("_event", "_boundary", "_in_catalogue", "_category"))
    write("incident_persons", persons.drop("_row"))
    del persons
    write("population", _population_frame(rng, people))
    write("relations", _relations_frame(rng, people))
    truth = _truth_frames(people, events, fallback)
    foreign = int((fallback["kind"] == "foreign").sum())
    summary_json = {
        "week": str(week), "seed": seed, "scale": scale, "format": fmt,
        "catalogue_digest": catalogue.digest, "rows": rows,
        "people": people.n, "children": people.n_children, "families": people.n_families,
        "fallback": fallback.height, "foreign": foreign,
    }
    files += _write_truth(out, truth, summary_json)
    return SynthSummary(
        out=out, week=str(week), seed=seed, scale=scale, format=fmt, rows=rows,
        people=people.n, children=people.n_children, families=people.n_families,
        fallback=fallback.height, foreign=foreign, files=tuple(files),
        seconds=round(time.perf_counter() - started, 3),
    )


# --------------------------------------------------------------------------- people
@dataclass
class _People:
    """Everyone in the register as parallel arrays indexed by person number."""

    birth: np.ndarray  # int64 days since 1970-01-01
    male: np.ndarray  # bool
    municipality: np.ndarray  # int64 index into geography().municipalities
    member: np.ndarray  # int8 kind (CHILD, MOTHER, ...)
    family: np.ndarray  # int64 family number, -1 none
    partner: np.ndarray  # int64 person, -1 none
    risk: np.ndarray  # float64 adult propensity (0 for children)
    youth: np.ndarray  # float64 youth propensity (13-17-year-olds)
    cpr: pl.Series  # String, DDMMYYSSSS
    given: pl.Series
    surname: pl.Series
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


RELATIONS = ("mother", "father", "custodian", "household")


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
    family = np.full(n, -1, dtype=np.int64)
    family[:n_child] = child_fam
    family[i_mother] = np.arange(n_fam)
    family[i_father[fathers_fam]] = fathers_fam
    municipality = np.empty(n, dtype=np.int64)
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
    partner = np.full(n, -1, dtype=np.int64)
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
    given, surname = _names(rng, male, i_father, i_mother, child_fam, n_child)
    return _People(
        birth=birth, male=male, municipality=municipality, member=member, family=family,
        partner=partner, risk=risk, youth=youth, cpr=cpr, given=given, surname=surname,
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
    c = np.concatenate([p[0] for p in parts])
    a = np.concatenate([p[1] for p in parts])
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
    return risk, youth


# the 7th digit per birth century (reference/README.md): allowed digits, a 4-slot class has -1s
_CENTURY_DIGITS = {1800: (5, 6, 7, 8), 1900: (0, 1, 2, 3), 1937: (0, 1, 2, 3, 4, 9),
                   2000: (4, 5, 6, 7, 8, 9)}


def _cpr_numbers(birth: np.ndarray, male: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Unique, valid CPR numbers ``DDMMYYSSSS`` for the birth dates and sexes.

    Within each (birth date, sex) the k-th person gets serial ``(offset + k * 7919) mod M`` over
    the M = digits × 500 serials the century table allows with the right parity (odd = male);
    7919 is prime and M's prime factors are 2, 3 and 5, so the serials are distinct.
    """
    dates = pl.Series(birth.astype("datetime64[D]"))
    year = dates.dt.year().to_numpy().astype(np.int64)
    month = dates.dt.month().to_numpy().astype(np.int64)
    day = dates.dt.day().to_numpy().astype(np.int64)
    cls = np.select([year < 1900, year < 1937, year < 2000], [0, 1, 2], 3)
    table = np.full((4, 6), -1, dtype=np.int64)
    for i, digits in enumerate(_CENTURY_DIGITS.values()):
        table[i, : len(digits)] = digits
    n_digits = (table >= 0).sum(axis=1)[cls]
    key = birth.astype(np.int64) * 2 + male
    order = np.argsort(key, kind="stable")
    sk = key[order]
    first = np.r_[True, sk[1:] != sk[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(sk.shape[0]), 0))
    rank = np.empty_like(key)
    rank[order] = np.arange(sk.shape[0]) - start
    m = n_digits * 500
    salt = int(rng.integers(0, 1 << 20))
    v = ((key * 2654435761 + salt) % m + rank * 7919) % m
    d7 = table[cls, v // 500]
    rem = v % 500
    serial = d7 * 1000 + (rem // 5) * 10 + 2 * (rem % 5) + male
    number = day * 10**8 + month * 10**6 + (year % 100) * 10**4 + serial
    return pl.Series("cpr", number).cast(pl.String).str.zfill(10)


@lru_cache(maxsize=1)
def _name_lists() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Faker's Danish given names (male, female) and surnames, and foreign names; read once."""
    from faker.providers.person.da_DK import Provider as Da
    from faker.providers.person.de_DE import Provider as De
    from faker.providers.person.en_GB import Provider as En
    from faker.providers.person.tr_TR import Provider as Tr

    foreign_given = tuple(list(De.first_names)[:300] + list(En.first_names)[:200] + list(Tr.first_names)[:200])
    foreign_last = tuple(list(De.last_names) + list(En.last_names) + list(Tr.last_names)
                         + ["Kowalski", "Nowak", "Wiśniewski", "Popescu", "Ionescu", "Kazlauskas",
                            "Petrov", "Horváth", "Jankauskas", "Novák"])
    return (tuple(Da.first_names_male), tuple(Da.first_names_female), tuple(Da.last_names),
            foreign_given, foreign_last)


def _zipf(n: int, s: float, shuffle_seed: int | None, offset: float = 3.0) -> np.ndarray:
    """Zipf-like popularity of ``n`` names (in list order, or in a fixed shuffled order)."""
    w = 1.0 / (np.arange(n) + offset) ** s
    if shuffle_seed is not None:  # lists in alphabetical order: fixed, seed-independent popularity
        w = np.random.default_rng(shuffle_seed).permutation(w)
    return np.asarray(w / w.sum(), dtype=np.float64)


def _names(rng: np.random.Generator, male: np.ndarray, i_father: np.ndarray, i_mother: np.ndarray,
           child_fam: np.ndarray, n_child: int) -> tuple[pl.Series, pl.Series]:
    """Given names by sex (a quarter with two), surnames shared within families.

    Names are drawn and inherited as indices into the name lists; strings are built once.
    """
    males, females, lasts, _, _ = _name_lists()
    n = int(male.shape[0])
    given_list = pl.Series([*males, *females], dtype=pl.String)
    pm, pf = _zipf(len(males), 0.8, 11), _zipf(len(females), 0.8, 12)

    def given_idx() -> np.ndarray:
        return np.where(male, rng.choice(len(males), size=n, p=pm),
                        len(males) + rng.choice(len(females), size=n, p=pf))

    g1, g2 = given_idx(), given_idx()
    double = (rng.random(n) < 0.25) & (g1 != g2)

    p_last = _zipf(len(lasts), 0.7, None, 5.0)  # Jensen about 4 %, top ten about 28 %
    s1, s2 = rng.choice(len(lasts), size=n, p=p_last), rng.choice(len(lasts), size=n, p=p_last)
    u = rng.random(n)
    s2 = np.where((u < 0.09) & (s1 != s2), s2, -1)  # a double surname ...
    hyphen = u < 0.03  # ... with a hyphen
    # married mothers mostly carry the father's surname; children the father's or the mother's
    couple = i_father >= 0
    take = couple & (rng.random(i_father.shape[0]) < 0.55)
    src = np.arange(n)
    src[i_mother[take]] = i_father[take]
    from_father = couple[child_fam] & (rng.random(n_child) < 0.7)
    src[:n_child] = np.where(from_father, i_father[child_fam], i_mother[child_fam])
    s1, s2, hyphen = s1[src], s2[src], hyphen[src]

    # one column at a time keeps the peak memory down at national scale
    given = pl.DataFrame({"g1": given_list.gather(g1), "g2": given_list.gather(g2), "double": double}).select(
        given_name=pl.when("double").then(pl.concat_str(["g1", "g2"], separator=" ")).otherwise("g1"),
    ).to_series()
    last_list = pl.Series(lasts, dtype=pl.String)
    surname = pl.DataFrame({
        "s1": last_list.gather(s1), "s2": last_list.gather(np.maximum(s2, 0)), "two": s2 >= 0,
        "sep": pl.Series(np.where(hyphen, "-", " ")),
    }).select(surname=pl.when("two").then(pl.concat_str(["s1", "sep", "s2"])).otherwise("s1")).to_series()
    return given, surname


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
    frame: pl.DataFrame  # input columns plus _event, _boundary, _in_catalogue, _category
    persons: tuple[np.ndarray, np.ndarray, np.ndarray]  # event, person, role index


class _Pools:
    """Samplers for the people who take part in events."""

    def __init__(self, people: _People) -> None:
        self.p = people
        age = (people.sunday - people.birth) // 365.2425
        adult = people.member != CHILD
        self.adults = np.flatnonzero(adult)
        self.children = np.flatnonzero((people.member == CHILD) & (age >= 3))
        self.young = np.flatnonzero((people.member == CHILD) & (age <= 10))
        carer = np.isin(people.member, (MOTHER, FATHER, HOUSEHOLD, CUSTODIAN))
        self.weighted = {
            RISK: self._cdf(self.adults, people.risk[self.adults]),
            RISK_PARENT: self._cdf(np.flatnonzero(carer), people.risk[carer]),
            YOUTH: self._cdf(np.flatnonzero(people.youth > 0), people.youth[people.youth > 0]),
            CRIME: self._cdf(self.adults, 0.5 * people.risk[self.adults] + 0.01),
        }

    @staticmethod
    def _cdf(idx: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return idx, np.cumsum(w)

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

    frame = _incident_frame(rng, geo, specs, spec, muni, reg_day, reg_sec, delay, boundary)
    return _Events(frame=frame, persons=(ev_p, person_p, role_p))


def _local(day: np.ndarray, sec: np.ndarray) -> pl.Series:
    """Local wall-clock (days since epoch, seconds of day) as Europe/Copenhagen date-times.

    A wall-clock time skipped by the spring change to summer time moves an hour later; one that
    occurs twice in autumn is the first (summer time) one.
    """
    naive = pl.Series((day.astype(np.int64) * 86400 + sec) * 1_000_000).cast(pl.Datetime("us"))
    aware = naive.dt.replace_time_zone(_TZ, ambiguous="earliest", non_existent="null")
    later = (naive + timedelta(hours=1)).dt.replace_time_zone(_TZ, ambiguous="earliest", non_existent="null")
    return aware.fill_null(later)


def _incident_frame(rng: np.random.Generator, geo: Geography, specs: list[_Spec], spec: np.ndarray,
                    muni: np.ndarray, reg_day: np.ndarray, reg_sec: np.ndarray, delay: np.ndarray,
                    boundary: np.ndarray) -> pl.DataFrame:
    """Incidents with district, journal number, codes and date-times, sorted per district by time."""
    n_ev = int(spec.shape[0])
    codes = [m.code for m in geo.municipalities]
    districts = [m.district for m in geo.municipalities]
    registered = _local(reg_day, reg_sec)
    occurred = registered - pl.Series(delay * 1_000_000).cast(pl.Duration("us"))
    frame = pl.DataFrame({
        "_event": np.arange(n_ev),
        "district": pl.Series(districts, dtype=pl.String).gather(muni),
        "registered_at": registered,
        "occurred_at": occurred,
        "municipality": pl.Series(codes, dtype=pl.String).gather(muni),
        "incident_code": pl.Series([s.incident_code for s in specs], dtype=pl.String).gather(spec),
        "offence_code": pl.Series([s.offence_code for s in specs], dtype=pl.String).gather(spec),
        "_office": pl.Series(_OFFICES, dtype=pl.String).gather(rng.integers(0, len(_OFFICES), size=n_ev)),
        "_boundary": pl.Series(["", "sunday_23", "monday_00", "previous_sunday_23"]).gather(boundary),
        "_in_catalogue": np.array([s.category is not None for s in specs])[spec],
        "_category": pl.Series([s.category for s in specs], dtype=pl.String).gather(spec),
    }).sort("district", "registered_at", "_event")
    prefix = pl.col("district").replace_strict(DISTRICT_NUMBERS, default="9900", return_dtype=pl.String)
    yy = (pl.col("registered_at").dt.year() % 100).cast(pl.String).str.zfill(2)
    seq = (pl.int_range(1, pl.len() + 1).over("district", "_office", yy) + 100).cast(pl.String).str.zfill(5)
    frame = frame.with_columns(
        incident_id=pl.concat_str([prefix, pl.col("_office"), seq, yy], separator="-"),
    )
    return frame.select("_event", *INPUT_SCHEMAS["incidents"], "_boundary", "_in_catalogue", "_category")


# --------------------------------------------------------------------------- incident persons
def _incident_persons(rng: np.random.Generator, people: _People, events: _Events) -> pl.DataFrame:
    """One row per (event, person): CPR (some dashed), role, names and birth date."""
    ev_p, person_p, role_p = events.persons
    dashed = rng.random(int(ev_p.shape[0])) < P_DASHED["incident_persons"]
    frame = pl.DataFrame({
        "_event": ev_p,
        "_order": np.arange(ev_p.shape[0]),
        "_person": person_p,
        "cpr": _maybe_dashed(people.cpr.gather(person_p), dashed),
        "role": pl.Series(ROLES, dtype=pl.String).gather(role_p),
        "given_name": people.given.gather(person_p),
        "surname": people.surname.gather(person_p),
        "birth_date": pl.Series(people.birth[person_p].astype("datetime64[D]")),
    })
    keys = events.frame.select("_event", "district", "incident_id", "registered_at").with_row_index("_pos")
    frame = (frame.join(keys, on="_event", how="inner").sort("_pos", "_order")
             .with_columns(_row=pl.int_range(pl.len()).over("district").cast(pl.UInt32)))
    return frame.select("_event", "_person", "_row", *INPUT_SCHEMAS["incident_persons"])


def _maybe_dashed(cpr: pl.Series, dashed: np.ndarray) -> pl.Series:
    """``cpr`` with the rows flagged in ``dashed`` written ``DDMMYY-SSSS``."""
    idx = np.flatnonzero(dashed)
    sub = cpr.gather(idx)
    return cpr.scatter(idx, sub.str.slice(0, 6) + "-" + sub.str.slice(6)).rename("cpr")


_FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


def _corrupt(rng: np.random.Generator, persons: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Blank or corrupt ~1.4 % of CPR numbers (plus ~0.3 % foreigners), vary names; return truth.

    Returns the incident persons (without helper columns) and the truth of every changed row.
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

    # foreign persons: a pool smaller than the rows, so some appear on several events
    n_for = int(foreign.sum())
    _, _, _, fgiven, flast = _name_lists()
    pool = max(int(n_for / 1.3), 1)
    fid = rng.integers(0, pool, size=n)
    f_given = pl.Series(fgiven).gather(np.asarray(rng.integers(0, len(fgiven), size=pool))[fid])
    f_last = pl.Series(flast).gather(np.asarray(rng.integers(0, len(flast), size=pool))[fid])
    f_birth = pl.Series((rng.integers(-15_000, 11_000, size=pool)[fid]).astype("datetime64[D]"))

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
        _fid=pl.Series(fid), _fgiven=f_given, _flast=f_last, _fbirth=f_birth,
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
def _population_frame(rng: np.random.Generator, people: _People) -> pl.DataFrame:
    """The CPR extract sorted by municipality and birth date; a few numbers written with the dash."""
    geo = geography()
    codes = pl.Series([m.code for m in geo.municipalities], dtype=pl.String)
    dashed = rng.random(people.n) < P_DASHED["population"]
    order = np.lexsort((people.birth, people.municipality))  # by municipality, then age
    return pl.DataFrame({
        "cpr": _maybe_dashed(people.cpr.clone(), dashed).gather(order),
        "municipality": codes.gather(people.municipality[order]),
        "given_name": people.given.gather(order),
        "surname": people.surname.gather(order),
    })


def _relations_frame(rng: np.random.Generator, people: _People) -> pl.DataFrame:
    child, adult, rel = people.relations
    n = int(child.shape[0])
    return pl.DataFrame({
        "child_cpr": _maybe_dashed(people.cpr.gather(child), rng.random(n) < P_DASHED["relations"]),
        "adult_cpr": _maybe_dashed(people.cpr.gather(adult), rng.random(n) < P_DASHED["relations"]),
        "relation": pl.Series(RELATIONS, dtype=pl.String).gather(rel),
    })


def _truth_frames(people: _People, events: _Events, fallback: pl.DataFrame) -> dict[str, pl.DataFrame]:
    codes = pl.Series([m.code for m in geography().municipalities], dtype=pl.String)
    fam_id = pl.Series(people.family)
    return {
        "fallback": fallback,
        "people": pl.DataFrame({
            "cpr": people.cpr,
            "birth_date": pl.Series(people.birth.astype("datetime64[D]")),
            "sex": pl.Series(np.where(people.male, "M", "F")),
            "municipality": codes.gather(people.municipality),
            "member": pl.Series(MEMBERS).gather(people.member),
            "family_id": fam_id.set(fam_id < 0, None),
            "risk": people.risk,
            "youth_risk": people.youth,
        }),
        "families": pl.DataFrame({
            "family_id": np.arange(people.n_families),
            "structure": pl.Series(STRUCTURES).gather(people.fam_structure),
            "municipality": codes.gather(people.fam_home),
            "children": people.fam_size,
        }),
        "incidents": events.frame.select(
            "district", "incident_id", in_catalogue="_in_catalogue", category="_category",
            boundary=pl.when(pl.col("_boundary") != "").then("_boundary"),
        ),
    }


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


def _write(out: Path, fmt: str, name: str, frame: pl.DataFrame, geo: Geography) -> list[Path]:
    """One input table: a file per police district for incidents and persons, else one file."""
    if name not in _TABLE_DIRS:
        return [_write_frame(frame, out / f"{name}.{fmt}", fmt)]
    return [
        _write_frame(frame.filter(pl.col("district") == district), out / name / f"{district}.{fmt}", fmt)
        for district in sorted(geo.district_codes)
    ]


def _write_truth(out: Path, truth: dict[str, pl.DataFrame], summary: dict[str, object]) -> list[Path]:
    files = [_write_frame(frame, out / "truth" / f"{name}.parquet", "parquet") for name, frame in truth.items()]
    path = out / "truth" / "summary.json"
    tmp = path.with_name(".summary.json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return [*files, path]

