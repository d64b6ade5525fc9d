"""CPR numbers: normalisation, status, birth date, age, sex (expected values worked out by hand)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.contract import age_on
from socialsearch.identifiers import (
    birth_date,
    cpr_status,
    is_valid_cpr,
    normalise_cpr,
    sex,
)


def _norm(values: list[str | None]) -> list[str | None]:
    return pl.DataFrame({"c": values}, schema={"c": pl.String}).select(normalise_cpr("c"))["c"].to_list()


def _status(values: list[str | None]) -> list[str]:
    return pl.DataFrame({"c": values}, schema={"c": pl.String}).select(cpr_status("c"))["c"].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("010190-1234", "0101901234"),
        ("0101901234", "0101901234"),
        ("  0101901234\t", "0101901234"),
        ("\u00a0010190-1234\u3000", "0101901234"),  # NBSP / ideographic space: NFKC + strip
        ("010190\uff0d1234", "0101901234"),  # fullwidth hyphen-minus: NFKC → "-"
        ("010190\u20131234", "0101901234"),  # en dash from a word processor
        ("290200-4000", "2902004000"),  # 29 Feb 2000 (7th digit 4, YY 00 → 2000, a leap year)
        ("290296-1000", "2902961000"),  # 29 Feb 1996
    ],
)
def test_normalise_accepts(text: str, expected: str) -> None:
    assert _norm([text]) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "３１１２９９１２３４",  # fullwidth digits: NFKC would make them ASCII; must stay invalid
        "٠١٠١٩٠١٢٣٤",  # Arabic-Indic digits
        "010190123\uff14",  # one fullwidth digit
        "0101901234\u00b2",  # superscript two
        "290200-0000",  # 7th digit 0 → 1900, not a leap year
        "290201-4000",  # 29 Feb 2001
        "320190-1234",  # day 32
        "011390-1234",  # month 13
        "000190-1234",  # day 0
        "610190-1234",  # replacement number (day + 60): invalid by design
        "01019O1234",  # letter O
        "010190 1234",  # inner space is not an accepted form
        "010190--1234",
        "01019-01234",
        "101901234",
        "01019012345",
    ],
)
def test_normalise_rejects(text: str) -> None:
    assert _norm([text]) == [None]
    assert _status([text]) == ["invalid"]
    assert is_valid_cpr(text) is False


def test_status_missing_and_null() -> None:
    assert _status([None, "", "   ", "\u00a0", "0101901234", "x"]) == [
        "missing", "missing", "missing", "missing", "valid", "invalid",
    ]
    assert _norm([None, ""]) == [None, None]


@pytest.mark.parametrize(
    ("cpr", "born"),
    [
        # 7th digit 0-3: always 1900s
        ("0101000000", date(1900, 1, 1)),
        ("3112993999", date(1999, 12, 31)),
        # 7th digit 4 and 9: 2000-2036, 1937-1999
        ("0101364000", date(2036, 1, 1)),
        ("0101374000", date(1937, 1, 1)),
        ("0101579000", date(1957, 1, 1)),
        ("0101589000", date(1958, 1, 1)),
        # 7th digit 5-8: 2000-2036, 2037-2057, 1858-1899
        ("0101005000", date(2000, 1, 1)),
        ("0101378000", date(2037, 1, 1)),
        ("0101576000", date(2057, 1, 1)),
        ("0101587000", date(1858, 1, 1)),
        ("3112998000", date(1899, 12, 31)),
    ],
)
def test_century_table(cpr: str, born: date) -> None:
    out = pl.DataFrame({"c": [cpr]}).select(birth_date(normalise_cpr("c")))["c"].to_list()
    assert out == [born]


def test_birth_date_null_stays_null() -> None:
    frame = pl.DataFrame({"c": [None]}, schema={"c": pl.String})
    assert frame.select(birth_date("c"))["c"].to_list() == [None]


def test_sex() -> None:
    frame = pl.DataFrame({"c": ["0101901230", "0101901231", "0101901238", "0101901239", None]})
    assert frame.select(sex("c"))["c"].to_list() == ["female", "male", "female", "male", None]


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2010, 6, 15), date(2026, 6, 14), 15),  # day before the birthday
        (date(2010, 6, 15), date(2026, 6, 15), 16),  # on the birthday
        (date(2010, 6, 15), date(2026, 6, 16), 16),
        (date(2008, 2, 29), date(2026, 2, 28), 17),  # leap-day child, common year: not yet
        (date(2008, 2, 29), date(2026, 3, 1), 18),  # ... completes the year on 1 March
        (date(2008, 2, 29), date(2028, 2, 29), 20),  # leap year: on the day
        (date(2008, 2, 29), date(2028, 2, 28), 19),
        (date(2026, 1, 1), date(2026, 1, 1), 0),
        (date(2008, 12, 31), date(2026, 1, 1), 17),
    ],
)
def test_age_on(born: date, on: date, age: int) -> None:
    frame = pl.DataFrame({"b": [born]})
    out = frame.select(age_on("b", on))
    assert out.schema["b"] == pl.Int64
    assert out["b"].to_list() == [age]


# ----------------------------------------------------------------------------- properties
_D7_CENTURIES = {d: [(0, 99, 1900)] for d in range(4)} | {
    4: [(0, 36, 2000), (37, 99, 1900)],
    9: [(0, 36, 2000), (37, 99, 1900)],
} | {d: [(0, 36, 2000), (37, 57, 2000), (58, 99, 1800)] for d in range(5, 9)}


@st.composite
def valid_cprs(draw: st.DrawFn) -> tuple[str, date]:
    d7 = draw(st.integers(0, 9))
    lo, hi, base = draw(st.sampled_from(_D7_CENTURIES[d7]))
    year = base + draw(st.integers(lo, hi))
    day = draw(st.dates(date(year, 1, 1), date(year, 12, 31)))
    serial = f"{d7}{draw(st.integers(0, 999)):03d}"
    return f"{day:%d%m}{year % 100:02d}{serial}", day


@settings(max_examples=40, deadline=None)
@given(st.lists(valid_cprs(), min_size=1, max_size=50))
def test_valid_numbers_round_trip(cases: list[tuple[str, date]]) -> None:
    cprs = [c for c, _ in cases]
    dashed = [f"{c[:6]}-{c[6:]}" for c in cprs]
    frame = pl.DataFrame({"c": cprs, "d": dashed}).with_columns(
        n=normalise_cpr("c"), m=normalise_cpr("d")
    )
    assert frame["n"].to_list() == cprs
    assert frame["m"].to_list() == cprs  # dashed == undashed
    assert frame.select(birth_date("n"))["n"].to_list() == [b for _, b in cases]
    assert is_valid_cpr(cprs[0]) and is_valid_cpr(dashed[0])


_NON_ASCII_DIGITS = st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: c not in "0123456789")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(valid_cprs(), st.integers(0, 9), _NON_ASCII_DIGITS), min_size=1, max_size=50))
def test_any_non_ascii_digit_is_invalid(cases: list[tuple[tuple[str, date], int, str]]) -> None:
    forged = [cpr[:pos] + digit + cpr[pos + 1 :] for (cpr, _), pos, digit in cases]
    assert _norm(forged) == [None] * len(forged)
    assert _status(forged) == ["invalid"] * len(forged)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1900, 1999), st.integers(1, 12), st.integers(1, 99)), min_size=1, max_size=50))
def test_impossible_dates_invalid(cases: list[tuple[int, int, int]]) -> None:
    cprs, expected = [], []
    for year, month, day in cases:
        first = date(year, month, 1)
        days_in_month = ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - first).days
        cprs.append(f"{day:02d}{month:02d}{year % 100:02d}2000")  # 7th digit 2 → 1900s
        expected.append(cprs[-1] if day <= days_in_month else None)
    assert _norm(cprs) == expected


def test_input_is_not_modified() -> None:
    frame = pl.DataFrame({"c": ["３１１２９９１２３４", "010190\u00a0-1234", "0101901234"]})
    out = frame.with_columns(n=normalise_cpr("c"), s=cpr_status("c"))
    assert out["c"].to_list() == ["３１１２９９１２３４", "010190\u00a0-1234", "0101901234"]
    assert out["n"].to_list() == [None, None, "0101901234"]
    assert out["s"].to_list() == ["invalid", "invalid", "valid"]


def test_lazy_and_composed() -> None:
    frame = pl.LazyFrame({"c": ["290200-4000", None]})
    out = frame.select(
        birth_date(normalise_cpr("c")).alias("b"),
        sex(normalise_cpr(pl.col("c"))).alias("s"),
        age_on(birth_date(normalise_cpr("c")), date(2026, 2, 28)).alias("a"),
    ).collect()
    assert out.to_dicts() == [
        {"b": date(2000, 2, 29), "s": "female", "a": 25},
        {"b": None, "s": None, "a": None},
    ]


def test_every_day_of_the_table_against_datetime() -> None:
    """The integer date arithmetic, checked against datetime for 1858-2057 and impossible days."""
    cprs, expected = [], []
    for year in range(1858, 2058):
        d7 = 0 if 1900 <= year <= 1999 else (4 if 2000 <= year <= 2036 else 5)
        for month in range(0, 14):
            for day in (0, 1, 28, 29, 30, 31, 32):
                cprs.append(f"{day:02d}{month:02d}{year % 100:02d}{d7}000")
                try:
                    expected.append(date(year, month, day))
                except ValueError:
                    expected.append(None)
    frame = pl.DataFrame({"c": cprs})
    assert frame.select(birth_date(normalise_cpr("c")))["c"].to_list() == expected


_CPR_LIKE = st.text(alphabet=st.sampled_from("0123456789+- \t._e\u00a0\u2013\uff10\u0661"), min_size=8, max_size=12)


@given(st.lists(st.one_of(_CPR_LIKE, st.from_regex(r"[0-3][0-9][01][0-9]{7}", fullmatch=True), st.none()),
                max_size=40))
@settings(max_examples=300, deadline=None)
def test_the_fast_path_gives_what_the_general_rule_gives(values: list[str | None]) -> None:
    """Ten ASCII digits skip NFKC and the regular expressions; the result must not change."""
    from socialsearch.identifiers import _normalise_full, cpr_number

    series = pl.Series("c", values, dtype=pl.String)
    general = _normalise_full(series).to_list()
    assert _norm(values) == general
    numbers = series.to_frame().select(cpr_number("c"))["c"].to_list()
    assert numbers == [None if g is None else int(g) for g in general]


def test_slices_give_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long columns are validated in slices (bounded memory); the values must not change."""
    import socialsearch.identifiers as identifiers

    values = ["0101901234", " 010190-1234", "x", None, "320190-1234", "290200-4000", "2902004000"] * 5
    frame = pl.DataFrame({"c": values}, schema={"c": pl.String})
    whole = frame.select(normalise_cpr("c").alias("n"), identifiers.cpr_number("c").alias("i"))
    monkeypatch.setattr(identifiers, "SLICE_ROWS", 4)
    sliced = frame.select(normalise_cpr("c").alias("n"), identifiers.cpr_number("c").alias("i"))
    assert sliced.equals(whole)
    kept = frame["c"]
    assert identifiers.in_slices(kept, lambda s: s) is kept


def test_the_date_lookup_equals_the_date_arithmetic_on_every_combination() -> None:
    """``_has_date`` (a (day, month) table, the year only for 29 February) decides as the full
    century-and-leap-year arithmetic does, on every day 0-39, month 0-13, year and century digit."""
    import numpy as np

    from socialsearch import identifiers

    day, month, year, century = np.meshgrid(np.arange(40), np.arange(14), np.arange(100), np.arange(10),
                                            indexing="ij")
    numbers = pl.Series((day * 100_000_000 + month * 1_000_000 + year * 10_000 + century * 1000 + 123)
                        .ravel().astype(np.int64))
    numbers = pl.concat([numbers, pl.Series([None, -1, 99_999_999_999], dtype=pl.Int64)])
    expected = identifiers._days_from_number(numbers).is_not_null().to_numpy()
    assert (identifiers._has_date(numbers) == expected).all()
    assert expected.sum() > 0 and not expected.all()
