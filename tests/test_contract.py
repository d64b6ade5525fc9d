"""The data contract (socialsearch.contract), defined once and used everywhere."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialsearch import contract, hub_extract, synthetic
from socialsearch.contract import RAW_SCHEMA, TIME_ZONE, age_on, contains_cpr_like, to_local
from socialsearch.station import extracts


def test_every_module_uses_the_one_schema() -> None:
    assert synthetic.INPUT_SCHEMAS is RAW_SCHEMA
    assert hub_extract.HUB_SCHEMA is contract.HUB_SCHEMA
    for table, specs in extracts._RAW_SPECS.items():
        assert [s.name for s in specs] == list(RAW_SCHEMA[table]), table
        for spec in specs:
            assert extracts._DTYPES[spec.kind] == RAW_SCHEMA[table][spec.name], (table, spec.name)


@pytest.mark.parametrize("text", [
    "0101901234", "010190-1234", "010190 1234", "010190\u20131234", "01.01.90.1234", "01 01 90 12 34",
    "ring til 0101901234 i morgen", "sag0101901234", "cpr:010190-1234.", "9999999999",
])
def test_cpr_like_text_is_found_in_every_spelling(text: str) -> None:
    assert contains_cpr_like(text)


@pytest.mark.parametrize("text", [
    "Relevant", "uge 47, 2026", "mødt 17.11.2026 kl. 10.30", "tlf 12 34 56 78",
    "320190-1234",  # no such date, and not ten digits in a row
])
def test_ordinary_text_is_not_cpr_like(text: str) -> None:
    assert not contains_cpr_like(text)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)), st.integers(0, 3999),
       st.sampled_from(["", "-", " ", "–", "."]))
def test_any_valid_cpr_with_any_separator_is_found(born: date, serial: int, sep: str) -> None:
    text = f"{born:%d%m%y}{sep}{serial:04d}"
    assert contains_cpr_like(f"ref {text} ok")


def test_to_local_reads_naive_as_copenhagen_and_converts_others() -> None:
    frame = pl.DataFrame({"naive": [datetime(2026, 10, 25, 2, 30)],
                          "utc": [datetime(2026, 10, 25, 1, 30)]}).with_columns(
        pl.col("utc").dt.replace_time_zone("UTC"))
    out = frame.select(to_local(pl.col("naive"), frame.schema["naive"]).alias("a"),
                       to_local(pl.col("utc"), frame.schema["utc"]).alias("b"))
    assert out.schema["a"] == pl.Datetime("us", TIME_ZONE)
    # 02:30 on 25 October happens twice: the naive value is the first (summer time, +02:00)
    assert out["a"].dt.convert_time_zone("UTC").dt.hour().item() == 0
    assert out["b"].dt.hour().item() == 2


def test_age_on_completed_years() -> None:
    frame = pl.DataFrame({"b": [date(2008, 11, 22), date(2008, 11, 23), date(2008, 2, 29)]})
    assert frame.select(age_on("b", date(2026, 11, 22)))["b"].to_list() == [18, 17, 18]
