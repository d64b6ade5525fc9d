"""Tests for the synthetic Denmark (socialsearch.synthetic) on a small scale."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.catalogue import Catalogue, Category, Code
from socialsearch.errors import UsageError
from socialsearch.geography import geography
from socialsearch.synthetic import INPUT_SCHEMAS, synth
from socialsearch.synthetic._people import _cpr_numbers, _cpr_strings
from socialsearch.weeks import TZ, IsoWeek

WEEK = IsoWeek(2026, 47)
SCALE = 0.004  # about 24,000 people, 4,600 children, 2,700 police events
DISTRICTS = sorted(geography().district_codes)


def _catalogue() -> Catalogue:
    """A small catalogue; "7100" and "9000" collide on purpose with the generator's own codes."""
    cats = (Category("violence", "Vold"), Category("domestic_disturbance", "Husspektakel"),
            Category("suicide", "Selvmord", immediate=True), Category("misc", "Andet"))
    codes = (
        Code("offence", "1100", "Vold", "violence", 2, ("suspect", "victim")),
        Code("offence", "7100", "Særlig kode", "misc", 1, ("suspect",)),
        Code("incident", "5100", "Husspektakel", "domestic_disturbance", 1, ("involved",)),
        Code("incident", "5500", "Selvmordsforsøg", "suicide", 3, ("involved",)),
        Code("incident", "9000", "Særlig hændelse", "misc", 1, ("involved",)),
    )
    return Catalogue(1, 26, 3, 17, cats, codes)


# --------------------------------------------------------------------------- a tiny CPR checker
_DIGITS_7 = {  # 7th digit -> (YY range, century start) per reference/README.md
    (0, 1, 2, 3): ((0, 99, 1900),),
    (4, 9): ((0, 36, 2000), (37, 99, 1900)),
    (5, 6, 7, 8): ((0, 36, 2000), (37, 57, None), (58, 99, 1800)),
}


def cpr_birth(cpr: str) -> date | None:
    """Independent check: the birth date of a valid ``DDMMYYSSSS`` / ``DDMMYY-SSSS``, else None."""
    if not re.fullmatch(r"[0-9]{6}-?[0-9]{4}", cpr):
        return None
    digits = cpr.replace("-", "")
    dd, mm, yy, d7 = int(digits[:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6])
    for group, ranges in _DIGITS_7.items():
        if d7 in group:
            for lo, hi, century in ranges:
                if lo <= yy <= hi:
                    if century is None:
                        return None
                    try:
                        return date(century + yy, mm, dd)
                    except ValueError:
                        return None
    return None


def test_cpr_checker_itself() -> None:
    assert cpr_birth("0101901234") == date(1990, 1, 1)
    assert cpr_birth("010105-4321") == date(2005, 1, 1)
    assert cpr_birth("010145-4321") == date(1945, 1, 1)
    assert cpr_birth("010170-5321") == date(1870, 1, 1)
    assert cpr_birth("010145-5321") is None  # 2045: not issued
    assert cpr_birth("3002901234") is None
    assert cpr_birth("010190123") is None


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("synth") / "extract"
    synth(target, scale=SCALE, seed=3, week=WEEK, catalogue=_catalogue())
    return target


@pytest.fixture(scope="module")
def tables(out: Path) -> dict[str, pl.DataFrame]:
    return {
        "incidents": pl.read_parquet(out / "incidents" / "*.parquet"),
        "incident_persons": pl.read_parquet(out / "incident_persons" / "*.parquet"),
        "population": pl.read_parquet(out / "population.parquet"),
        "relations": pl.read_parquet(out / "relations.parquet"),
    }


def _digits(col: str) -> pl.Expr:
    return pl.col(col).str.replace_all("-", "", literal=True)


def _age_on(birth: pl.Expr, day: date) -> pl.Expr:
    before = (birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day()) > day.month * 100 + day.day
    return day.year - birth.dt.year().cast(pl.Int32) - before.cast(pl.Int32)


@pytest.fixture(scope="module")
def people(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Population with the birth date and age (on the week's Sunday) read from the CPR number."""
    pop = tables["population"].with_columns(digits=_digits("cpr"))
    digits = pop["digits"].unique(maintain_order=True).to_list()
    lookup = pl.DataFrame({"digits": digits, "birth": [cpr_birth(c) for c in digits]},
                          schema={"digits": pl.String, "birth": pl.Date})
    return pop.join(lookup, on="digits", how="left").with_columns(age=_age_on(pl.col("birth"), WEEK.sunday))


# --------------------------------------------------------------------------- layout and schema
def test_one_file_per_district_and_exact_schema(out: Path) -> None:
    for table in ("incidents", "incident_persons"):
        files = sorted(p.name for p in (out / table).iterdir())
        assert files == [f"{d}.parquet" for d in DISTRICTS]
        for d in DISTRICTS:
            frame = pl.read_parquet(out / table / f"{d}.parquet")
            assert dict(frame.schema) == dict(INPUT_SCHEMAS[table])
            assert frame["district"].unique().to_list() in ([d], [])
    for table in ("population", "relations"):
        frame = pl.read_parquet(out / f"{table}.parquet")
        assert dict(frame.schema) == dict(INPUT_SCHEMAS[table])
    assert sorted(p.name for p in out.iterdir()) == [
        "incident_persons", "incidents", "population.parquet", "relations.parquet", "truth"]


def test_input_column_names_are_the_contract() -> None:
    assert list(INPUT_SCHEMAS["incidents"]) == [
        "district", "incident_id", "occurred_at", "registered_at", "municipality", "incident_code",
        "offence_code"]
    assert list(INPUT_SCHEMAS["incident_persons"]) == [
        "district", "incident_id", "cpr", "role", "given_name", "surname", "birth_date"]
    assert list(INPUT_SCHEMAS["population"]) == ["cpr", "municipality", "given_name", "surname"]
    assert list(INPUT_SCHEMAS["relations"]) == ["child_cpr", "adult_cpr", "relation"]


def test_summary_matches_files(out: Path, tables: dict[str, pl.DataFrame]) -> None:
    summary = json.loads((out / "truth" / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows"] == {name: frame.height for name, frame in tables.items()}
    assert summary["people"] == tables["population"].height
    assert summary["week"] == "2026-W47"


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for target, seed in ((a, 5), (b, 5), (c, 6)):
        synth(target, scale=0.001, seed=seed, week=WEEK, catalogue=_catalogue())
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 24 + 2 + 5
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "population.parquet").read_bytes() != (c / "population.parquet").read_bytes()


# --------------------------------------------------------------------------- people
def test_cpr_numbers_valid_unique_and_mostly_undashed(people: pl.DataFrame) -> None:
    assert people["birth"].null_count() == 0
    assert people["digits"].n_unique() == people.height
    dashed = people["cpr"].str.contains("-", literal=True).mean()
    assert 0 < dashed < 0.1  # type: ignore[operator]


def test_cpr_numbers_agree_with_identifiers(people: pl.DataFrame) -> None:
    identifiers = pytest.importorskip("socialsearch.identifiers")
    got = people.select(identifiers.normalise_cpr("cpr").alias("n"), "digits")
    assert got["n"].null_count() == 0
    assert (got["n"] == got["digits"]).all()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.dates(date(1858, 1, 1), date(2036, 12, 31)), st.booleans()),
                min_size=1, max_size=300),
       st.integers(0, 2**32 - 1))
def test_cpr_generator_property(people_in: list[tuple[date, bool]], seed: int) -> None:
    # many people on few dates stress the per-date serials
    births = np.array([(d - date(1970, 1, 1)).days for d, _ in people_in] * 3, dtype=np.int64)
    male = np.array([m for _, m in people_in] * 3)
    cprs = _cpr_strings(_cpr_numbers(births, male, np.random.default_rng(seed))).to_list()
    assert len(set(cprs)) == len(cprs)
    for cpr, b, m in zip(cprs, births, male, strict=True):
        assert cpr_birth(cpr) == date(1970, 1, 1) + timedelta(days=int(b))
        assert int(cpr[-1]) % 2 == int(m)


def test_population_spread_by_municipality(people: pl.DataFrame) -> None:
    geo = geography()
    assert set(people["municipality"].unique()) <= geo.municipality_codes
    kbh = people.filter(pl.col("municipality") == "101").height / people.height
    assert 0.08 < kbh < 0.14  # København holds about 11 % of Denmark
    assert abs(people.height - 5_969_950 * SCALE) < 10


def test_children_ages_and_share(people: pl.DataFrame) -> None:
    children = people.filter(pl.col("age") <= 17)
    assert children["age"].min() == 0
    assert 0.17 < children.height / people.height < 0.21  # 1.15 of 5.97 million
    assert people["age"].max() <= 104


def test_every_child_has_a_relation_and_relations_are_sound(
    people: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    rel = tables["relations"].with_columns(child=_digits("child_cpr"), adult=_digits("adult_cpr"))
    assert set(rel["relation"].unique()) == {"mother", "father", "custodian", "household"}
    ages = people.select("digits", "age", "municipality")
    children = ages.filter(pl.col("age") <= 17)
    assert children.join(rel, left_on="digits", right_on="child", how="anti").height == 0
    joined = rel.join(ages, left_on="child", right_on="digits").join(
        ages, left_on="adult", right_on="digits", suffix="_adult")
    assert joined.height == rel.height  # no dangling CPR numbers
    assert (joined["age"] <= 17).all() and (joined["age_adult"] >= 18).all()
    per_child = rel.group_by("child").agg(
        mothers=(pl.col("relation") == "mother").sum(), fathers=(pl.col("relation") == "father").sum(),
        custodians=(pl.col("relation") == "custodian").sum(), pairs=pl.len(),
        distinct=pl.struct("adult", "relation").n_unique())
    assert (per_child["mothers"] == 1).all() and (per_child["fathers"] <= 1).all()
    assert (per_child["pairs"] == per_child["distinct"]).all()  # no duplicate rows
    custodians = per_child["custodians"]
    assert (custodians >= 1).all()
    single = (custodians == 1).mean()
    assert 0.04 < single < 0.2  # type: ignore[operator]
    # some children live in another municipality than one of their parents
    parents = joined.filter(pl.col("relation").is_in(["mother", "father"]))
    apart = (parents["municipality"] != parents["municipality_adult"]).mean()
    assert 0.02 < apart < 0.2  # type: ignore[operator]


def test_siblings_share_parents(tables: dict[str, pl.DataFrame]) -> None:
    rel = tables["relations"].with_columns(child=_digits("child_cpr"), adult=_digits("adult_cpr"))
    mothers = rel.filter(relation="mother").group_by("adult").agg(pl.col("child").n_unique())
    assert (mothers["child"] >= 2).sum() > mothers.height * 0.4


# --------------------------------------------------------------------------- events
def test_events_inside_the_52_weeks_ending_with_the_week(tables: dict[str, pl.DataFrame]) -> None:
    inc = tables["incidents"]
    first = WEEK.lookback_start(52)
    assert inc["registered_at"].min() >= first  # type: ignore[operator]
    assert inc["registered_at"].max() < WEEK.end  # type: ignore[operator]
    assert (inc["occurred_at"] <= inc["registered_at"]).all()
    late = (inc["registered_at"] - inc["occurred_at"]) > timedelta(days=1)
    assert 0.02 < late.mean() < 0.3  # type: ignore[operator]
    local = inc.with_columns(pl.col("registered_at").dt.replace_time_zone(None))
    sunday_late = datetime.combine(WEEK.sunday, datetime.min.time()) + timedelta(hours=23)
    monday_early = datetime.combine(WEEK.monday, datetime.min.time())
    assert local.filter(pl.col("registered_at") >= sunday_late).height >= 1
    assert local.filter(pl.col("registered_at").is_between(monday_early, monday_early + timedelta(hours=1),
                                                           closed="left")).height >= 1


def test_journal_numbers_and_places(tables: dict[str, pl.DataFrame]) -> None:
    inc = tables["incidents"]
    assert inc["incident_id"].str.contains(r"^\d{4}-\d{5}-\d{5}-\d{2}$").all()
    assert inc.select(pl.struct("district", "incident_id").n_unique()).item() == inc.height
    mun = geography().municipalities_frame()
    placed = inc.join(mun, on="municipality", suffix="_of_municipality")
    assert placed.height == inc.height
    assert (placed["district"] == placed["district_of_municipality"]).all()
    persons = tables["incident_persons"]
    assert persons.join(inc, on=["district", "incident_id"], how="anti").height == 0
    assert set(persons["role"].unique()) == {"suspect", "victim", "witness", "involved"}


def test_codes_inside_and_outside_the_catalogue(out: Path, tables: dict[str, pl.DataFrame]) -> None:
    cat = _catalogue()
    truth = pl.read_parquet(out / "truth" / "incidents.parquet")
    inc = tables["incidents"].join(truth, on=["district", "incident_id"])
    assert inc.height == tables["incidents"].height
    codes = {c.code for c in cat.codes}
    outside = inc.filter(~pl.col("in_catalogue"))
    assert not set(outside["incident_code"]) & codes
    assert not set(outside["offence_code"]) & codes
    inside = inc.filter(pl.col("in_catalogue"))
    hits = inside.filter(pl.col("incident_code").is_in(codes) | pl.col("offence_code").is_in(codes))
    assert hits.height == inside.height > 0
    assert outside.height > 2 * inside.height
    assert set(inside["category"].unique()) == {"violence", "domestic_disturbance", "suicide", "misc"}


def test_children_as_suspects_and_repeat_adults(people: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> None:
    persons = tables["incident_persons"].with_columns(digits=_digits("cpr"))
    aged = persons.join(people.select("digits", "age"), on="digits")
    young_suspects = aged.filter((pl.col("role") == "suspect") & (pl.col("age") <= 17))
    assert young_suspects.height > 0 and young_suspects["age"].min() >= 12
    per_person = aged.group_by("digits").agg(pl.len(), pl.col("district").n_unique())
    assert per_person["len"].max() >= 5  # repeat involvement
    assert (per_person["district"] >= 2).sum() > 0  # people with events in several districts


# --------------------------------------------------------------------------- fallback truth
def test_fallback_rows_and_truth_agree(out: Path, people: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> None:
    persons = pl.concat([
        pl.read_parquet(out / "incident_persons" / f"{d}.parquet").with_row_index("row_in_file")
        for d in DISTRICTS
    ])
    valid = pl.Series([cpr_birth(c) is not None for c in persons["cpr"].to_list()])
    persons = persons.with_columns(valid=valid)
    truth = pl.read_parquet(out / "truth" / "fallback.parquet")
    share = (~persons["valid"]).mean()
    assert 0.008 < share < 0.03  # type: ignore[operator]
    invalid = persons.filter(~pl.col("valid"))
    keys = ["district", "row_in_file"]
    assert invalid.select(keys).sort(keys).equals(truth.select(keys).sort(keys))
    joined = truth.join(persons, on=keys)
    assert (joined["incident_id"] == joined["incident_id_right"]).all()
    assert joined["given_name"].null_count() == 0
    assert joined["birth_date"].null_count() == (joined["date_error"] == "missing").sum()
    kinds = set(truth["kind"].unique())
    assert kinds == {"empty", "wrong_length", "impossible_date", "fullwidth", "typo", "foreign"}
    foreign = truth.filter(kind="foreign")
    assert foreign["true_cpr"].null_count() == foreign.height
    known = truth.filter(pl.col("kind") != "foreign")
    assert known["true_cpr"].null_count() == 0
    assert known.join(people, left_on="true_cpr", right_on="digits", how="anti").height == 0
    # untouched names are the register's names; varied ones differ from them
    named = joined.filter(pl.col("kind") != "foreign").join(
        people.select("digits", "given_name", "surname", "birth"), left_on="true_cpr", right_on="digits",
        suffix="_register")
    same = (named["given_name"] == named["given_name_register"]) & (named["surname"] == named["surname_register"]) \
        & (named["birth_date"] == named["birth"]).fill_null(False)
    assert (same == ((named["name_variant"] == "none") & (named["date_error"] == "none"))).all()
    # each birth-date error is what it says (the swap may also come from the name variant)
    def err(kind: str) -> pl.DataFrame:
        return named.filter(pl.col("date_error") == kind)
    assert set(truth["date_error"].unique()) <= {"none", "day_month_swap", "one_digit", "year_off", "missing"}
    swap = err("day_month_swap")
    assert ((swap["birth_date"].dt.day() == swap["birth"].dt.month())
            & (swap["birth_date"].dt.month() == swap["birth"].dt.day())).all()
    year = err("year_off")
    assert ((year["birth_date"].dt.year() - year["birth"].dt.year()).abs() == 1).all()
    one = err("one_digit")
    a, b = one["birth_date"].dt.strftime("%Y%m%d").to_list(), one["birth"].dt.strftime("%Y%m%d").to_list()
    assert all(sum(x != y for x, y in zip(u, v, strict=True)) == 1 for u, v in zip(a, b, strict=True))


def test_valid_incident_cprs_are_in_the_population(people: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> None:
    persons = tables["incident_persons"].with_columns(digits=_digits("cpr"))
    ok = pl.Series([cpr_birth(c) is not None for c in persons["cpr"].to_list()])
    valid = persons.filter(ok)
    assert valid.join(people, on="digits", how="anti").height == 0
    dashed = persons["cpr"].str.contains("-", literal=True).mean()
    assert 0.02 < dashed < 0.15  # type: ignore[operator]


# --------------------------------------------------------------------------- csv and usage
def test_csv_has_the_same_content_in_local_time(tmp_path: Path) -> None:
    synth(tmp_path / "p", scale=0.001, seed=2, week=WEEK, catalogue=_catalogue())
    synth(tmp_path / "c", scale=0.001, seed=2, week=WEEK, fmt="csv", catalogue=_catalogue())
    assert (tmp_path / "c" / "population.csv").read_text(encoding="utf-8").startswith(
        "cpr,municipality,given_name,surname\n")
    csv = pl.read_csv(tmp_path / "c" / "incidents" / "*.csv", infer_schema=False)
    pq = pl.read_parquet(tmp_path / "p" / "incidents" / "*.parquet")
    assert csv.columns == list(INPUT_SCHEMAS["incidents"])
    assert csv["registered_at"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$").all()
    as_local = pq.with_columns(
        pl.col("occurred_at", "registered_at").dt.convert_time_zone(str(TZ)).dt.strftime("%Y-%m-%dT%H:%M:%S"))
    assert csv.equals(as_local)
    persons = pl.read_csv(tmp_path / "c" / "incident_persons" / "*.csv", infer_schema=False)
    assert persons.columns == list(INPUT_SCHEMAS["incident_persons"])
    assert persons["cpr"].str.contains(r"^\d{6}-?\d{4}$").mean() > 0.95  # type: ignore[operator]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="scale"):
        synth(tmp_path / "x", scale=0, week=WEEK, catalogue=_catalogue())
    with pytest.raises(UsageError, match="format"):
        synth(tmp_path / "x", scale=0.001, week=WEEK, fmt="xlsx", catalogue=_catalogue())  # type: ignore[arg-type]
    synth(tmp_path / "y", scale=0.0005, week=WEEK, fmt="csv", catalogue=_catalogue())
    with pytest.raises(UsageError, match="csv extracts"):
        synth(tmp_path / "y", scale=0.0005, week=WEEK, catalogue=_catalogue())


def test_packaged_catalogue_is_the_default(tmp_path: Path) -> None:
    from socialsearch.catalogue import load_catalogue

    summary = synth(tmp_path / "d", scale=0.001, seed=1, week=WEEK)
    assert summary.rows["incidents"] > 0 and summary.children > 0
    codes = {c.code for c in load_catalogue().codes}
    truth = pl.read_parquet(tmp_path / "d" / "truth" / "incidents.parquet")
    inc = pl.read_parquet(tmp_path / "d" / "incidents" / "*.parquet").join(truth, on=["district", "incident_id"])
    hit = pl.col("incident_code").is_in(codes) | pl.col("offence_code").is_in(codes)
    assert inc.select(hit == pl.col("in_catalogue")).to_series().all()


# --------------------------------------------------------------------------- the name model
NAME_SCALE = 0.05  # about 300,000 people: enough for shares within a few tenths of a per cent
DST_2016 = {  # Statistics Denmark, people carrying the surname, 2016 (population 5,707,251)
    "Nielsen": 255_138, "Jensen": 254_675, "Hansen": 213_339, "Pedersen": 161_074, "Andersen": 157_753,
    "Christensen": 118_117, "Larsen": 114_711, "Sørensen": 109_746, "Rasmussen": 93_723, "Jørgensen": 87_466,
}


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """Population at NAME_SCALE with birth date, sex and name origin from the truth."""
    target = tmp_path_factory.mktemp("names") / "extract"
    synth(target, scale=NAME_SCALE, seed=7, week=WEEK, catalogue=_catalogue())
    pop = pl.read_parquet(target / "population.parquet").with_columns(cpr=_digits("cpr"))
    truth = pl.read_parquet(target / "truth" / "people.parquet")
    frame = pop.join(truth.select("cpr", "birth_date", "sex", "member", "family_id", "origin"), on="cpr")
    assert frame.height == pop.height == truth.height
    return frame.with_columns(last=pl.col("surname").str.split(" ").list.last())


def test_sen_share_and_top_ten_surnames(named: pl.DataFrame) -> None:
    sen = named["last"].str.ends_with("sen").mean()
    assert 0.41 < sen < 0.45  # type: ignore[operator]  # about 43 % carry a -sen name
    counts = dict(named.group_by("last").len().iter_rows())
    for name, count in DST_2016.items():
        target = count / 5_707_251
        assert abs(counts[name] / named.height - target) < 0.15 * target, name
    top = named.group_by("last").len().sort("len", descending=True).head(2)["last"].to_list()
    assert set(top) == {"Nielsen", "Jensen"}
    top10 = sum(counts[n] for n in DST_2016) / named.height
    assert 0.25 < top10 < 0.30


def test_long_tail_of_real_looking_surnames(named: pl.DataFrame) -> None:
    danish = named.filter(origin="dk")
    assert danish["last"].n_unique() > 2_000
    assert named["surname"].n_unique() > 5_000
    # every Danish surname is a word (letters, one hyphen at most), not a random string
    assert danish["last"].str.contains(r"^[A-ZÆØÅ][a-zæøåé]+(-[A-ZÆØÅ][a-zæøåé]+)?$").all()
    tails = danish.filter(~pl.col("last").str.ends_with("sen"))["last"]
    for ending in ("gaard", "holm", "lund", "strup", "bjerg"):
        assert tails.str.ends_with(ending).sum() > 0, ending


def test_immigrant_origin_names(named: pl.DataFrame) -> None:
    foreign = named.filter(pl.col("origin") != "dk")
    share = foreign.height / named.height
    assert 0.13 < share < 0.17  # immigrants and descendants: about 15 %
    assert foreign["origin"].n_unique() >= 20
    assert foreign["last"].str.ends_with("sen").mean() < 0.05  # type: ignore[operator]
    biggest = foreign.group_by("origin").len().sort("len", descending=True)["origin"].head(5).to_list()
    assert "tr_TR" in biggest and "levant" in biggest
    # names in Latin script, and the Polish feminine form for women
    assert not foreign["surname"].str.contains(r"[\u0400-\u04ff\u0600-\u06ff]").any()
    polish = foreign.filter(origin="pl_PL")
    women, men = polish.filter(sex="F")["last"], polish.filter(sex="M")["last"]
    assert women.str.ends_with("ska").sum() > 0 and men.str.ends_with("ski").sum() > 0
    assert women.str.ends_with("ski").sum() == 0


def test_double_given_names_middle_names_and_hyphens(named: pl.DataFrame) -> None:
    double = named["given_name"].str.contains(" ", literal=True).mean()
    assert 0.15 < double < 0.30  # type: ignore[operator]
    middle = named["surname"].str.contains(" ", literal=True).mean()
    assert 0.10 < middle < 0.35  # type: ignore[operator]
    hyphen = named["surname"].str.contains("-", literal=True).mean()
    assert 0.01 < hyphen < 0.06  # type: ignore[operator]


def test_namesakes_with_the_same_birth_date(named: pl.DataFrame) -> None:
    same = named.group_by("given_name", "surname", "birth_date").len().filter(pl.col("len") > 1)
    assert same.height > 0
    # at most a few in a thousand people share name and birth date at this scale
    assert same["len"].sum() / named.height < 0.01


def test_families_share_surnames(named: pl.DataFrame) -> None:
    kids = named.filter(member="child")
    parents = named.filter(pl.col("member").is_in(["mother", "father"])).select(
        "family_id", "member", "last", "origin")
    wide = kids.join(parents.filter(member="mother"), on="family_id", suffix="_mother").join(
        parents.filter(member="father"), on="family_id", how="left", suffix="_father")
    assert wide.height == kids.height
    from_parent = (pl.col("last") == pl.col("last_mother")) | (pl.col("last") == pl.col("last_father"))
    assert wide.filter(origin="dk").select(from_parent.all()).item()
    # elsewhere a daughter may carry the feminine form (Kowalska of Kowalski)
    assert wide.filter(pl.col("origin") != "dk").select(from_parent.mean()).item() > 0.95
    assert (wide["origin"] == wide["origin_mother"]).all()
    # siblings carry one surname
    per_family = kids.group_by("family_id").agg(pl.col("last").n_unique())
    assert (per_family["last"] == 1).mean() > 0.95  # type: ignore[operator]
    known = wide.filter(pl.col("last_father").is_not_null() & (pl.col("last_father") != pl.col("last_mother")))
    fathers = (known["last"] == known["last_father"]).mean()
    assert 0.6 < fathers < 0.8  # type: ignore[operator]


def test_names_deterministic_for_a_seed(tmp_path: Path) -> None:
    frames = []
    for name, seed in (("a", 9), ("b", 9), ("c", 10)):
        synth(tmp_path / name, scale=0.002, seed=seed, week=WEEK, catalogue=_catalogue())
        frames.append(pl.read_parquet(tmp_path / name / "population.parquet"))
    assert frames[0].equals(frames[1])
    assert not frames[0].select("given_name", "surname").equals(frames[2].select("given_name", "surname"))


def test_output_identical_whatever_the_chunk_size(tmp_path: Path) -> None:
    synth(tmp_path / "big", scale=0.002, seed=4, week=WEEK, catalogue=_catalogue())
    synth(tmp_path / "small", scale=0.002, seed=4, week=WEEK, catalogue=_catalogue(), chunk_rows=997)
    files = sorted(p.relative_to(tmp_path / "big") for p in (tmp_path / "big").rglob("*.parquet"))
    assert len(files) == 24 + 2 + 4
    for rel in files:
        assert pl.read_parquet(tmp_path / "big" / rel).equals(pl.read_parquet(tmp_path / "small" / rel)), rel
    with pytest.raises(UsageError, match="chunk_rows"):
        synth(tmp_path / "x", scale=0.001, week=WEEK, catalogue=_catalogue(), chunk_rows=0)


def test_cli_scale_defaults_to_a_small_denmark() -> None:
    from click.testing import CliRunner

    from socialsearch.cli import cli

    result = CliRunner().invoke(cli, ["synth", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "[default: 0.01;" in text or "[default: 0.01]" in text
    assert "1.0 is national" in text


def test_cpr_numbers_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    import socialsearch.synthetic._people as synthetic

    rng = np.random.default_rng(5)
    births = rng.integers(-40_000, 20_000, size=5_000)
    births[:2_000] = 12_345  # many people on one date
    male = rng.random(5_000) < 0.5
    whole = _cpr_numbers(births, male, np.random.default_rng(1))
    monkeypatch.setattr(synthetic, "_CPR_BLOCK", 7)
    blocked = _cpr_numbers(births, male, np.random.default_rng(1))
    assert np.array_equal(whole, blocked)
    assert np.unique(whole).shape[0] == whole.shape[0]


def test_the_frozen_faker_name_lists_are_fakers_own() -> None:
    """synth reads Faker's lists from the package's data; they are exactly the recorded version's."""
    faker = pytest.importorskip("faker")
    import importlib.util
    import json

    from socialsearch.synthetic import _names

    recorded = json.loads(_names._FAKER_FILE.read_text(encoding="utf-8"))
    if recorded["faker_version"] != faker.VERSION:
        pytest.skip(f"Faker {faker.VERSION} installed; the lists are frozen from {recorded['faker_version']}")
    spec = importlib.util.spec_from_file_location(
        "freeze_faker_names", Path(__file__).resolve().parent.parent / "tools" / "freeze_faker_names.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.frozen(tool.locales(_names._NAMES_FILE)) == recorded


def test_synth_does_not_import_faker() -> None:
    """Faker is not a runtime dependency: the name model runs from the frozen lists alone."""
    import subprocess
    import sys

    code = ("import sys, socialsearch.synthetic._names as n; n.name_tables(); "
            "sys.exit(1 if any(m == 'faker' or m.startswith('faker.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
