"""Police events: a year of incidents per district from the catalogue's profiles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from ..catalogue import Catalogue, Code
from ..contract import ROLES, TIME_ZONE
from ..geography import Geography
from ..weeks import IsoWeek
from ._model import (
    ANY_ADULT,
    ANY_CHILD,
    CHILD,
    CHILD_OF,
    CRIME,
    CUSTODIAN,
    DEFAULT_PROFILE,
    DISTRICT_NUMBERS,
    FATHER,
    GENERIC_INCIDENT,
    HOUR_W,
    HOUSEHOLD,
    INPUT_SCHEMAS,
    MOTHER,
    OFFICES,
    OTHER_CODES,
    P_EVENT_AWAY,
    PARENT_OF,
    PARTNER,
    PROFILES,
    RISK,
    RISK_PARENT,
    YOUNG_CHILD,
    YOUTH,
    Profile,
    Spec,
)
from ._people import People, day_number, municipality_shares


# --------------------------------------------------------------------------- events
def _profile(category: str) -> Profile:
    for keyword, profile in PROFILES:
        if keyword in category.lower():
            return profile
    return DEFAULT_PROFILE


def event_specs(catalogue: Catalogue) -> list[Spec]:
    """Catalogue codes (rates split within a category, rarer for heavier weight) and other codes."""
    taken = {c.code for c in catalogue.codes}
    by_cat: dict[str, list[Code]] = {}
    for code in catalogue.codes:
        by_cat.setdefault(code.category, []).append(code)
    specs: list[Spec] = []

    def free(code: str) -> str:  # never clash with the catalogue (or with each other)
        while code in taken:
            code = str(int(code) + 1).zfill(len(code)) if code.isdigit() else code + "X"
        taken.add(code)
        return code

    generic = tuple(free(c) for c in GENERIC_INCIDENT)
    for cat_id, codes in by_cat.items():
        profile = _profile(cat_id)
        inv = np.array([4.0 ** -c.weight for c in codes])  # heavier codes are much rarer
        for code, share in zip(codes, inv / inv.sum(), strict=True):
            main = next((r for r in profile.roles if r in code.roles), code.roles[0])
            slots = ((main, 1.0, profile.primary), *profile.others)
            if code.kind == "offence":
                specs.append(Spec(generic[0], code.code, profile.rate * share, slots, cat_id))
            else:
                specs.append(Spec(code.code, "", profile.rate * share, slots, cat_id))
    for kind, other, _label, rate, slots in OTHER_CODES:
        c = free(other)
        if kind == "offence":
            specs.append(Spec(generic[0], c, rate * 0.7, slots, None))
            specs.append(Spec(generic[1], c, rate * 0.3, slots, None))
        else:
            specs.append(Spec(c, "", rate, slots, None))
    return specs


@dataclass
class Events:
    """A year of events as arrays indexed by event number, and their people."""

    spec: np.ndarray  # index into the specs
    muni: np.ndarray  # int16 municipality index
    district: np.ndarray  # int8 index into the sorted district codes
    reg_day: np.ndarray  # registration: days since epoch (local)
    reg_sec: np.ndarray  # ... and seconds of the day
    delay: np.ndarray  # seconds from occurrence to registration
    boundary: np.ndarray  # 1 Sunday 23:xx of W, 2 Monday 00:xx of W, 3 Sunday 23:xx of W-1
    office: np.ndarray  # index into OFFICES
    persons: tuple[np.ndarray, np.ndarray, np.ndarray]  # event, person, role index


class _Pools:
    """Samplers for the people who take part in events."""

    def __init__(self, people: People) -> None:
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




def draw_events(rng: np.random.Generator, geo: Geography, people: People, specs: list[Spec],
            scale: float, week: IsoWeek) -> Events:
    """A year (52 weeks ending with ``week``) of events, their people, places and times."""
    rates = np.array([s.rate for s in specs]) * scale * 364 / 365.25
    counts = rng.poisson(rates)
    spec = np.repeat(np.arange(len(specs)), counts)
    n_ev = int(spec.shape[0])
    first_monday = week.shift(-51).monday
    reg_day = day_number(first_monday) + rng.integers(0, 364, size=n_ev)
    reg_sec = (rng.choice(24, size=n_ev, p=HOUR_W / HOUR_W.sum()) * 3600
               + rng.integers(0, 3600, size=n_ev))
    boundary = np.zeros(n_ev, dtype=np.int8)  # 1 Sunday 23:xx of W, 2 Monday 00:xx of W, 3 Sunday 23:xx of W-1
    cat_events = np.flatnonzero(np.array([s.category is not None for s in specs])[spec])
    k = min(max(2, int(round(n_ev * 0.0003))), cat_events.shape[0] // 3)
    if k > 0:
        chosen = rng.choice(cat_events, size=3 * k, replace=False)
        for b in range(3):
            ev = chosen[b * k:(b + 1) * k]
            boundary[ev] = b + 1
            reg_day[ev] = (day_number(week.sunday) if b == 0 else day_number(week.monday) if b == 1
                           else day_number(week.monday) - 1)
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
    shares = municipality_shares(geo)
    anywhere = rng.choice(shares.shape[0], size=n_ev, p=shares)
    main_ok = primary >= 0
    own = np.where(main_ok, people.municipality[np.maximum(primary, 0)], anywhere)
    muni = np.where(main_ok & (rng.random(n_ev) >= P_EVENT_AWAY), own, anywhere)

    district_of = np.array([sorted(geo.district_codes).index(m.district) for m in geo.municipalities], dtype=np.int8)
    office = rng.integers(0, len(OFFICES), size=n_ev).astype(np.int8)
    return Events(spec=spec, muni=muni.astype(np.int16), district=district_of[muni], reg_day=reg_day,
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


def incident_frame(geo: Geography, specs: list[Spec], events: Events, district: str) -> pl.DataFrame:
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
        "_office": pl.Series(OFFICES, dtype=pl.String).gather(events.office[sel]),
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


