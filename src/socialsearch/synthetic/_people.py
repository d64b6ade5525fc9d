"""People and families: birth dates, sexes, CPR numbers, family structures and risk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from ..geography import Geography
from ..weeks import IsoWeek
from ._model import (
    CARER_RISK_FACTOR,
    CHILD,
    CHILDREN_NATIONAL,
    CUSTODIAN,
    FATHER,
    FATHER_UNKNOWN,
    HOUSEHOLD,
    KIDS_PER_FAMILY,
    MOTHER,
    OTHER,
    OTHER_CUSTODIAN,
    P_MOTHER_RESIDENT,
    P_OTHER_PARENT_MOVED,
    P_STEP_PARENT,
    RISK_BASELINE,
    RISK_SHAPE,
    RISK_SHARE_BY_AGE,
    SEP_JOINT,
    SEP_SOLE,
    STRUCTURE_P,
    YOUTH_BASELINE,
    YOUTH_RISK_SHARE,
)
from ._names import PersonNames, draw_names, name_tables


# --------------------------------------------------------------------------- people
@dataclass
class People:
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
    names: PersonNames
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
        return name_tables().given_str(self.names.g1[idx], self.names.g2[idx])

    def surname_str(self, idx: np.ndarray) -> pl.Series:
        """Surnames (with a middle name, hyphenated or not) of the people ``idx``."""
        nm = self.names
        return name_tables().surname_str(nm.sm[idx], nm.s1[idx], nm.s2[idx], ~self.male[idx])




def day_number(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def municipality_shares(geo: Geography) -> np.ndarray:
    pop = np.array([m.population for m in geo.municipalities], dtype=np.float64)
    if pop.sum() <= 0:
        pop = np.ones_like(pop)
    return np.asarray(pop / pop.sum(), dtype=np.float64)


def draw_people(rng: np.random.Generator, geo: Geography, scale: float, week: IsoWeek) -> People:
    """Families with their children, the other adults, residence, names and CPR numbers."""
    shares = municipality_shares(geo)
    n_muni = shares.shape[0]
    total = max(int(round(sum(m.population for m in geo.municipalities) * scale)), 50)
    sunday = week.sunday
    sun = day_number(sunday)
    child_min = day_number(_years_before(sunday, 18)) + 1  # still 17 on Sunday
    adult_max = day_number(_years_before(sunday, 18))  # 18 on Sunday at the latest

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
    names = draw_names(rng, name_tables(), male, i_father, i_mother, child_fam, n_child)
    return People(
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


