"""The native validation kernels (``rust/validate.rs``) against their Polars references.

``cpr_numbers`` must give :func:`socialsearch.identifiers.cpr_number`'s answer for every value it
decides (ten ASCII digits) and leave every other value to it; ``untrimmed`` must count exactly
the values that ``str.strip_chars()`` changes or leaves empty. Both are checked on arbitrary
strings: ASCII, fullwidth and other Unicode digits, dashes, white space of every kind, empty
values and nulls.
"""

from __future__ import annotations

import numpy as np
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



_dashed = st.builds(lambda a, dash, b: a + dash + b,
                    st.text(st.sampled_from("0123456789"), min_size=5, max_size=7),
                    st.sampled_from(["-", "--", *_DASHES, " ", ""]),
                    st.text(st.sampled_from("0123456789"), min_size=3, max_size=5))


def _ascii_dashed(value: str) -> bool:
    """``DDMMYY-SSSS`` with an ASCII dash: what the kernel decides when asked to."""
    head, dash, tail = value[:6], value[6:7], value[7:]
    return (len(value) == 11 and dash == "-" and all(c in "0123456789" for c in head + tail))


@given(st.lists(st.none() | _ascii10 | _dashed | _near_cpr | _any_text, max_size=40))
def test_dashed_cpr_numbers_agree_with_the_reference(values: list[str | None]) -> None:
    numbers, others = _native.cpr_numbers(pl.Series(values, dtype=pl.String), dashed=True)
    expected = _reference(values)
    decided = [v is not None and ((len(v) == 10 and all(c in "0123456789" for c in v)) or _ascii_dashed(v))
               for v in values]
    assert pl.Series(others).to_list() == [i for i, v in enumerate(values) if v is not None and not decided[i]]
    assert pl.Series(numbers).to_list() == [want if ok else None for want, ok in zip(expected, decided, strict=True)]


def test_dashed_is_off_unless_asked() -> None:
    values = pl.Series(["010190-1234", "0101901234"])
    assert pl.Series(_native.cpr_numbers(values)[1]).to_list() == [0]
    assert pl.Series(_native.cpr_numbers(values, dashed=True)[0]).to_list() == [101901234, 101901234]


_u64 = st.integers(0, (1 << 64) - 1)


@given(st.lists(_u64, unique=True, max_size=60), st.lists(_u64, max_size=60), st.data())
def test_key_positions_agree_with_a_dictionary(keys: list[int], probes: list[int], data: st.DataObject) -> None:
    probes = probes + data.draw(st.lists(st.sampled_from(keys), max_size=20) if keys else st.just([]))
    found = np.frombuffer(_native.key_positions(np.array(keys, dtype=np.uint64),
                                                np.array(probes, dtype=np.uint64)), dtype="<u4")
    where = {key: i for i, key in enumerate(keys)}
    assert found.tolist() == [where.get(p, (1 << 32) - 1) for p in probes]


def test_key_positions_refuse_repeated_keys() -> None:
    with pytest.raises(ValueError, match="not distinct"):
        _native.key_positions(np.array([3, 4, 3], dtype=np.uint64), np.array([3], dtype=np.uint64))
