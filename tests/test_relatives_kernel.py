"""Tests of the native core's hashed row selection (``rows_in``) against Polars' ``is_in``, and
of socialsearch.station.resolution.relatives on CPR numbers (the native path) against the same
relations as text (Polars' path)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.crypto import _native
from socialsearch.station.resolution import relatives

numbers = st.lists(st.one_of(st.none(), st.integers(-3, 12), st.integers(-(2**63), 2**63 - 1)), max_size=60)


@given(numbers, numbers, st.integers(1, 7))
@settings(max_examples=150, deadline=None)
def test_rows_in_equals_polars_is_in(values: list[int | None], wanted: list[int | None], pieces: int) -> None:
    column = pl.Series("v", values, dtype=pl.Int64)
    size = -(-len(values) // pieces) if values else 1
    chunked = pl.concat([column.slice(at, size) for at in range(0, max(len(values), 1), size)], rechunk=False)
    want = pl.Series(wanted, dtype=pl.Int64)
    rows = np.frombuffer(_native.rows_in(chunked, want.drop_nulls().to_numpy()), np.uint32)
    expected = np.flatnonzero(column.is_in(want.implode()).fill_null(False).to_numpy())
    assert rows.tolist() == expected.tolist()


def test_rows_in_takes_only_int64_columns() -> None:
    with pytest.raises(ValueError, match="Int64"):
        _native.rows_in(pl.Series(["1", "2"]), np.array([1], np.int64))


pairs = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=40)


@given(pairs, st.lists(st.tuples(st.integers(0, 4), st.integers(0, 12)), min_size=1, max_size=12))
@settings(max_examples=120, deadline=None)
def test_relatives_of_numbers_equal_those_of_the_same_numbers_as_text(
        links: list[tuple[int, int]], on_events: list[tuple[int, int]]) -> None:
    rel = pl.DataFrame(links, schema={"child": pl.Int64, "adult": pl.Int64}, orient="row")
    co = pl.DataFrame(on_events, schema={"event": pl.Int64, "person": pl.Int64}, orient="row")
    as_numbers = relatives(co, rel)
    as_text = relatives(co.with_columns(pl.col("person").cast(pl.String)), rel.cast(pl.String))
    back = as_text.with_columns(pl.col("kin", "household").list.eval(pl.element().cast(pl.Int64)).list.sort())
    assert as_numbers.equals(back)  # the text's lists are in the order of the text
