"""Tests of the relations register as evidence in socialsearch.station.resolution: which residents
:func:`relatives` finds for the persons of an event, that each level of the relation field
resolves a person names and birth date alone cannot (or keeps a namesake out), and that queries
without relatives weigh exactly as before."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_resolution_evidence import HOME, TRUE, query, register

from socialsearch.errors import InputError
from socialsearch.station.resolution import (
    DEFAULT_MODEL,
    RELATION_LEVELS,
    comparison_pairs,
    relatives,
    resolve,
)

MOTHER, FATHER, SISTER, STRANGER = "0101601111", "0202602222", "0303903333", "0404704444"


def with_relatives(q: pl.DataFrame, kin: list[str] | None, household: list[str] | None) -> pl.DataFrame:
    return q.with_columns(kin=pl.Series([kin], dtype=pl.List(pl.String)),
                          household=pl.Series([household], dtype=pl.List(pl.String)))


def answer(q: pl.DataFrame, reg: pl.DataFrame) -> tuple[str | None, str]:
    row = resolve(q, reg).matches.row(0, named=True)
    return row["cpr"], row["outcome"]


# --------------------------------------------------------------------------- relatives


def test_relatives_are_children_adults_co_parents_and_siblings() -> None:
    """TRUE is the child of MOTHER and FATHER, SISTER the other child of MOTHER. An event with
    MOTHER: TRUE and SISTER are kin (her children), FATHER household (a co-parent). An event with
    SISTER: MOTHER kin, TRUE household (a sibling). An event with both MOTHER and SISTER: neither
    is the other's relative."""
    rel = pl.DataFrame({"child": [TRUE, TRUE, SISTER], "adult": [MOTHER, FATHER, MOTHER]})
    co = pl.DataFrame({"event": [1, 2, 3, 3, 4], "person": [MOTHER, SISTER, MOTHER, SISTER, STRANGER]})
    got = {e: (k, h) for e, k, h in relatives(co, rel).iter_rows()}
    assert got[1] == (sorted([TRUE, SISTER]), [FATHER])
    assert got[2] == ([MOTHER], [TRUE])
    assert got[3] == ([TRUE], [FATHER])
    assert 4 not in got  # a person without relations gives the event none


@settings(max_examples=100, deadline=None)
@given(edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=20),
       on_event=st.sets(st.integers(0, 7), min_size=1, max_size=3))
def test_relatives_match_the_definition_on_any_small_register(edges: list[tuple[int, int]], on_event: set[int]) -> None:
    """Against a plain set computation: kin are one relation away from a person of the event,
    household two (through a common child or a common adult), neither a person of the event."""
    rel = pl.DataFrame({"child": [c for c, _ in edges], "adult": [a for _, a in edges]},
                       schema={"child": pl.Int64, "adult": pl.Int64})
    co = pl.DataFrame({"event": [0] * len(on_event), "person": sorted(on_event)},
                      schema={"event": pl.Int64, "person": pl.Int64})
    kin = {a for c, a in edges if c in on_event} | {c for c, a in edges if a in on_event}
    children = {c for c, a in edges if a in on_event}
    adults = {a for c, a in edges if c in on_event}
    household = {a for c, a in edges if c in children} | {c for c, a in edges if a in adults}
    kin -= on_event
    household -= on_event | kin
    got = relatives(co, rel)
    if not kin and not household:
        assert got.height == 0
    else:
        assert got.rows() == [(0, sorted(kin), sorted(household))]


# --------------------------------------------------------------------------- resolving


@pytest.mark.parametrize("level", ["kin", "household"])
def test_a_relative_of_a_person_on_the_event_resolves_a_common_name(level: str) -> None:
    """"Mette Hansen" on her birth date among 3,000 residents of common names: names and date
    alone leave her below the threshold; being the child (kin) or the sibling (household) of a
    person with a valid number on the event resolves her."""
    reg = register()
    assert answer(query(), reg) == (None, "below_threshold")
    kin, household = ([TRUE], [FATHER]) if level == "kin" else ([MOTHER], [TRUE])
    assert answer(with_relatives(query(), kin, household), reg) == (TRUE, "resolved")


def test_a_relative_against_the_place_stays_ambiguous() -> None:
    """Two residents "Mette Hansen" born the same day, one living where the event is: the place
    alone does not resolve her, the place and her being kin of a person on the event do; kin
    pointing at the other namesake, against the place, leaves the query ambiguous."""
    reg = pl.concat([register(), register().tail(1).with_columns(cpr=pl.lit("1203857777"),
                                                                   municipality=pl.lit("100"))])
    assert answer(query(place=HOME), reg)[0] is None
    assert answer(with_relatives(query(place=HOME), [TRUE], []), reg) == (TRUE, "resolved")
    assert answer(with_relatives(query(place=HOME), ["1203857777"], []), reg) == (None, "ambiguous")


def test_none_keeps_a_namesake_out() -> None:
    """A person in no register, "Søren Hansen" born on the day of a resident "Søren Hansen" who
    lives where the event is: names, date and place resolve to the resident (P just above the
    threshold, with 138 more residents named Søren elsewhere). When the persons on the event have
    relatives and the resident is none of them, ``none`` weighs against and keeps him out."""
    extra = pl.DataFrame({"cpr": [f"8{i:09d}" for i in range(138)], "given_name": ["Søren"] * 138,
                          "surname": ["Olsen"] * 138, "municipality": ["100"] * 138,
                          "birth_date": [dt.date(1960, 1, 1) + dt.timedelta(days=i) for i in range(138)]})
    reg = pl.concat([register("Søren", "Hansen"), extra], how="diagonal")
    q = query(given="Søren", surname="Hansen", place=HOME)
    assert answer(q, reg) == (TRUE, "resolved")
    assert answer(with_relatives(q, [MOTHER], [FATHER]), reg) == (None, "below_threshold")
    pairs, _ = comparison_pairs(with_relatives(q, [MOTHER], [FATHER]), reg)
    plain, _ = comparison_pairs(q, reg)
    none = RELATION_LEVELS.index("none")
    assert pairs["relation_level"].to_list() == [none] * pairs.height
    delta = math.log2(DEFAULT_MODEL.relation_m[none] / DEFAULT_MODEL.relation_u[none])
    assert (pairs["weight"] - plain["weight"]).to_list() == pytest.approx([delta] * pairs.height)


def test_an_identity_takes_the_best_relation_of_its_queries() -> None:
    """Two events of the same person (same names and date): one with relatives she is not among,
    one where she is kin. Both get her."""
    q = pl.concat([with_relatives(query(qid=1), [MOTHER], []), with_relatives(query(qid=2), [TRUE], [])])
    got = resolve(q, register()).matches.sort("qid")
    assert got["cpr"].to_list() == [TRUE, TRUE]


def test_queries_without_relatives_weigh_as_before() -> None:
    """No ``kin``/``household`` columns, or both null: every pair's level is null and its weight
    the same as without the columns."""
    reg = register()
    plain, _ = comparison_pairs(query("120385468", HOME), reg)
    nulls, _ = comparison_pairs(with_relatives(query("120385468", HOME), None, None), reg)
    assert plain["relation_level"].null_count() == plain.height == nulls["relation_level"].null_count()
    assert plain["weight"].to_list() == nulls["weight"].to_list()


def test_relatives_of_another_type_are_refused_without_quoting_a_cell() -> None:
    q = query().with_columns(kin=pl.lit(TRUE))
    with pytest.raises(InputError, match="queries, column 'kin': expected a list of String") as err:
        resolve(q, register())
    assert TRUE not in str(err.value)


def test_relation_levels_are_reported_per_pair() -> None:
    pairs, _ = comparison_pairs(with_relatives(query(), [TRUE], [MOTHER]), register())
    levels = dict(pairs.select("cpr", "relation_level").iter_rows())
    assert levels[TRUE] == RELATION_LEVELS.index("kin")
    assert set(levels.values()) == {RELATION_LEVELS.index("kin"), RELATION_LEVELS.index("none")}
