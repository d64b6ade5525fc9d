"""The native validation kernels (``rust/validate.rs``) against their Polars references.

``cpr_numbers`` must give :func:`socialsearch.identifiers.cpr_number`'s answer for every value it
decides (ten ASCII digits) and leave every other value to it; ``untrimmed`` must count exactly
the values that ``str.strip_chars()`` changes or leaves empty. Both are checked on arbitrary
strings: ASCII, fullwidth and other Unicode digits, dashes, white space of every kind, empty
values and nulls.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialsearch.crypto import _native
from socialsearch.identifiers import cpr_number

# digits of several scripts, the dashes a word processor writes, white space of every kind
_DIGITS = "0123456789０１２３４٠١٢٣۴९३"
_DASHES = "-\u2010\u2011\u2012\u2013\u2212"
_SPACES = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000\u200b\ufeff"
_OTHER = "aZæø+./:"

_chars = st.sampled_from(_DIGITS + _DASHES + _SPACES + _OTHER)
_any_text = st.text(_chars, max_size=14) | st.text(max_size=14)
_ascii10 = st.text(st.sampled_from("0123456789"), min_size=10, max_size=10)
_near_cpr = st.builds(lambda pad, a, dash, b, tail: pad + a + dash + b + tail,
                      st.sampled_from(["", " ", "\xa0", "\t"]),
                      st.text(st.sampled_from("0123456789"), min_size=6, max_size=6),
                      st.sampled_from(["", *_DASHES, "--", " "]),
                      st.text(st.sampled_from("0123456789"), min_size=4, max_size=4),
                      st.sampled_from(["", " ", "\u3000", "0"]))
_values = st.lists(st.none() | _ascii10 | _near_cpr | _any_text, max_size=40)


def _reference(values: list[str | None]) -> list[int | None]:
    frame = pl.DataFrame({"c": values}, schema={"c": pl.String})
    return frame.select(cpr_number(pl.col("c"))).to_series().to_list()


def _native_numbers(values: list[str | None]) -> tuple[list[int | None], list[int]]:
    numbers, others = _native.cpr_numbers(pl.Series(values, dtype=pl.String))
    return pl.Series(numbers).to_list(), pl.Series(others).to_list()


@given(_values)
def test_cpr_numbers_agree_with_the_reference(values: list[str | None]) -> None:
    numbers, others = _native_numbers(values)
    expected = _reference(values)
    ten = [v is not None and len(v.encode()) == 10 and v.isascii() and v.isdigit() for v in values]
    assert others == [i for i, v in enumerate(values) if v is not None and not ten[i]]  # left to the rule
    assert numbers == [want if is_ten else None for want, is_ten in zip(expected, ten, strict=True)]


@given(_values)
def test_the_readers_cpr_number_is_the_references(values: list[str | None]) -> None:
    """What ``read_raw`` computes (the kernel, then the general rule for the rest)."""
    from socialsearch.station import extracts

    series = pl.Series("c", values, dtype=pl.String)
    assert extracts._cpr_numbers(series).to_list() == _reference(values)


def test_cpr_numbers_on_a_chunked_column_keep_their_rows() -> None:
    parts = [pl.Series(["0101901234", None]), pl.Series(["3102901234", "010190-1234"]), pl.Series(["2902004000"])]
    series = pl.concat(parts, rechunk=False)
    assert series.n_chunks() == 3
    numbers, others = _native.cpr_numbers(series)
    assert pl.Series(numbers).to_list() == [101901234, None, None, None, 2902004000]
    assert pl.Series(others).to_list() == [3]


def test_cpr_numbers_refuse_a_column_of_numbers() -> None:
    with pytest.raises(ValueError, match="string or binary"):
        _native.cpr_numbers(pl.Series([101901234]))


@given(st.lists(st.none() | _any_text | st.text(st.sampled_from(_SPACES + "ab"), max_size=4), max_size=40))
def test_untrimmed_counts_what_strip_chars_changes(values: list[str | None]) -> None:
    series = pl.Series(values, dtype=pl.String)
    stripped = series.str.strip_chars()
    expected = ((stripped != series) | (stripped.str.len_bytes() == 0)).fill_null(False).sum()
    assert _native.untrimmed(series) == expected


def test_untrimmed_on_a_clean_column_is_zero() -> None:
    assert _native.untrimmed(pl.Series(["Anne", "Søren", "Æble", None])) == 0
    assert _native.untrimmed(pl.Series(["Anne ", "\u3000Søren", "", None])) == 3

