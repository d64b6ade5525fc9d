"""Tests of the candidate pairs of socialsearch.station.resolution against brute force: which
residents are a query's candidates and on which date level, and the date variants of many
birth dates at once."""

from __future__ import annotations

import contextlib
import datetime as dt
from itertools import product

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.station.resolution import comparison_pairs, date_variants, fold_name, name_key

# Spellings whose keys differ unless they fold alike (Søren, Soeren), so that each name's parts
# are its own.
GIVEN = ["Anne", "Anne Marie", "Marie", "Søren", "Soeren", "Søren Peter", "Jens", None]
SURNAMES = ["Hansen", "Møller Hansen", "Møller", "Jensen", "Nielsen-Jensen", None]
DAYS = [dt.date(2001, 2, 3), dt.date(2001, 3, 2), dt.date(2000, 2, 3), dt.date(2002, 2, 3), dt.date(2001, 2, 4),
        dt.date(2011, 2, 3), dt.date(2001, 12, 3), dt.date(2001, 2, 13), dt.date(1999, 7, 7)]


def reference_variants(d: dt.date) -> dict[dt.date, int]:
    """The date (0), day and month swapped (1), the year one off (2), one digit of YYYYMMDD
    changed (3), each at its first level."""
    out = {d: 0}
    with contextlib.suppress(ValueError):
        out.setdefault(dt.date(d.year, d.day, d.month), 1)
    for k in (-1, 1):
        with contextlib.suppress(ValueError):
            if d.year + k >= 1000:  # a four-digit year
                out.setdefault(dt.date(d.year + k, d.month, d.day), 2)
    text = d.strftime("%Y%m%d")
    for pos, digit in product(range(8), "0123456789"):
        t = text[:pos] + digit + text[pos + 1:]
        with contextlib.suppress(ValueError):
            v = dt.date(int(t[:4]), int(t[4:6]), int(t[6:]))
            if v.year >= 1000:
                out.setdefault(v, 3)
    return out


@given(st.lists(st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)), min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_variants_of_many_dates_at_once_equal_brute_force(dates: list[dt.date]) -> None:
    got = date_variants(pl.Series(dates))
    want = sorted((d, level, v) for d in set(dates) for v, level in reference_variants(d).items())
    assert got.select("birth_date", "date_level", "candidate_date").rows() == want


def parts(name: str | None) -> list[str]:
    folded = pl.select(fold_name(pl.lit(name, pl.String))).item()
    return [] if folded is None else folded.split(" ")


def key(name: str | None) -> str | None:
    got: str | None = pl.select(name_key(pl.lit(name, pl.String))).item()
    return got


def expected(register: list[tuple[str, str | None, str | None, dt.date]],
             queries: list[tuple[int, str | None, str | None, dt.date | None]]) -> set[tuple[int, str, int]]:
    """(qid, cpr, date level) of every candidate, by the documented blocking rules, brute force."""
    out = set()
    for qid, qg, qsn, qd in queries:
        q_given, q_surname = parts(qg), parts(qsn)
        g_ends = {q_given[0], q_given[-1]} if q_given else set()
        s_ends = {q_surname[0], q_surname[-1]} if q_surname else set()
        same_names = key(qg) is not None and key(qsn) is not None
        variants = reference_variants(qd) if qd is not None else {}
        for cpr, rg, rs, rd in register:
            names = same_names and key(rg) == key(qg) and key(rs) == key(qsn)
            if qd is None:
                if names:
                    out.add((qid, cpr, 4))
                continue
            level = variants.get(rd)
            r_given, r_surname = parts(rg), parts(rs)
            token = (bool(r_given) and r_given[0] in g_ends) or (bool(r_surname) and r_surname[-1] in s_ends)
            if (level is not None and level < 3 and token) or (level == 3 and names):
                out.add((qid, cpr, level))
    return out


person = st.tuples(st.sampled_from(GIVEN), st.sampled_from(SURNAMES), st.sampled_from(DAYS))


@given(st.lists(person, min_size=1, max_size=25),
       st.lists(st.tuples(st.sampled_from(GIVEN), st.sampled_from(SURNAMES), st.sampled_from([*DAYS, None])),
                min_size=1, max_size=8))
@settings(max_examples=80, deadline=None)
def test_candidates_equal_brute_force(
        residents: list[tuple[str | None, str | None, dt.date]],
        wanted: list[tuple[str | None, str | None, dt.date | None]]) -> None:
    register = [(f"{i:010d}", g, s, d) for i, (g, s, d) in enumerate(residents)]
    queries = [(qid, g, s, d) for qid, (g, s, d) in enumerate(wanted)]
    reg = pl.DataFrame(register, schema={"cpr": pl.String, "given_name": pl.String, "surname": pl.String,
                                         "birth_date": pl.Date}, orient="row")
    q = pl.DataFrame(queries, schema={"qid": pl.Int64, "given_name": pl.String, "surname": pl.String,
                                      "birth_date": pl.Date}, orient="row")
    pairs, identities = comparison_pairs(q, reg)
    got = identities.join(pairs.select("iid", "cpr", "date_level"), on="iid").select("qid", "cpr", "date_level")
    assert got.height == got.unique().height
    assert set(got.rows()) == expected(register, queries)
