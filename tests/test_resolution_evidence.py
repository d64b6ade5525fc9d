"""Tests of the written CPR number and the event's municipality as evidence in
socialsearch.station.resolution: their levels, that every documented variant of a written number
resolves a person names and birth date alone cannot, and that a wrong number or a known place
elsewhere keeps a namesake out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.errors import InputError
from socialsearch.station.resolution import (
    CPR_DATE_GROUPS,
    CPR_LEVELS,
    DEFAULT_MODEL,
    PLACE_LEVELS,
    RegisterIndex,
    comparison_pairs,
    cpr_levels,
    resolve,
    written_cpr,
)

D = dt.date(1985, 3, 12)
TRUE = "1203852468"  # the person's number: 12 March 1985, sequence 2468
GIVEN = ["Anne", "Mette", "Jens", "Peter", "Lars", "Hanne", "Søren", "Kirsten", "Michael", "Susanne"]
SURNAMES = ["Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen"]
PLACES = [str(100 + k) for k in range(50)]  # 50 municipalities of equal size in the background
HOME = "851"  # the person's municipality: 30 of the 3,001 residents live there


def background(n: int = 3000, seed: int = 0) -> pl.DataFrame:
    """Common Danish names born over 1984-1986 (about 3 a day), 30 of them in HOME."""
    rng = np.random.default_rng(seed)
    places = [PLACES[i] for i in rng.integers(0, len(PLACES), n)]
    places[:29] = [HOME] * 29
    return pl.DataFrame({
        "cpr": [f"9{i:09d}" for i in range(n)],
        "given_name": [GIVEN[i] for i in rng.integers(0, len(GIVEN), n)],
        "surname": [SURNAMES[i] for i in rng.integers(0, len(SURNAMES), n)],
        "birth_date": [dt.date(1984, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 1096, n)],
        "municipality": places,
    })


def register(given: str = "Mette", surname: str = "Hansen") -> pl.DataFrame:
    me = pl.DataFrame({"cpr": [TRUE], "given_name": [given], "surname": [surname], "birth_date": [D],
                       "municipality": [HOME]})
    return pl.concat([background(), me])


def query(written: str | None = None, place: str | None = None, given: str = "Mette", surname: str = "Hansen",
          qid: int = 1, born: dt.date | None = D) -> pl.DataFrame:
    return pl.DataFrame({"qid": [qid], "given_name": [given], "surname": [surname], "birth_date": [born],
                         "written_cpr": [written], "municipality": [place]},
                        schema={"qid": pl.Int64, "given_name": pl.String, "surname": pl.String,
                                "birth_date": pl.Date, "written_cpr": pl.String, "municipality": pl.String})


def answer(q: pl.DataFrame, reg: pl.DataFrame) -> tuple[str | None, str]:
    row = resolve(q, reg).matches.row(0, named=True)
    return row["cpr"], row["outcome"]


# --------------------------------------------------------------------------- levels

# Every way of writing the number the documentation names, with its level against TRUE.
VARIANTS = {
    "full width": ("１２０３８５２４６８", "same"),
    "dots and a space": ("12.03.85 2468", "same"),
    "a digit dropped": ("120385468", "one_edit"),
    "a digit added": ("12038524681", "one_edit"),
    "a digit replaced by a letter": ("12038S2468", "one_edit"),
    "two neighbours swapped": ("1203852648", "one_edit"),
    "an impossible day": ("4503852468", "sequence"),
    "an impossible month": ("1219852468", "sequence"),
    "a four-digit year": ("120319852468", "sequence"),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_documented_written_variant_gets_its_level(name: str) -> None:
    written, level = VARIANTS[name]
    assert cpr_levels(pl.Series([written]), pl.Series([TRUE])).to_list() == [CPR_LEVELS.index(level)]


def test_nothing_usable_written_has_no_level() -> None:
    got = cpr_levels(pl.Series(["", "   ", "120385", "99999", "-", None, "1203852468123"]), pl.Series([TRUE] * 7))
    assert got.to_list() == [None] * 7


def test_another_persons_number_is_other() -> None:
    assert cpr_levels(pl.Series(["010101123", "0101011234"]), pl.Series([TRUE, TRUE])).to_list() == [3, 3]


def test_written_cpr_folds_width_case_and_separators() -> None:
    got = pl.DataFrame({"c": ["１２０３８５-２４６８", " 120385 2468 ", "12038s2468"]}).select(written_cpr(pl.col("c")))
    assert got["c"].to_list() == ["1203852468", "1203852468", "12038S2468"]


@settings(max_examples=200, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=10, max_size=10), pos=st.integers(0, 9),
       how=st.sampled_from(["drop", "add", "letter", "swap", "width"]))
def test_one_slip_in_a_number_never_falls_to_other(digits: str, pos: int, how: str) -> None:
    """Any single slip of the documented kinds in any ten-digit number compares on ``same`` or
    ``one_edit`` with the number, and never on ``same`` with a number that differs."""
    written = {
        "drop": digits[:pos] + digits[pos + 1:],
        "add": digits[:pos] + "7" + digits[pos:],
        "letter": digits[:pos] + "B" + digits[pos + 1:],
        "swap": digits[:pos] + digits[pos + 1:pos + 2] + digits[pos] + digits[pos + 2:],
        "width": "".join(chr(0xFF10 + int(c)) for c in digits),
    }[how]
    assert cpr_levels(pl.Series([written]), pl.Series([digits])).item() in (0, 1)
    other = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert cpr_levels(pl.Series([written]), pl.Series([other])).item() != 0


# --------------------------------------------------------------------------- resolving


def test_a_common_name_on_its_date_alone_is_not_enough() -> None:
    """The baseline of the tests below: "Mette Hansen" on her birth date among 3,000 residents of
    common names is not resolved by names and date alone."""
    assert answer(query(), register()) == (None, "below_threshold")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_documented_written_variant_resolves_a_common_name(name: str) -> None:
    assert answer(query(VARIANTS[name][0]), register()) == (TRUE, "resolved")


def test_the_event_in_the_persons_municipality_resolves_a_common_name() -> None:
    assert answer(query(place=HOME), register()) == (TRUE, "resolved")
    assert answer(query(place="100"), register())[0] is None


def test_a_wrong_number_keeps_a_same_day_namesake_unresolved() -> None:
    """A person in no register with a rare name whose namesake born the same day is a resident:
    names and date alone resolve to the namesake; the person's own (wrong for the namesake)
    number, written with a slip, keeps it unresolved, even with the event in the namesake's
    municipality."""
    reg = register("Søren", "Ærenlund")
    assert answer(query(given="Søren", surname="Ærenlund"), reg) == (TRUE, "resolved")
    assert answer(query("120385113", given="Søren", surname="Ærenlund"), reg) == (None, "below_threshold")
    assert answer(query("120385113", HOME, given="Søren", surname="Ærenlund"), reg)[0] is None


def test_the_number_and_the_place_find_the_person_without_a_birth_date() -> None:
    """No birth date written: the candidates are every "Mette Hansen", on any date. The number's
    u's without a date are fitted among such candidates, whose date digits rarely agree with
    the written number's, so a one-edit number alone finds her; so does it with the place."""
    assert answer(query(born=None), register())[0] is None
    assert answer(query("120385246", born=None), register()) == (TRUE, "resolved")
    assert answer(query("120385246", HOME, born=None), register()) == (TRUE, "resolved")


def test_an_identity_takes_the_best_written_number_of_its_queries() -> None:
    """Two events of the same person (same names and date): one without a number, one with it
    written with a slip. Both get the person."""
    q = pl.concat([query(None, qid=1), query("12038S2468", qid=2)])
    got = resolve(q, register()).matches.sort("qid")
    assert got["cpr"].to_list() == [TRUE, TRUE]
    assert got["outcome"].to_list() == ["resolved", "resolved"]


def test_queries_without_the_new_columns_weigh_as_before() -> None:
    reg = register()
    plain = query().drop("written_cpr", "municipality")
    pairs, _ = comparison_pairs(plain, reg)
    nulls, _ = comparison_pairs(query(), reg)
    assert pairs["cpr_level"].null_count() == pairs.height and pairs["place_level"].null_count() == pairs.height
    assert pairs["weight"].to_list() == nulls["weight"].to_list()


def test_levels_are_reported_per_pair_and_an_index_needs_the_residence() -> None:
    reg = register()
    pairs, _ = comparison_pairs(query("120385468", HOME), reg)
    mine = pairs.filter(pl.col("cpr") == TRUE).row(0, named=True)
    assert (mine["cpr_level"], mine["place_level"]) == (CPR_LEVELS.index("one_edit"), PLACE_LEVELS.index("same"))
    index = RegisterIndex.build(reg.drop("municipality"))
    without, _ = comparison_pairs(query("120385468", HOME), index)
    assert without["place_level"].null_count() == without.height
    with_place, _ = comparison_pairs(query("120385468", HOME), index, residence=reg["municipality"])
    assert with_place.sort("rid")["weight"].to_list() == pairs.sort("rid")["weight"].to_list()


def test_an_index_built_with_the_residence_weighs_the_place_as_one_given_on_each_call() -> None:
    """The shares counted once by RegisterIndex.build weigh the place as those of a residence
    given to comparison_pairs; residents without a birth date are left out of both alike."""
    reg = pl.concat([register(), pl.DataFrame({"cpr": ["0000000001"], "given_name": ["Mette"], "surname": ["Hansen"],
                                               "birth_date": [None], "municipality": [HOME]})],
                    how="vertical_relaxed")
    index = RegisterIndex.build(reg)
    assert index.residence is not None
    carried, _ = comparison_pairs(query(place=HOME), index)
    dated = reg.filter(pl.col("birth_date").is_not_null())
    given_now, _ = comparison_pairs(query(place=HOME), RegisterIndex.build(dated.drop("municipality")),
                                    residence=dated["municipality"])
    assert carried["place_level"].null_count() == 0
    levels = ["rid", "place_level", "weight"]
    assert carried.sort("rid").select(levels).equals(given_now.sort("rid").select(levels))
    mine = carried.filter(pl.col("cpr") == TRUE).row(0, named=True)
    assert mine["place_level"] == PLACE_LEVELS.index("same")


def test_place_weights_follow_the_registers_share() -> None:
    """``same`` weighs log2(place_m / share of the register in that municipality)."""
    reg = register()
    pairs, _ = comparison_pairs(query(place=HOME), reg)
    plain, _ = comparison_pairs(query(), reg)
    mine = pairs.join(plain.select("rid", base="weight"), on="rid").filter(pl.col("cpr") == TRUE).row(0, named=True)
    share = 30 / reg.height
    assert mine["weight"] - mine["base"] == pytest.approx(np.log2(DEFAULT_MODEL.place_m / share))


def test_a_written_number_column_of_another_type_is_refused() -> None:
    with pytest.raises(InputError, match="queries, column 'written_cpr': expected a String column"):
        resolve(query().with_columns(written_cpr=pl.lit(1203852468)), register())


def test_undated_queries_with_the_same_names_do_not_lend_each_other_their_evidence() -> None:
    """Two "Mette Hansen" written without a birth date: one with her number (a slip) on an event
    in her municipality, which resolves her; the other with nothing else, which names alone do
    not resolve. They may be two people: the second is not resolved on the first's evidence."""
    q = pl.concat([query("12038S2468", HOME, qid=1, born=None), query(None, None, qid=2, born=None)])
    got = resolve(q, register()).matches.sort("qid")
    assert got.row(0, named=True)["cpr"] == TRUE
    assert got.row(1, named=True)["cpr"] is None
    assert got.row(1, named=True)["outcome"] != "resolved"
    _, ids = comparison_pairs(q, register())
    assert ids["iid"].n_unique() == 2


def test_dated_queries_with_the_same_names_are_still_one_identity() -> None:
    """The same names and birth date on two events are one person far more often than two: they
    stay one identity, and the number written on one resolves both (one answer)."""
    q = pl.concat([query("12038S2468", HOME, qid=1), query(None, None, qid=2)])
    _, ids = comparison_pairs(q, register())
    assert ids["iid"].n_unique() == 1
    assert resolve(q, register()).matches["cpr"].to_list() == [TRUE, TRUE]


def _number_weight(written: str, born: dt.date | None) -> float:
    """What the written number adds to the weight of the person's own pair."""
    reg = register()
    with_number, _ = comparison_pairs(query(written, born=born), reg)
    without, _ = comparison_pairs(query(None, born=born), reg)
    mine = with_number.join(without.select("rid", base="weight"), on="rid").filter(pl.col("cpr") == TRUE)
    return float(mine["weight"].item() - mine["base"].item())


def test_a_one_edit_number_says_least_against_a_candidate_born_the_same_day() -> None:
    """Among candidates born the same day the number's six date digits agree with every one of
    them, so a number one edit away happens by chance far more often than among candidates on a
    near date or on any date: ``one_edit`` weighs least on the same day, and each weight is
    log2(m / u) with the u of its date group."""
    one_edit = CPR_LEVELS.index("one_edit")
    same_day = _number_weight("120385468", D)
    near = _number_weight("120385468", dt.date(1985, 12, 3))  # day and month swapped
    undated = _number_weight("120385468", None)
    assert same_day < near and same_day < undated
    m, u = DEFAULT_MODEL.cpr_m[one_edit], DEFAULT_MODEL.cpr_u
    assert [same_day, near, undated] == pytest.approx([np.log2(m / u[g][one_edit]) for g in range(3)])
    assert CPR_DATE_GROUPS == ("same_day", "near_date", "no_date")
