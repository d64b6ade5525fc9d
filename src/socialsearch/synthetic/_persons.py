"""Incident persons: who is registered on each event, with CPR and name corruption."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..contract import ROLES
from ._events import Events
from ._model import (
    DATE_ERROR_P,
    DATE_ERRORS,
    FALLBACK_KINDS,
    FALLBACK_P,
    INPUT_SCHEMAS,
    NAME_VARIANT_P,
    NAME_VARIANTS,
    P_DASHED,
    P_FALLBACK,
    P_FOREIGN,
)
from ._names import ForeignPool
from ._people import People


# --------------------------------------------------------------------------- incident persons
def incident_persons(rng: np.random.Generator, people: People, events: Events,
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
        "cpr": maybe_dashed(people.cpr_str(person_p), dashed),
        "role": pl.Series(ROLES, dtype=pl.String).gather(role_all[rows]),
        "given_name": people.given_str(person_p),
        "surname": people.surname_str(person_p),
        "birth_date": pl.Series(people.birth[person_p].astype("datetime64[D]")),
    })
    keys = incidents.select("_event", "district", "incident_id").with_row_index("_pos")
    frame = (frame.join(keys, on="_event", how="inner").sort("_pos", "_order")
             .with_columns(_row=pl.int_range(pl.len()).cast(pl.UInt32)))
    return frame.select("_event", "_person", "_row", *INPUT_SCHEMAS["incident_persons"])


def maybe_dashed(cpr: pl.Series, dashed: np.ndarray) -> pl.Series:
    """``cpr`` with the rows flagged in ``dashed`` written ``DDMMYY-SSSS``."""
    idx = np.flatnonzero(dashed)
    sub = cpr.gather(idx)
    return cpr.scatter(idx, sub.str.slice(0, 6) + "-" + sub.str.slice(6)).rename("cpr")


_FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


def corrupt(rng: np.random.Generator, persons: pl.DataFrame,
             pool: ForeignPool) -> tuple[pl.DataFrame, pl.DataFrame]:
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
    # Drawn after every other draw of the district, so that the rows before stay as they were.
    frame = _vary_dates(frame.with_columns(
        _derr=pl.Series(DATE_ERRORS).gather(rng.choice(len(DATE_ERRORS), size=n, p=DATE_ERROR_P)),
        _dpos=pl.Series(rng.integers(0, 8, size=n)), _ddigit=pl.Series(rng.integers(1, 10, size=n)),
        _dsign=pl.Series(rng.choice([-1, 1], size=n)),
    ))
    truth = (
        frame.filter(pl.col("_fallback") | pl.col("_foreign"))
        .select(
            "district", "incident_id", pl.col("_row").alias("row_in_file"), "role",
            kind=pl.when("_foreign").then(pl.lit("foreign")).otherwise(pl.col("_kind")),
            true_cpr=pl.when("_foreign").then(pl.lit(None, pl.String)).otherwise(pl.col("_true")),
            foreign_id=pl.when("_foreign").then(pl.format("F{}", pl.col("_fid").cast(pl.String).str.zfill(7))),
            name_variant=pl.when("_foreign").then(pl.lit("none")).otherwise(pl.col("_applied")),
            date_error="_date_applied",
        )
    )
    return frame.select("_row", *INPUT_SCHEMAS["incident_persons"]), truth


def _vary_dates(frame: pl.DataFrame) -> pl.DataFrame:
    """On rows without a valid CPR number (and foreigners): the drawn birth-date error, where the
    name variant left the date alone and the result is a calendar date."""
    on = (pl.col("_fallback") | pl.col("_foreign")) & (pl.col("_applied") != "day_month_swap")
    d, e = pl.col("birth_date"), pl.col("_derr")
    text = d.dt.strftime("%Y%m%d")
    old = text.str.slice(pl.col("_dpos"), 1).cast(pl.Int32)
    new_digit = ((old + pl.col("_ddigit")) % 10).cast(pl.String)  # never the digit it was
    one = pl.concat_str(text.str.slice(0, pl.col("_dpos")), new_digit, text.str.slice(pl.col("_dpos") + 1))
    year = d.dt.year() + pl.col("_dsign")
    changed = (
        pl.when(e == "day_month_swap").then(
            pl.when((d.dt.day() <= 12) & (d.dt.day() != d.dt.month()))
            .then(pl.date(d.dt.year(), d.dt.day(), d.dt.month())))
        .when(e == "one_digit").then(one.str.to_date("%Y%m%d", strict=False))
        .when(e == "year_off").then(
            pl.concat_str(year.cast(pl.String).str.zfill(4), text.str.slice(4)).str.to_date("%Y%m%d", strict=False))
    )
    applied = on & ((e == "missing") | changed.is_not_null())
    return frame.with_columns(
        birth_date=pl.when(applied).then(pl.when(e != "missing").then(changed)).otherwise(d),
        _date_applied=pl.when(applied).then(e).otherwise(pl.lit("none")),
    )


def _vary_names(frame: pl.DataFrame) -> pl.DataFrame:
    """On fallback rows, the name and date errors a police officer makes when there is no CPR."""
    v = pl.col("_variant")
    on = pl.col("_fallback") & ~pl.col("_foreign")
    g, s = pl.col("given_name"), pl.col("surname")
    def letter_swap(e: pl.Expr) -> pl.Expr:
        p = pl.col("_pos") // 2 % pl.max_horizontal(e.str.len_chars() - 1, 1)
        return pl.concat_str([e.str.slice(0, p), e.str.slice(p + 1, 1), e.str.slice(p, 1), e.str.slice(p + 2)])

    # a letter swap hits the given name on even positions, the surname on odd ones
    in_given = pl.col("_pos") % 2 == 0

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
        _g=pl.when(on & (v == "letter_swap") & in_given).then(letter_swap(g))
        .when(on & (v == "transliterated")).then(translit(g))
        .when(on & (v == "dropped_given_name")).then(g.str.split(" ").list.first()).otherwise(g),
        _s=pl.when(on & (v == "letter_swap") & ~in_given).then(letter_swap(s))
        .when(on & (v == "transliterated")).then(translit(s))
        .when(on & (v == "surname_variant")).then(surname_var).otherwise(s),
        _d=pl.when(on & (v == "day_month_swap") & swap_ok)
        .then(pl.date(d.dt.year(), d.dt.day(), d.dt.month())).otherwise(d),
    )
    changed = (pl.col("_g") != g) | (pl.col("_s") != s) | (pl.col("_d") != d)
    return new.with_columns(
        _applied=pl.when(on & changed).then(v).otherwise(pl.lit("none")),
    ).with_columns(given_name=pl.col("_g"), surname=pl.col("_s"), birth_date=pl.col("_d"))




