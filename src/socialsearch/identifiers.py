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
  people go to the fuzzy fallback like anybody without a valid number.
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

from datetime import date

import polars as pl

__all__ = [
    "age_on",
    "birth_date",
    "cpr_status",
    "is_valid_cpr",
    "normalise_cpr",
    "sex",
]

IntoExpr = pl.Expr | str

# Any numeric character other than ASCII 0-9 (fullwidth, Arabic-Indic, superscript, circled
# ...): checked on the raw text, before NFKC could turn it into an ASCII digit.
_NON_ASCII_NUMERIC = r"[\p{N}&&[^0-9]]"
# ASCII hyphen-minus, plus the hyphens and dashes word processors put in its place.
_DASHES = "\u2010\u2011\u2012\u2013\u2212"
_SHAPE = rf"^([0-9]{{6}})[-{_DASHES}]?([0-9]{{4}})$"


def _col(expr: IntoExpr) -> pl.Expr:
    return pl.col(expr) if isinstance(expr, str) else expr


def _year(digits: pl.Expr) -> pl.Expr:
    """Four-digit birth year of a 10-digit string, by the century table."""
    yy = digits.str.slice(4, 2).cast(pl.Int32, strict=False)
    d7 = digits.str.slice(6, 1).cast(pl.Int32, strict=False)
    return (
        pl.when(d7 <= 3)
        .then(1900 + yy)
        .when(d7.is_in([4, 9]))
        .then(pl.when(yy <= 36).then(2000 + yy).otherwise(1900 + yy))
        .otherwise(pl.when(yy <= 57).then(2000 + yy).otherwise(1800 + yy))
    )


def _date_of(digits: pl.Expr) -> pl.Expr:
    """Birth date of a 10-digit string, or null when the date does not exist."""
    iso = pl.concat_str(
        [
            _year(digits).cast(pl.String).str.zfill(4),
            pl.lit("-"),
            digits.str.slice(2, 2),
            pl.lit("-"),
            digits.str.slice(0, 2),
        ]
    )
    return iso.str.to_date("%Y-%m-%d", strict=False)


def normalise_cpr(expr: IntoExpr) -> pl.Expr:
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
    raw = _col(expr).cast(pl.String)
    text = raw.str.normalize("NFKC").str.strip_chars()
    joined = text.str.replace(_SHAPE, "${1}${2}")
    shaped = joined.str.contains(r"^[0-9]{10}$") & ~raw.str.contains(_NON_ASCII_NUMERIC)
    digits = pl.when(shaped).then(joined).otherwise(pl.lit(None, dtype=pl.String))
    out = pl.when(_date_of(digits).is_not_null()).then(digits).otherwise(pl.lit(None, dtype=pl.String))
    return out.name.keep()


def cpr_status(expr: IntoExpr) -> pl.Expr:
    """``"valid"``, ``"invalid"`` or ``"missing"`` (null, empty or only whitespace)."""
    raw = _col(expr).cast(pl.String)
    blank = raw.is_null() | (raw.str.normalize("NFKC").str.strip_chars() == "")
    return (
        pl.when(blank)
        .then(pl.lit("missing"))
        .when(normalise_cpr(raw).is_not_null())
        .then(pl.lit("valid"))
        .otherwise(pl.lit("invalid"))
        .name.keep()
    )


def birth_date(normalised: IntoExpr) -> pl.Expr:
    """Birth date (``Date``) of a normalised CPR number (see :func:`normalise_cpr`); null stays null."""
    return _date_of(_col(normalised)).name.keep()


def age_on(birth_date_expr: IntoExpr, on: date) -> pl.Expr:
    """Completed years of age on ``on`` (``Int64``).

    A person born on 29 February completes a year on 1 March in common years.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> s = pl.Series("b", [date(2008, 2, 29), date(2010, 6, 1)]).to_frame()
    >>> s.select(age_on("b", date(2026, 2, 28)))["b"].to_list()
    [17, 15]
    """
    b = _col(birth_date_expr)
    before_birthday = (b.dt.month().cast(pl.Int64) * 100 + b.dt.day().cast(pl.Int64)) > (
        on.month * 100 + on.day
    )
    return ((b.dt.year().cast(pl.Int64) * -1 + on.year) - before_birthday.cast(pl.Int64)).name.keep()


def sex(normalised: IntoExpr) -> pl.Expr:
    """``"female"`` (even last digit) or ``"male"`` of a normalised CPR number; null stays null."""
    last = _col(normalised).str.slice(9, 1).cast(pl.Int32, strict=False)
    return (
        pl.when(last.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(last % 2 == 0)
        .then(pl.lit("female"))
        .otherwise(pl.lit("male"))
        .name.keep()
    )


def is_valid_cpr(text: str) -> bool:
    """Scalar check: would :func:`normalise_cpr` accept ``text``?

    >>> is_valid_cpr("010190-1234"), is_valid_cpr("320190-1234")
    (True, False)
    """
    frame = pl.DataFrame({"cpr": [text]}, schema={"cpr": pl.String})
    return bool(frame.select(normalise_cpr("cpr").is_not_null()).item())
