"""Reading and validating the raw input contract (the hub extract is :mod:`socialsearch.hub_extract`).

Raw extracts (``docs/data-contract.md``) are what police districts and the CPR extract deliver::

    DIR/incidents/            *.csv | *.parquet   (several files, e.g. one per district)
    DIR/incident_persons/     *.csv | *.parquet
    DIR/population.csv | population.parquet
    DIR/relations.csv  | relations.parquet

:func:`read_raw` reads them into normalised Polars frames (codes as strings, date-times as
``Datetime("us", "Europe/Copenhagen")``) and checks every rule of the contract in vectorised
passes; all problems are raised together in one :class:`~socialsearch.errors.InputError`
naming file, line (CSV: the file's line, the header being line 1) or row (Parquet), column and
what was expected. Every entry of the two input
folders and every table file is read or refused (broken or looping links, sub-folders, other
files, other encodings and separators, rows with another number of fields than the header), and
every police district of the reference geography must have incident rows unless it is named as
absent. A problem never shows a cell's value, only its shape ("a 10-character value of digits
and '-'"): a shifted column can put a CPR number, a name, a birth date or a journal number in
any column.

Examples
--------
A small synthetic extract (every police district delivers), read and validated:

>>> import tempfile
>>> from socialsearch import synth
>>> folder = Path(tempfile.mkdtemp()) / "extract"
>>> _ = synth(folder, scale=0.0005, seed=1, week="2026-W47")
>>> raw = read_raw(folder)
>>> raw.incidents.schema["registered_at"]
Datetime(time_unit='us', time_zone='Europe/Copenhagen')
>>> sorted(raw.rows)
['incident_persons', 'incidents', 'population', 'relations']
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..contract import DATETIME, RELATIONS, ROLES, TIME_ZONE, to_local
from ..crypto import _native
from ..errors import InputError, UsageError
from ..geography import geography

# The normalised number as Int64 (the same values as normalise_cpr, an eighth of the memory).
from ..identifiers import cpr_number as _normalise_cpr
from ..identifiers import in_slices
from ._reading import (
    FILE,
    PER_RULE_LIMIT,
    ROW,
    SUFFIXES,
    Check,
    Problems,
    entry_problem,
    positions,
    read_file,
    rel_path,
    sha256_file,
    withheld_library_messages,
)

__all__ = [
    "PER_RULE_LIMIT",
    "RELATIONS",
    "ROLES",
    "TIME_ZONE",
    "RawExtracts",
    "parse_datetime",
    "read_raw",
]

#: Files an operating system leaves in folders by itself: the only entries that are skipped
#: (compared without regard to case).
_IGNORED_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")
_IGNORED = frozenset(name.lower() for name in _IGNORED_FILES)


# --------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawExtracts:
    """Validated raw extracts in their normalised form (see ``docs/data-contract.md``).

    ``files`` are the files read, ``digests`` maps each file's path relative to the input
    folder to the SHA-256 of its bytes, ``rows`` the data rows read per table, and
    ``rows_per_district`` the rows of ``incidents`` and ``incident_persons`` per police
    district of the reference geography (0 for a district named as absent).
    ``population_numbers`` is the population's CPR number normalised as an ``Int64`` (as
    :func:`socialsearch.identifiers.cpr_number` gives it), row for row: computed once for the
    checks and handed on, so that the station's register does not compute it again;
    ``relation_numbers`` are the relations' ``child`` and ``adult`` numbers in the same form,
    row for row, so that the station can let go of the relations' text.
    """

    incidents: pl.DataFrame
    incident_persons: pl.DataFrame
    population: pl.DataFrame
    relations: pl.DataFrame
    files: tuple[Path, ...]
    digests: dict[str, str]
    rows: dict[str, int]
    rows_per_district: dict[str, dict[str, int]] = field(default_factory=dict)
    population_numbers: pl.Series | None = None
    relation_numbers: pl.DataFrame | None = None


# --------------------------------------------------------------------------------------
# The raw contract: one spec per column
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Col:
    name: str
    kind: str  # text | code | district | municipality | datetime | date | cpr | role | relation
    required: bool = True  # the column must exist
    nonempty: bool = True  # every row needs a value


_RAW_SPECS: dict[str, tuple[_Col, ...]] = {
    "incidents": (
        _Col("district", "district"),
        _Col("incident_id", "text"),
        _Col("occurred_at", "datetime"),
        _Col("registered_at", "datetime"),
        _Col("municipality", "municipality"),
        # An event needs at least one of its two codes (checked in _normalise).
        _Col("incident_code", "code", nonempty=False),
        _Col("offence_code", "code", required=False, nonempty=False),
    ),
    "incident_persons": (
        _Col("district", "district"),
        _Col("incident_id", "text"),
        _Col("cpr", "cpr", nonempty=False),
        _Col("role", "role"),
        _Col("given_name", "text", required=False, nonempty=False),
        _Col("surname", "text", required=False, nonempty=False),
        _Col("birth_date", "date", required=False, nonempty=False),
    ),
    "population": (
        _Col("cpr", "cpr"),
        _Col("municipality", "municipality"),
        _Col("given_name", "text", required=False, nonempty=False),
        _Col("surname", "text", required=False, nonempty=False),
    ),
    "relations": (
        _Col("child_cpr", "cpr"),
        _Col("adult_cpr", "cpr"),
        _Col("relation", "relation"),
    ),
}

_DTYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "code": pl.String(),
    "district": pl.String(),
    "municipality": pl.String(),
    "cpr": pl.String(),
    "role": pl.String(),
    "relation": pl.String(),
    "datetime": DATETIME,
    "date": pl.Date(),
}

_FOLDER_TABLES = ("incidents", "incident_persons")
_FILE_TABLES = ("population", "relations")

_DATETIME_RE = (
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:[.,]\d{1,9})?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_EXPECT_DATETIME = (
    "an ISO 8601 date-time such as 2026-11-16T08:30:00 (local time) or 2026-11-16T08:30:00+01:00"
)


# --------------------------------------------------------------------------------------
# Column conversion: any accepted source type -> the contract's type
# --------------------------------------------------------------------------------------


_Final = Callable[[pl.Series], pl.Series]


def _stripped_or_null(series: pl.Series, final: _Final | None = None) -> pl.Series:
    """``series`` stripped of surrounding white space, empty values null.

    When nothing changes (the usual case: a clean extract), the input column itself is returned,
    so the validated frame shares its strings with the file's instead of holding a copy.
    ``final`` (optional) marks values already in their final form (a reference code, ten
    digits), which have nothing to strip: only the others are looked at.
    """
    if final is None and series.dtype == pl.String and _native.untrimmed(series) == 0:
        return series  # one native pass: no value is empty or begins or ends with white space
    if final is not None:
        keep = final(series).fill_null(False) | series.is_null()
        if bool(keep.all()):
            return series
        rest = (~keep).arg_true()
        others = series.gather(rest)
        done = _stripped_or_null(others)
        if done is others:  # nothing to strip in the others either: the column as read
            return series
        return series.clone().scatter(rest, done)  # scatter is in place, on the copy
    stripped = series.str.strip_chars()
    lengths = stripped.str.len_bytes()
    if bool((lengths == series.str.len_bytes()).fill_null(True).all()) and not bool((lengths == 0).any()):
        return series
    return stripped.to_frame("x").select(pl.when(pl.col("x").str.len_bytes() > 0).then(pl.col("x"))).to_series()


def _blank_to_null(expr: pl.Expr, final: _Final | None = None) -> pl.Expr:
    return expr.map_batches(lambda s: in_slices(s, lambda part: _stripped_or_null(part, final)).rename(s.name),
                            return_dtype=pl.String(), is_elementwise=True)


def _ten_digits(series: pl.Series) -> pl.Series:
    """Values that are exactly ten ASCII digits, or ``DDMMYY-SSSS`` with an ASCII dash (nothing
    to strip; the usual CPR numbers), False for null: one native pass (:func:`_cpr_numbers`)."""
    others = pl.Series(_native.cpr_numbers(series, dashed=True)[1])
    ten = series.is_not_null()
    return ten.scatter(others, False) if len(others) else ten


def _cpr_numbers(series: pl.Series) -> pl.Series:
    """:func:`socialsearch.identifiers.cpr_number` of a String column, in one native pass.

    Ten ASCII digits and ``DDMMYY-SSSS`` with an ASCII dash (nearly every value of an extract)
    are parsed and their date checked by the native kernel; only the other values (other
    dashes, white space, other characters) go through the general rule.
    """
    numbers, others = (pl.Series(a) for a in _native.cpr_numbers(series, dashed=True))
    if len(others):
        general = series.gather(others).to_frame("x").select(_normalise_cpr(pl.col("x"))).to_series()
        numbers = numbers.scatter(others, general)  # in place, on the kernel's new series
    return numbers.rename(series.name)


def _cpr_number(expr: pl.Expr) -> pl.Expr:
    """The CPR number of a String column as ``Int64`` (:func:`_cpr_numbers`)."""
    return expr.map_batches(_cpr_numbers, return_dtype=pl.Int64(), is_elementwise=True)


def _in_vocabulary(words: Collection[str]) -> _Final:
    listed = sorted(words)
    return lambda series: series.is_in(listed)


def _final_form(kind: str) -> _Final | None:
    """The values of a column kind that are already final (no white space, not empty), if any."""
    if kind == "cpr":
        return _ten_digits
    if kind == "municipality":
        return _in_vocabulary(geography().municipality_codes)
    if kind == "district":
        return _in_vocabulary(geography().district_codes)
    if kind == "role":
        return _in_vocabulary(ROLES)
    if kind == "relation":
        return _in_vocabulary(RELATIONS)
    return None


def _text(name: str, dtype: pl.DataType, kind: str = "text") -> pl.Expr | None:
    """The column as stripped text (null when empty), or None when its type cannot be text.

    Values already in their final form for ``kind`` (see :func:`_final_form`) are not stripped:
    for a clean column of codes or CPR numbers that is one hash or parse per value instead of a
    new column of stripped strings.
    """
    col = pl.col(name)
    if dtype == pl.String:
        return _blank_to_null(col, _final_form(kind))
    if dtype.is_integer() or isinstance(dtype, (pl.Categorical, pl.Enum, pl.Null)):
        return _blank_to_null(col.cast(pl.String))
    return None


_Stage = list[pl.Expr]


def _datetime_stages(raw: str, out: str, gap: str) -> list[_Stage]:
    """Parse the ISO 8601 text column ``raw`` into ``out`` (and the flag ``gap``) in stages.

    Each stage is applied with ``with_columns`` after the previous one, so the regular
    expression and the time-zone conversion run once per value (one nested expression would
    evaluate them once per reference). Temporary columns start with ``__``.
    """
    t = f"__{out}"
    parts, naive, off = pl.col(f"{t}_parts"), pl.col(f"{t}_naive"), pl.col(f"{t}_off")
    minutes, local = pl.col(f"{t}_min"), pl.col(f"{t}_local")
    seconds = parts.struct.field("3").fill_null(":00").str.replace(",", ".", literal=True)
    digits = off.str.replace_all(r"[^0-9]", "")
    offset_minutes = (
        digits.str.slice(0, 2).cast(pl.Int64, strict=False) * 60
        + digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0)
    )
    return [
        [pl.col(raw).str.extract_groups(_DATETIME_RE).alias(f"{t}_parts")],
        [
            pl.concat_str(parts.struct.field("1"), pl.lit("T"), parts.struct.field("2"), seconds)
            .str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False)
            .alias(f"{t}_naive"),
            parts.struct.field("4").str.to_uppercase().alias(f"{t}_off"),
        ],
        [
            pl.when(off == "Z").then(0)
            .when(off.str.starts_with("-")).then(-offset_minutes)
            .otherwise(offset_minutes)
            .alias(f"{t}_min"),
            naive.dt.replace_time_zone(TIME_ZONE, ambiguous="earliest", non_existent="null")
            .alias(f"{t}_local"),
        ],
        [
            pl.when(off.is_null())
            .then(local)
            .otherwise(
                (naive - pl.duration(minutes=minutes))
                .dt.replace_time_zone("UTC")
                .dt.convert_time_zone(TIME_ZONE)
            )
            .alias(out),
            (off.is_null() & naive.is_not_null() & local.is_null()).alias(gap),
        ],
    ]


def _apply_stages(frame: pl.DataFrame, stages: list[list[_Stage]]) -> pl.DataFrame:
    """Apply the i-th stage of every column together, then drop the ``__`` temporaries."""
    for depth in range(max((len(s) for s in stages), default=0)):
        exprs = [e for s in stages if depth < len(s) for e in s[depth]]
        if exprs:
            frame = frame.with_columns(exprs)
    return frame.drop([c for c in frame.columns if c.startswith("__")])


def parse_datetime(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Parse ISO 8601 text to ``Datetime("us", "Europe/Copenhagen")``.

    Returns ``(value, in_gap)``: ``value`` is null where the text is not a date-time or is a
    local time skipped by the spring-forward change; ``in_gap`` flags the latter. Text
    without an offset is local Copenhagen time (an hour repeated in October is read as the
    first, summer-time one); text with an offset (``+01:00``, ``+0100``, ``+01``, ``Z``) is
    converted. Both forms may be mixed in one column.

    Examples
    --------
    >>> value, _ = parse_datetime(pl.Series(["2026-11-16T08:30:00", "2026-11-16T07:30:00Z"]))
    >>> value.dt.hour().to_list()
    [8, 8]
    """
    frame = pl.DataFrame({"t": text.cast(pl.String)}).select(_blank_to_null(pl.col("t")))
    out = _apply_stages(frame, [_datetime_stages("t", "v", "g")])
    return out["v"].alias(text.name), out["g"].alias(text.name)


def _date(name: str, dtype: pl.DataType) -> pl.Expr | None:
    col = pl.col(name)
    if dtype == pl.Date:
        return col
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone(TIME_ZONE)
        return col.dt.date()
    if dtype == pl.String:
        return _date_of_text(_blank_to_null(col))
    return None


def _date_of_text(text: pl.Expr) -> pl.Expr:
    """``YYYY-MM-DD`` (optionally followed by a time) as a ``Date``; null otherwise."""
    looks_like_date = text.str.contains(r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$")
    return pl.when(looks_like_date).then(text.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False))


def _municipality(text: pl.Expr) -> pl.Expr:
    """Digits 1..999 as a 3-digit kommunekode ("0101" and 101 become "101"); else null."""
    number = text.cast(pl.Int32, strict=False)
    return pl.when(text.str.contains(r"^\d{1,4}$") & number.is_between(1, 999)).then(
        number.cast(pl.String).str.zfill(3)
    )


def _where_not_final(expr: pl.Expr, final: Callable[[pl.Series], pl.Series],
                     general: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """``general(expr)``, evaluated only on the values ``final`` does not already accept as they are.

    Most values of a national extract are already in their final form (a kommunekode such as
    "101", a lower-case role): they are kept unchanged, and the general rule (regular
    expressions, casts, case folding) runs on the few others only. ``final`` must accept only
    values that ``general`` leaves unchanged.
    """
    def apply(whole: pl.Series) -> pl.Series:
        return in_slices(whole, one_slice)

    def one_slice(series: pl.Series) -> pl.Series:
        keep = final(series).fill_null(False)
        if bool(keep.all()):
            return series  # the column as read, not a copy
        out = series.to_frame("x").select(pl.when(pl.lit(keep)).then(pl.col("x"))).to_series()
        rest = (~keep & series.is_not_null()).arg_true()
        if len(rest):
            done = series.gather(rest).to_frame("x").select(general(pl.col("x"))).to_series()
            out = out.scatter(rest, done)  # in place, on the new series
        return out.rename(series.name)

    return expr.map_batches(apply, return_dtype=pl.String(), is_elementwise=True)


def _within(expr: pl.Expr, words: list[str]) -> pl.Expr:
    """``expr`` where it is one of ``words``, else null."""
    return pl.when(expr.is_in(words)).then(expr)


def _municipality_fast(text: pl.Expr) -> pl.Expr:
    """:func:`_municipality` where it is a reference code (null elsewhere), with the reference
    codes themselves kept as they are: a code is looked up once, and its check is a null test."""
    codes = sorted(geography().municipality_codes)
    return _where_not_final(text, lambda s: s.is_in(codes), lambda e: _within(_municipality(e), codes))


def _lowercase_fast(text: pl.Expr, words: tuple[str, ...]) -> pl.Expr:
    """``text.str.to_lowercase()``, with the vocabulary's own (lower-case) words kept as they are."""
    return _where_not_final(text, lambda s: s.is_in(list(words)), lambda e: e.str.to_lowercase())


_TYPE_EXPECTED = {
    "datetime": "date-times (ISO 8601 text or a Parquet timestamp)",
    "date": "dates (YYYY-MM-DD text or a Parquet date)",
}


_Converted = tuple[pl.Expr, pl.Expr | None, list[Check], list[_Stage]]


def _convert(spec: _Col, dtype: pl.DataType) -> _Converted | None:
    """``(raw, value, checks, stages)`` for one present column; None when its type is unusable.

    ``raw`` is the stripped text (null when empty), used for emptiness and display; ``value``
    the contract-typed column (None when ``stages`` compute it from ``_raw_<name>``);
    ``checks`` the column's own rules over the frame holding ``_raw_<name>`` and ``<name>``.
    """
    name, raw_name = spec.name, f"_raw_{spec.name}"
    raw_col, value_col = pl.col(raw_name), pl.col(name)
    show = raw_name  # its shape is described, never its value
    checks: list[Check] = []
    if spec.kind == "datetime":
        gap = f"_gap_{name}"
        checks.append(Check(name, _EXPECT_DATETIME,
                             raw_col.is_not_null() & value_col.is_null() & ~pl.col(gap), show))
        checks.append(Check(name, "a local time that exists in Europe/Copenhagen (clocks skip "
                             "02:00-03:00 on the last Sunday of March); give it with its UTC offset",
                             pl.col(gap), show))
        if dtype == pl.String:
            return _blank_to_null(pl.col(name)), None, checks, _datetime_stages(raw_name, name, gap)
        if isinstance(dtype, pl.Datetime):
            # A typed column is its own raw form (null where empty): no text is made of it; the
            # shape of a value that breaks a check is described from its text only then.
            flag = (raw_col.is_not_null() & value_col.is_null()).alias(gap)
            return pl.col(name), to_local(pl.col(name), dtype), checks, [[flag]]
        return None
    if spec.kind == "date":
        checks.append(Check(name, "a date YYYY-MM-DD", raw_col.is_not_null() & value_col.is_null(), show))
        if dtype == pl.String:  # parsed from the stripped text once it exists (a stage)
            return _blank_to_null(pl.col(name)), None, checks, [[_date_of_text(raw_col).alias(name)]]
        date = _date(name, dtype)
        if date is None:
            return None
        return pl.col(name), date, checks, []
    text = _text(name, dtype, spec.kind)
    if text is None:
        return None
    if spec.kind == "cpr" and dtype.is_integer():  # a CPR number stored as a number lost its zero
        text = text.str.zfill(10)
    if spec.kind in ("role", "relation"):
        text = _lowercase_fast(text, ROLES if spec.kind == "role" else RELATIONS)
    # The value is computed from the stripped text column once it exists (a stage), not by
    # evaluating the text expression a second time.
    value = raw_col
    if spec.kind == "municipality":
        value = _municipality_fast(raw_col)
        checks.append(Check(name, "one of the 98 kommunekoder (3 digits, e.g. 101 for København)",
                             raw_col.is_not_null() & value_col.is_null(), show))
    elif spec.kind == "district":
        codes = sorted(geography().district_codes)
        checks.append(Check(name, f"a police district code ({', '.join(codes)})",
                             raw_col.is_not_null() & ~value_col.is_in(codes), show))
    elif spec.kind == "role":
        checks.append(Check(name, f"a role: {' | '.join(ROLES)}",
                             value_col.is_not_null() & ~value_col.is_in(ROLES), show))
    elif spec.kind == "relation":
        checks.append(Check(name, f"a relation: {' | '.join(RELATIONS)}",
                             value_col.is_not_null() & ~value_col.is_in(RELATIONS), show))
    elif spec.kind == "cpr" and spec.nonempty:
        # Normalised once (kept as _norm_<name>) for this check, the cross-file ones and the station.
        norm = f"_norm_{name}"
        checks.append(Check(name, "a valid CPR number DDMMYYSSSS or DDMMYY-SSSS",
                             raw_col.is_not_null() & pl.col(norm).is_null(), show))
        if dtype == pl.String:
            # The number from the text as delivered (it reads through surrounding white space),
            # and the text stripped (kept as it is when no value needs it: one native pass).
            return (pl.col(name), None, checks,
                    [[_cpr_number(raw_col).alias(norm), _blank_to_null(raw_col).alias(raw_name)],
                     [raw_col.alias(name)]])
        return text, None, checks, [[value.alias(name)], [_normalise_cpr(value_col).alias(norm)]]
    return text, None, checks, [[value.alias(name)]]


# --------------------------------------------------------------------------------------
# Reading raw extracts
# --------------------------------------------------------------------------------------


def _folder_entries(folder: Path, table: str, rel: str, problems: Problems) -> tuple[list[Path], bool]:
    """Every entry of ``folder``: the table files to read, and whether none was refused."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        problems.add(str(folder), None, f"a readable folder ({exc.strerror or type(exc).__name__})")
        return [], False
    files: list[Path] = []
    ok = True
    for entry in entries:  # one per file of the folder, not per row
        name = entry.name
        if name.lower() in _IGNORED:
            continue
        path = folder / name
        where = f"{rel}/{name}"
        problem = entry_problem(path)
        if problem is None and name.startswith((".", "~")):
            problem = ("a table file, not a hidden or temporary file (the name starts with "
                       f"'{name[0]}'); remove it, or rename it if it is an extract")
        if problem is None and path.suffix.lower() not in SUFFIXES:
            problem = (f"only *.csv and *.parquet files in {table}/ (move other files out; only "
                       f"{', '.join(_IGNORED_FILES)} are skipped)")
        if problem is not None:
            problems.names.append(where)
            problems.add(where, None, problem)
            ok = False
        else:
            files.append(path)
    if not entries or (ok and not files):
        problems.add(str(folder), None, "at least one *.csv or *.parquet file (the folder is empty)")
        ok = False
    return files, ok


def _table_files(root: Path, table: str, problems: Problems) -> tuple[list[Path], bool]:
    """The files holding ``table``, and whether every candidate could be taken (errors recorded)."""
    if table in _FOLDER_TABLES:
        folder = root / table
        if not folder.is_dir():
            why = ""
            if folder.is_symlink():
                why = " (this is a symbolic link to no folder)"
            elif folder.exists():
                why = " (this is a file)"
            problems.add(str(folder), None, f"a folder {table}/ holding *.csv or *.parquet files{why}")
            return [], False
        return _folder_entries(folder, table, table, problems)
    found = [root / f"{table}{s}" for s in SUFFIXES if os.path.lexists(root / f"{table}{s}")]
    if not found:
        problems.add(str(root / f"{table}.csv"), None, f"a file {table}.csv or {table}.parquet")
        return [], False
    if len(found) > 1:
        problems.add(str(root / table), None, f"one file, {table}.csv or {table}.parquet, not both")
        return [], False
    problem = entry_problem(found[0], in_folder=False)
    if problem is not None:
        problems.add(found[0].name, None, problem)
        return [], False
    return found, True


def _stray_tables(root: Path, problems: Problems) -> None:
    """Refuse a table-looking file at the top of the input folder that no table would read.

    Other entries there (notes, synth's ``truth/``) are not input and stay unread, but a
    ``*.csv`` or ``*.parquet`` file is never skipped silently: it is most likely a district's
    file put one folder too high, or a table file named in another case.
    """
    expected = {f"{table}{suffix}" for table in _FILE_TABLES for suffix in SUFFIXES}
    try:
        names = sorted(e.name for e in os.scandir(root))
    except OSError as exc:
        problems.add(str(root), None, f"a readable folder ({exc.strerror or type(exc).__name__})")
        return
    for name in names:  # one per entry of the folder
        if Path(name).suffix.lower() not in SUFFIXES or name in expected:
            continue
        if name.lower() in expected:
            if not os.path.lexists(root / name.lower()):  # (a case-insensitive disk finds it)
                problems.add(name, None, f"the name {name.lower()} (names are case-sensitive)")
        else:
            problems.add(name, None, "no table file at the top of the input folder other than "
                         "population.csv|parquet and relations.csv|parquet (files of incidents and "
                         "incident persons go in incidents/ and incident_persons/)")


_KNOWN_COLUMNS = frozenset(c.name for specs in _RAW_SPECS.values() for c in specs)


def _describe_header(columns: list[str], wanted: str) -> str:
    """What the header holds, naming only contract columns (another name may be a data cell)."""
    known = [c for c in columns if c in _KNOWN_COLUMNS]
    others = sum(1 for c in columns if c and c not in _KNOWN_COLUMNS and not c.startswith("_"))
    if not known:
        return "the first row does not look like a header row of column names; add one"
    text = "the header has: " + ", ".join(known)
    if others:
        text += f" and {others} other column(s)"
    if any(re.sub(r"[\s-]+", "_", c.strip().lower()) == wanted for c in columns):
        text += f"; one differs from '{wanted}' only in case, spaces or dashes"
    return text


def _header(path: Path, frame: pl.DataFrame) -> list[str]:
    """The file's column names (a Parquet frame holds only the contract's columns)."""
    if path.suffix.lower() == ".parquet":
        return list(pl.read_parquet_schema(path))
    return frame.columns


def _normalise(table: str, frame: pl.DataFrame, path: Path, rel: str, index: int,
               problems: Problems) -> pl.DataFrame | None:
    """One file's frame in the contract's types, with ``_file``, ``_row`` and per-row checks run."""
    specs = _RAW_SPECS[table]
    missing = [s.name for s in specs if s.required and s.name not in frame.columns]
    if missing:
        header = _header(path, frame)
        for name in missing:
            problems.add(rel, name, f"a column '{name}' ({_describe_header(header, name)})")
    # A CSV file's lines are carried (``_row``); a Parquet file's rows are positions, made only
    # for the rows that break a check (and for the tables of the folders, see _read_table).
    exprs: list[pl.Expr] = [pl.col(ROW)] if ROW in frame.columns else []
    checks: list[Check] = []
    stages: list[list[_Stage]] = []
    for spec in specs:
        if spec.name not in frame.columns:
            exprs.append(pl.lit(None, _DTYPES[spec.kind]).alias(spec.name))
            exprs.append(pl.lit(None, pl.String).alias(f"_raw_{spec.name}"))
            continue
        dtype = frame.schema[spec.name]
        converted = _convert(spec, dtype)
        if converted is None:
            problems.add(rel, spec.name, f"{_TYPE_EXPECTED.get(spec.kind, 'text or integer values')} "
                         f"(the column's type is {dtype})")
            missing.append(spec.name)
            continue
        raw, value, own, extra = converted
        exprs.append(raw.alias(f"_raw_{spec.name}"))
        if value is not None:
            exprs.append(value.alias(spec.name))
        stages.append(extra)
        if spec.nonempty:
            checks.append(Check(spec.name, "a value (this column may not be empty)",
                                 pl.col(f"_raw_{spec.name}").is_null()))
        checks.extend(own)
    if missing:
        return None
    if table == "incidents":
        checks.append(Check("incident_code", "an incident_code or an offence_code (both are empty)",
                             pl.col("_raw_incident_code").is_null() & pl.col("_raw_offence_code").is_null()))
    if table == "relations":
        checks.append(Check("adult_cpr", "an adult other than the child (child_cpr and adult_cpr are the same "
                             "person; value not shown)", pl.col("_norm_child_cpr") == pl.col("_norm_adult_cpr")))
    out = _apply_stages(frame.select(exprs), stages)
    problems.scan(out, checks, index)
    norms = [c for c in out.columns if c.startswith("_norm_")]
    return out.select([c for c in (ROW,) if c in out.columns] + [*[s.name for s in specs], *norms])


#: lanes of tables read at the same time (each read is itself parallel inside Polars)
_READERS = max(1, min(4, os.cpu_count() or 1))


def _lanes(tables: list[_Table], readers: int) -> list[list[_Table]]:
    """The tables in ``readers`` lanes, each read one table after the other, the lanes at once.

    The two single-file tables (the population and the relations: most of the memory) share one
    lane, so that the one's transient columns never coexist with the other's; the tables of the
    folders are spread over the other lanes.
    """
    if readers < 2:
        return [tables]
    big = [t for t in tables if t.name in _FILE_TABLES]
    rest = [t for t in tables if t.name not in _FILE_TABLES]
    others = max(1, min(readers - 1, len(rest)))
    return [big, *(rest[i::others] for i in range(others))]


@dataclass
class _Table:
    """One table's files, each with its index in :attr:`Problems.names` (assigned in reading order)."""

    name: str
    paths: list[tuple[Path, str, int]]
    complete: bool


def _plan(root: Path, table: str, problems: Problems) -> _Table:
    """The files of ``table`` to read, registered with ``problems`` in reading order."""
    paths, complete = _table_files(root, table, problems)
    planned = []
    for path in paths:  # one per file of the table
        rel = rel_path(path, root)
        planned.append((path, rel, len(problems.names)))
        problems.names.append(rel)
    return _Table(table, planned, complete)


def _read_table(table: _Table, problems: Problems) -> tuple[pl.DataFrame | None, bool, dict[str, str]]:
    """All files of a table, read once each (only the contract's columns), normalised and
    concatenated; ``(frame, complete, digests)``."""
    frames: list[pl.DataFrame] = []
    digests: dict[str, str] = {}
    complete = table.complete
    columns = [spec.name for spec in _RAW_SPECS[table.name]]
    for path, rel, index in table.paths:  # one per file of the table
        try:
            frame = read_file(path, rel, problems, columns=columns, known=_KNOWN_COLUMNS)
            if frame is not None:
                digests[rel] = sha256_file(path)
        except OSError as exc:  # a file that vanished or became unreadable while we read it
            problems.add(rel, None, f"a readable file ({exc.strerror or type(exc).__name__})")
            frame = None
        normalised = None if frame is None else _normalise(table.name, frame, path, rel, index, problems)
        del frame
        if normalised is None:
            complete = False
        else:
            frames.append(normalised if table.name in _FILE_TABLES else _with_positions(normalised, index))
    if not frames:
        return None, False, digests
    return pl.concat(frames, how="vertical"), complete, digests


def _with_positions(frame: pl.DataFrame, index: int) -> pl.DataFrame:
    """``frame`` (one file's rows, in order) with ``_file`` and, when it has none, ``_row``.

    A single-file table is held without them (its file is known, and a Parquet file's row is
    its position plus one): the population and the relations need no columns of millions of
    positions while they wait for the cross-file checks and the station.
    """
    return frame.select(*positions(frame, index), pl.exclude(FILE, ROW))


def _no_duplicates(keys: pl.Series) -> bool:
    """True when the non-null ``keys`` (integers) are all distinct: one sort (NumPy, outside the
    interpreter lock) and a comparison of neighbours, cheaper than counting distinct values by
    hashing or marking each row's first occurrence (done only when this is False).

    Keys that fit in 32 bits (a CPR number ``DDMMYYSSSS`` does) are sorted as such: half the bytes.
    """
    present = keys.drop_nulls()
    if present.len() < 2:
        return True
    low, high = present.min(), present.max()
    if present.dtype.is_integer() and isinstance(low, int) and isinstance(high, int) and 0 <= low <= high < 1 << 32:
        present = present.cast(pl.UInt32)
    ordered = np.sort(present.to_numpy())
    return not bool(np.any(ordered[1:] == ordered[:-1]))


def _key_hashes(frame: pl.DataFrame) -> pl.Series:
    """A 64-bit hash of each row's district and journal number; null where either is missing."""
    keyed = pl.col("district").is_not_null() & pl.col("incident_id").is_not_null()
    return frame.select(pl.when(keyed).then(pl.struct("district", "incident_id").hash())).to_series()


#: the position ``_native.key_positions`` gives a key that is not there
_ABSENT = (1 << 32) - 1


def _orphans(persons: pl.DataFrame, incidents: pl.DataFrame, hashes: pl.Series | None) -> pl.DataFrame:
    """``_file`` and ``_row`` of the persons whose district and journal number no incident has.

    ``hashes`` are the incidents' :func:`_key_hashes` when they are all distinct: each person's
    key hash then finds the one incident that can hold its key (``_native.key_positions``),
    and that incident's district and journal number are compared with the person's, which is
    exact (two keys with one hash are told apart). Without them (a hash repeats), an anti-join
    on the text.
    """
    keyed = pl.col("district").is_not_null() & pl.col("incident_id").is_not_null()
    probe = persons.select(FILE, ROW, "district", "incident_id").filter(keyed)
    if hashes is None:
        # Only the key columns (and the row's position) are carried: no copy of names or CPR
        # numbers; an anti-join needs no distinct right side.
        known = incidents.select("district", "incident_id").filter(keyed)
        return probe.join(known, on=["district", "incident_id"], how="anti").select(FILE, ROW)
    rows = hashes.is_not_null().arg_true()  # the incident row of each key
    found = _native.key_positions(hashes.drop_nulls().to_numpy(), _key_hashes(probe).to_numpy())
    position = pl.DataFrame({"p": np.frombuffer(found, dtype="<u4")})
    at = rows.gather(position.select(pl.when(pl.col("p") != _ABSENT).then(pl.col("p"))).to_series())
    same = ((probe.get_column("district") == incidents.get_column("district").gather(at))
            & (probe.get_column("incident_id") == incidents.get_column("incident_id").gather(at)))
    return probe.select(FILE, ROW).filter(~same.fill_null(False))


def _cross_checks(tables: dict[str, pl.DataFrame | None], complete: dict[str, bool],
                  problems: Problems) -> None:
    """Rules that span rows of the incidents: uniqueness and references (the population's own
    uniqueness is :func:`_population_once`).

    Uniqueness is decided on integers first (the population's CPR number as ``Int64``; a
    64-bit hash of district and journal number): when they are all distinct, so are the keys,
    and the rows are marked one by one only when some key repeats. The same hashes then find
    each person's incident (:func:`_orphans`).
    """
    incidents = tables.get("incidents")
    keyed = pl.col("district").is_not_null() & pl.col("incident_id").is_not_null()
    distinct: pl.Series | None = None  # the incidents' key hashes, when no two are equal
    if incidents is not None:
        hashes = _key_hashes(incidents)
        if _no_duplicates(hashes):
            distinct = hashes
        else:  # a repeat, or two keys with one hash: decide on the keys
            problems.scan(incidents, [Check(
                "incident_id", "a journal number unique within its district (this one appeared "
                "earlier; value not shown)",
                keyed & ~pl.struct("district", "incident_id").is_first_distinct())])
    persons = tables.get("incident_persons")
    if persons is not None and incidents is not None and complete["incidents"]:
        orphans = _orphans(persons, incidents, distinct)
        problems.scan(orphans, [Check(
            "incident_id", "an incident that exists in incidents/ for the same district "
            "(none found; value not shown)", pl.lit(True))])


def _population_once(population: pl.DataFrame, problems: Problems, file: int) -> None:
    """Each person once in the population: decided on the CPR numbers as integers (see
    :func:`_cross_checks`), right after the population is read (the rule spans its rows only)."""
    if not _no_duplicates(population.get_column("_norm_cpr")):
        norm = pl.col("_norm_cpr")
        problems.scan(population, [Check(
            "cpr", "each person once in the population extract (this CPR number appeared "
            "earlier; value not shown)",
            norm.is_not_null() & ~norm.is_first_distinct())], file)


def _absent(names: Collection[str]) -> frozenset[str]:
    """The district codes named as absent, checked against the reference geography."""
    if isinstance(names, str):  # a single code passed where a collection was meant
        names = [names]
    codes = frozenset(n.strip().upper() for n in names)
    unknown = sorted(codes - geography().district_codes)
    if unknown:
        raise UsageError(f"--absent-district {', '.join(unknown)}: not a police district code "
                         f"(the codes are {', '.join(sorted(geography().district_codes))})")
    return codes


def _rows_per_district(tables: dict[str, pl.DataFrame | None]) -> dict[str, dict[str, int]]:
    """Rows of ``incidents`` and ``incident_persons`` per reference district (0 when none)."""
    codes = sorted(geography().district_codes)
    out: dict[str, dict[str, int]] = {}
    for table in _FOLDER_TABLES:
        frame = tables.get(table)
        counts: dict[str, int] = {}
        if frame is not None:
            grouped = frame.filter(pl.col("district").is_in(codes)).group_by("district").len()
            counts = dict(zip(grouped["district"].to_list(), grouped["len"].to_list(), strict=True))
        out[table] = {code: int(counts.get(code, 0)) for code in codes}
    return out


def _district_checks(per_district: dict[str, int], absent: frozenset[str],
                     problems: Problems) -> None:
    """Every reference district has incident rows, except those named as absent (which have none)."""
    geo = geography()
    missing = [c for c in sorted(per_district) if per_district[c] == 0 and c not in absent]
    extra = [c for c in sorted(per_district) if per_district[c] and c in absent]
    if missing:
        listed = ", ".join(f"{c} ({geo.district_name(c)})" for c in missing)
        options = " ".join(f"--absent-district {c}" for c in missing)
        problems.add("incidents/", "district", f"incident rows from every police district (none from "
                     f"{listed}: their children would be missed); add their files, or, if they "
                     f"delivered no extract for this run, name them: {options}")
    for code in extra:  # one per police district
        problems.add("incidents/", "district", f"no rows of police district {code} "
                     f"({geo.district_name(code)}), which was named with --absent-district (found "
                     f"{per_district[code]} row(s)); drop the option for {code}")


_Read = tuple[pl.DataFrame | None, bool, dict[str, str]]


def _read_lane(lane: list[_Table], problems: Problems) -> list[tuple[_Table, _Read]]:
    """The tables of one lane, one after the other; the population's own uniqueness is checked
    as soon as it is read (while the other lane still reads)."""
    out = []
    for plan in lane:  # at most the four tables
        result = _read_table(plan, problems)
        if plan.name == "population" and result[0] is not None:
            _population_once(result[0], problems, plan.paths[0][2])
        out.append((plan, result))
    return out


def _police_checks(results: dict[str, _Read], absent: frozenset[str],
                   problems: Problems) -> dict[str, dict[str, int]]:
    """The rules that span the rows of incidents/ and incident_persons/ (:func:`_cross_checks`,
    every district present); returns their rows per district."""
    tables = {name: results[name][0] for name in _FOLDER_TABLES}
    complete = {name: results[name][1] for name in _FOLDER_TABLES}
    _cross_checks(tables, complete, problems)
    per_district = _rows_per_district(tables)
    if complete["incidents"]:
        _district_checks(per_district["incidents"], absent, problems)
    return per_district


def read_raw(input_dir: Path, *, absent_districts: Collection[str] = ()) -> RawExtracts:
    """Read and validate raw extracts laid out as in the input contract (``docs/data-contract.md``).

    Parameters
    ----------
    input_dir
        The folder holding ``incidents/``, ``incident_persons/``, ``population.*`` and
        ``relations.*``.
    absent_districts
        Police district codes that delivered no incidents for this run. Every other district
        of the reference geography must have incident rows (a missing district means
        children silently missed), and these must have none.

    Returns
    -------
    RawExtracts
        Frames in the normalised raw schema (``docs/data-contract.md``), with the files
        read, their SHA-256 digests, the rows read per table and per district.

    Raises
    ------
    UsageError
        ``absent_districts`` names a code that is no police district.
    InputError
        Every problem found (first :data:`PER_RULE_LIMIT` rows per rule and file), each
        naming file, row, column and what was expected. Cell values are never shown.
    """
    absent = _absent(absent_districts)
    root = Path(input_dir)
    if not root.is_dir():
        raise InputError.single(root, None, "a folder holding incidents/, incident_persons/, "
                                "population.csv|parquet and relations.csv|parquet")
    problems = Problems()
    tables: dict[str, pl.DataFrame | None] = {}
    complete: dict[str, bool] = {}
    digests: dict[str, str] = {}
    with withheld_library_messages(f"validating the extracts in {root}"):
        _stray_tables(root, problems)
        plans = [_plan(root, table, problems) for table in (*_FOLDER_TABLES, *_FILE_TABLES)]
        # The tables are read in lanes at the same time: each file is read once, and Polars
        # releases the interpreter while it parses and checks.
        lanes = _lanes(plans, _READERS)
        results: dict[str, _Read] = {}
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="read_raw") as pool:
            futures = [pool.submit(_read_lane, lane, problems) for lane in lanes]
            police = [f for f, lane in zip(futures, lanes, strict=True)
                      if any(plan.name in _FOLDER_TABLES for plan in lane)]
            for future in police:  # the lanes of incidents/ and incident_persons/, which end first
                results.update((plan.name, result) for plan, result in future.result())
            # The rules that span the police's tables run here while the other lane still reads.
            per_district = _police_checks(results, absent, problems)
            for future in futures:  # the population and the relations
                results.update((plan.name, result) for plan, result in future.result())
        for plan in plans:  # in reading order
            frame, done, table_digests = results.pop(plan.name)
            tables[plan.name], complete[plan.name] = frame, done
            digests.update(table_digests)
        del results
    problems.raise_if_any()
    files = tuple(path for plan in plans for path, rel, _ in plan.paths if rel in digests)
    population = tables["population"]
    numbers = None if population is None else population.get_column("_norm_cpr")
    relations = tables["relations"]
    links = None if relations is None else relations.select(
        pl.col("_norm_child_cpr").alias("child"), pl.col("_norm_adult_cpr").alias("adult"))
    out = {
        name: frame.drop([c for c in frame.columns if c.startswith("_")])
        for name, frame in tables.items()
        if frame is not None
    }
    del tables, population, relations
    return RawExtracts(
        incidents=out["incidents"],
        incident_persons=out["incident_persons"],
        population=out["population"],
        relations=out["relations"],
        files=files,
        digests=digests,
        rows={name: frame.height for name, frame in out.items()},
        rows_per_district=per_district,
        population_numbers=numbers,
        relation_numbers=links,
    )
