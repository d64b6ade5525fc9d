"""CPR numbers as vectorised Polars expressions: normalise, classify, birth date, age, sex.

A CPR number is ``DDMMYY-SSSS``: birth date, then a serial number whose first digit (the 7th
digit) fixes the century and whose last digit gives the sex (even: female). The rules here
follow the CPR office's century table (``shared/reference/README.md``)::

    7th digit   YY 00-36     YY 37-57     YY 58-99
    0-3         1900-1999    1900-1999    1900-1999
    4, 9        2000-2036    1937-1957    1958-1999
    5-8         2000-2036    2037-2057    1858-1899

Notes
-----
* No modulus-11 check: numbers without it have been issued since 1 October 2007.
* Replacement numbers (*erstatningspersonnumre*, day + 60) are **invalid** here: they do not
  identify a person in the CPR register, so they cannot be matched across extracts; such
  people are resolved at the station (:mod:`socialsearch.station.resolution`) like anybody without a valid number.
* Input is NFKC-normalised (so a non-breaking space or a fullwidth hyphen is harmless), but
  the digits themselves must be ASCII ``0-9``: a fullwidth ``０`` or an Arabic-Indic ``٠``
  makes the value invalid rather than being silently converted, because such a value did not
  come from a register and is more likely a corrupted or forged field.
* A date in the future of the run is still a valid date (the table allows 2037-2057); the
  module never depends on today's date.

Examples
--------
>>> import polars as pl
>>> df = pl.DataFrame({"cpr": ["010190-1234", "0101901234", "310290-1234", " ", None]})
>>> df.select(normalise_cpr(pl.col("cpr")), cpr_status(pl.col("cpr")).alias("status"))["status"].to_list()
['valid', 'valid', 'invalid', 'missing', 'missing']
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

__all__ = [
    "SLICE_ROWS",
    "birth_date",
    "birth_date_of_number",
    "cpr_number",
    "cpr_status",
    "in_slices",
    "is_valid_cpr",
    "normalise_cpr",
    "sex",
]

_IntoExpr = pl.Expr | str

# Any numeric character other than ASCII 0-9 (fullwidth, Arabic-Indic, superscript, circled
# ...): checked on the raw text, before NFKC could turn it into an ASCII digit.
_NON_ASCII_NUMERIC = r"[\p{N}&&[^0-9]]"
# ASCII hyphen-minus, plus the hyphens and dashes word processors put in its place.
_DASHES = "\u2010\u2011\u2012\u2013\u2212"


def _col(expr: _IntoExpr) -> pl.Expr:
    return pl.col(expr) if isinstance(expr, str) else expr


# Each public function applies a whole-Series function through ``map_batches`` (vectorised,
# elementwise, so streaming can split it): inside, every intermediate is computed once. Built
# as one nested expression instead, Polars re-evaluated the shared sub-expressions (NFKC,
# regex) once per reference, which made ``normalise_cpr`` ~20x slower.
#: rows per slice: the temporaries of a whole-Series function stay a few tens of MB at any scale
SLICE_ROWS = 1 << 21


def in_slices(series: pl.Series, fn: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """``fn`` applied to slices of :data:`SLICE_ROWS` rows and concatenated (for elementwise ``fn``).

    The same values as ``fn(series)``; the intermediates of ``fn`` exist for one slice at a time,
    which bounds the memory of validating 60 M CPR numbers. When ``fn`` returns every slice
    itself (nothing to change), ``series`` itself is returned, not a copy.
    """
    if series.len() <= SLICE_ROWS:
        return fn(series)
    slices = [series.slice(start, SLICE_ROWS) for start in range(0, series.len(), SLICE_ROWS)]
    parts = [fn(part) for part in slices]
    if all(out is part for out, part in zip(parts, slices, strict=True)):
        return series
    return pl.concat(parts, rechunk=True)


def _apply(expr: _IntoExpr, fn: Callable[[pl.Series], pl.Series], dtype: pl.DataType) -> pl.Expr:
    return _col(expr).map_batches(lambda s: in_slices(s, fn), return_dtype=dtype, is_elementwise=True)


def _on(series: pl.Series, expr: pl.Expr) -> pl.Series:
    """Evaluate ``expr`` (written over ``pl.col("x")``) on ``series``, keeping its name."""
    return series.rename("x").to_frame().select(expr).to_series().rename(series.name)


_X = pl.col("x")


# Days before each month (non-leap) and days in each month, indexed by month 1-12 (0: no month).
_DAYS_BEFORE = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], dtype=np.int32)
_DAYS_IN = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)


def _days_from_number(number: pl.Series) -> pl.Series:
    """Days since 1970-01-01 (Int32) of CPR numbers as integers ``DDMMYYSSSS``; null when the
    date does not exist in the century the 7th digit gives.

    Whole-array integer arithmetic (NumPy, Int32 after the digits are split): the century by
    the table in the module docstring, the days in the month with 29 February in leap years,
    and the days since 1970 by the Gregorian leap rule. No Python loop, no text.
    """
    present = number.is_not_null().to_numpy()
    n = number.cast(pl.Int64).fill_null(0).to_numpy()
    day = (n // 100_000_000).astype(np.int32)
    month = (n // 1_000_000 % 100).astype(np.int32)
    yy = (n // 10_000 % 100).astype(np.int32)
    d7 = (n // 1000 % 10).astype(np.int32)
    del n
    late = (d7 >= 5) & (d7 <= 8)
    year = 1900 + yy
    year += 100 * ((((d7 == 4) | (d7 == 9)) & (yy <= 36)) | (late & (yy <= 57)))
    year -= 100 * (late & (yy > 57))
    del yy, d7, late
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    month = np.where(month_ok, month, 0)
    ok = present & month_ok & (day >= 1) & (day <= _DAYS_IN[month] + (leap & (month == 2)))
    days = (365 * (year - 1970) + (year - 1969) // 4 - (year - 1901) // 100 + (year - 1601) // 400
            + _DAYS_BEFORE[month] + (leap & (month > 2)) + day - 1).astype(np.int32)
    return pl.Series(number.name, days).to_frame("x").select(
        pl.when(pl.lit(pl.Series(ok))).then(pl.col("x"))).to_series().rename(number.name)


# Whether day DD of month MM exists in some year, indexed by DDMM (0..9999); 29 February is
# decided apart, by the year the century digit gives.
_DDMM_EXISTS = np.zeros(10_000, dtype=bool)
for _month in range(1, 13):  # twelve months, at import
    _DDMM_EXISTS[np.arange(1, _DAYS_IN[_month] + 1) * 100 + _month] = True
_FEB_29 = 2902
_DDMM_EXISTS[_FEB_29] = True  # in a leap year


def _has_date(number: pl.Series) -> np.ndarray:
    """Whether each CPR number as an integer ``DDMMYYSSSS`` has an existing birth date (False for null).

    The same answer as ``_days_from_number(number).is_not_null()`` at a fraction of the cost:
    a table lookup of (day, month); only 29 February needs the year, and only those rows get it.
    """
    present = number.is_not_null().to_numpy()
    n = number.cast(pl.Int64).fill_null(0).to_numpy()
    ddmm = n // 1_000_000
    ok = present & (ddmm >= 0) & (ddmm < 10_000)
    ok &= _DDMM_EXISTS[np.where(ok, ddmm, 0)]
    leap_day = np.flatnonzero(ok & (ddmm == _FEB_29))
    if len(leap_day):
        ok[leap_day] = _days_from_number(pl.Series(n[leap_day])).is_not_null().to_numpy()
    return ok


def _date_series(digits: pl.Series) -> pl.Series:
    """Birth dates of 10-digit strings by the century table; null when the date does not exist."""
    number = _on(digits.cast(pl.String), pl.when(_X.str.len_bytes() == 10).then(_X.cast(pl.Int64, strict=False)))
    return _days_from_number(number).cast(pl.Date).rename(digits.name)


def _nfkc(raw: pl.Series) -> pl.Series:
    """NFKC, applied only to the values that are not pure ASCII (NFKC leaves ASCII unchanged)."""
    idx = _on(raw, _X.str.contains(r"[^\x00-\x7f]")).arg_true()
    if len(idx) == 0:
        return raw
    return raw.clone().scatter(idx, raw.gather(idx).str.normalize("NFKC"))  # scatter is in place


def _ten_ascii_digits(raw: pl.Series) -> pl.Series:
    """True where the text is exactly ten ASCII digits (the common, already-normal case).

    Cheaper than a regular expression: ten bytes that parse as an unsigned integer and do not
    start with ``+`` are ten ASCII digits (a multi-byte digit makes the text longer than ten
    bytes; spaces, signs other than ``+`` and other characters do not parse).
    """
    return _on(raw, (_X.str.len_bytes() == 10) & _X.cast(pl.UInt64, strict=False).is_not_null()
               & ~_X.str.starts_with("+")).fill_null(False)


def _normalise_full(raw: pl.Series) -> pl.Series:
    """The general rule (NFKC, strip, one accepted dash, ASCII digits, an existing date)."""
    text = _nfkc(raw).str.strip_chars()
    # DDMMYYSSSS stays; DDMMYY-SSSS (any accepted dash) loses its dash
    dashed = (text.str.len_chars() == 11) & text.str.slice(6, 1).is_in(["-", *_DASHES])
    joined = _on(text, pl.when(pl.lit(dashed)).then(_X.str.slice(0, 6) + _X.str.slice(7)).otherwise(_X))
    ok = _on(joined, _X.str.contains(r"^[0-9]{10}$")) & ~_on(raw, _X.str.contains(_NON_ASCII_NUMERIC))
    digits = _on(joined, pl.when(pl.lit(ok)).then(_X))
    return _on(digits, pl.when(pl.lit(_date_series(digits).is_not_null())).then(_X))


def _normalise_series(series: pl.Series) -> pl.Series:
    """:func:`normalise_cpr` on a Series: ten ASCII digits take an integer fast path (no NFKC,
    no regular expression); only the other values go through :func:`_normalise_full`."""
    raw = series.cast(pl.String)
    fast = _ten_ascii_digits(raw)
    number = _on(raw, pl.when(pl.lit(fast)).then(_X.cast(pl.Int64, strict=False)))
    out = _on(raw, pl.when(pl.lit(fast & pl.Series(_has_date(number)))).then(_X))
    slow = (~fast & raw.is_not_null()).arg_true()
    if len(slow):
        out = out.scatter(slow, _normalise_full(raw.gather(slow)))
    return out.rename(series.name)


def _number_series(series: pl.Series) -> pl.Series:
    """:func:`cpr_number` on a Series (no text column is built: integers throughout)."""
    raw = series.cast(pl.String)
    fast = _ten_ascii_digits(raw)
    number = _on(raw, pl.when(pl.lit(fast)).then(_X.cast(pl.Int64, strict=False)))
    slow = (~fast & raw.is_not_null()).arg_true()
    if len(slow):
        number = number.scatter(slow, _normalise_full(raw.gather(slow)).cast(pl.Int64))
    return _on(number, pl.when(pl.lit(pl.Series(_has_date(number)))).then(_X)).rename(series.name)


def _status_series(series: pl.Series) -> pl.Series:
    raw = series.cast(pl.String)
    blank = _on(raw, _X.is_null() | (_X.str.normalize("NFKC").str.strip_chars() == ""))
    valid = _normalise_series(raw).is_not_null()
    frame = pl.DataFrame({"blank": blank, "valid": valid})
    return frame.select(
        pl.when(pl.col("blank")).then(pl.lit("missing"))
        .when(pl.col("valid")).then(pl.lit("valid"))
        .otherwise(pl.lit("invalid"))
    ).to_series().rename(series.name)


def normalise_cpr(expr: _IntoExpr) -> pl.Expr:
    """The CPR number as 10 ASCII digits ``DDMMYYSSSS``, or null when missing or invalid.

    Accepts ``DDMMYYSSSS`` and ``DDMMYY-SSSS`` with surrounding whitespace; the date must
    exist in the century given by the 7th digit.

    Examples
    --------
    >>> import polars as pl
    >>> pl.Series(["010190-1234", "３１１２９９１２３４", "290200-4000"]).to_frame("c").select(
    ...     normalise_cpr("c"))["c"].to_list()
    ['0101901234', None, '2902004000']
    """
    return _apply(expr, _normalise_series, pl.String())


def cpr_number(expr: _IntoExpr) -> pl.Expr:
    """The normalised CPR number as an ``Int64`` (``DDMMYYSSSS`` read as a number), or null.

    The same values as :func:`normalise_cpr` (``cpr_number(x) == normalise_cpr(x).cast(Int64)``)
    in an eighth of the memory of text: joins and de-duplication on millions of CPR numbers
    use it, and ``.cast(pl.String).str.zfill(10)`` gives the normalised text back.

    Examples
    --------
    >>> import polars as pl
    >>> pl.Series(["010190-1234", "320190-1234"]).to_frame("c").select(cpr_number("c"))["c"].to_list()
    [101901234, None]
    """
    return _apply(expr, _number_series, pl.Int64())


def cpr_status(expr: _IntoExpr) -> pl.Expr:
    """``"valid"``, ``"invalid"`` or ``"missing"`` (null, empty or only whitespace)."""
    return _apply(expr, _status_series, pl.String())


def birth_date(normalised: _IntoExpr) -> pl.Expr:
    """Birth date (``Date``) of a normalised CPR number (see :func:`normalise_cpr`); null stays null."""
    return _apply(normalised, _date_series, pl.Date())


def birth_date_of_number(number: _IntoExpr) -> pl.Expr:
    """Birth date (``Date``) of a :func:`cpr_number`; null stays null."""
    return _apply(number, lambda s: _days_from_number(s).cast(pl.Date).rename(s.name), pl.Date())


def sex(normalised: _IntoExpr) -> pl.Expr:
    """``"female"`` (even last digit) or ``"male"`` of a normalised CPR number; null stays null."""
    last = _X.str.slice(9, 1).cast(pl.Int32, strict=False)
    rule = (
        pl.when(last.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(last % 2 == 0)
        .then(pl.lit("female"))
        .otherwise(pl.lit("male"))
    )
    return _apply(normalised, lambda s: _on(s.cast(pl.String), rule), pl.String())


def is_valid_cpr(text: str) -> bool:
    """Scalar check: would :func:`normalise_cpr` accept ``text``?

    >>> is_valid_cpr("010190-1234"), is_valid_cpr("320190-1234")
    (True, False)
    """
    frame = pl.DataFrame({"cpr": [text]}, schema={"cpr": pl.String})
    return bool(frame.select(normalise_cpr("cpr").is_not_null()).item())
