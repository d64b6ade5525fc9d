"""Reading and validating the raw input contract (the hub extract is :mod:`socialsearch.hub_extract`).

Raw extracts (DESIGN.md §3) are what police districts and the CPR extract deliver::

    DIR/incidents/            *.csv | *.parquet   (several files, e.g. one per district)
    DIR/incident_persons/     *.csv | *.parquet
    DIR/population.csv | population.parquet
    DIR/relations.csv  | relations.parquet

:func:`read_raw` reads them into normalised Polars frames (codes as strings, date-times as
``Datetime("us", "Europe/Copenhagen")``) and checks every rule of the contract in vectorised
passes; all problems are raised together in one :class:`~socialsearch.errors.InputError`
naming file, 1-based data row, column and what was expected. Every entry of the two input
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

import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..contract import DATETIME, RELATIONS, ROLES, TIME_ZONE, to_local
from ..errors import InputError, InputProblem, UsageError
from ..geography import geography

# The normalised number as Int64 (the same values as normalise_cpr, an eighth of the memory).
from ..identifiers import cpr_number as _normalise_cpr
from ..identifiers import in_slices

__all__ = [
    "PER_RULE_LIMIT",
    "RELATIONS",
    "ROLES",
    "TIME_ZONE",
    "RawExtracts",
    "parse_datetime",
    "read_raw",
]


#: problems reported per (file, column, rule); more are summarised in one line
PER_RULE_LIMIT = 20

_SUFFIXES = (".csv", ".parquet")
_ROW = "_row"
_FILE = "_file"


@contextmanager
def _withheld_library_messages(what: str) -> Iterator[None]:
    """Re-raise a Polars failure without its message, which may quote rows of data.

    Such a failure is a bug, not bad input (bad input becomes an :class:`InputError`), so
    it stays an unexpected error; only the data is kept out of the terminal and the logs.
    """
    try:
        yield
    except pl.exceptions.PolarsError as exc:
        raise RuntimeError(
            f"internal error while {what} ({type(exc).__name__}); the library's message is "
            "withheld because it may quote identifiers"
        ) from None


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
    """

    incidents: pl.DataFrame
    incident_persons: pl.DataFrame
    population: pl.DataFrame
    relations: pl.DataFrame
    files: tuple[Path, ...]
    digests: dict[str, str]
    rows: dict[str, int]
    rows_per_district: dict[str, dict[str, int]] = field(default_factory=dict)


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


@dataclass(frozen=True)
class _Check:
    """One rule over a parsed frame: rows where ``bad`` is true break it.

    ``show`` names a column whose value's *shape* (length; digits, letters, spaces, which
    punctuation) is described in the problem; the value itself is never shown.
    """

    column: str | None
    expected: str
    bad: pl.Expr
    show: str | None = None


# A shifted CSV column can put a name, a CPR number, a birth date or a journal number anywhere,
# and no pattern tells a code from an identifier for sure: messages describe a value's shape,
# never the value.
_PUNCTUATION = r"[!-/:-@\[-`{-~]"  # ASCII punctuation: separators such as - / . : + ,
_SHAPE = ("_shape_len", "_shape_digits", "_shape_letters", "_shape_spaces", "_shape_punct",
          "_shape_other")


def _shape_exprs(column: str) -> list[pl.Expr]:
    """Expressions describing the shape of ``column``'s values, one column per trait."""
    text = pl.col(column).cast(pl.String)
    return [
        text.str.len_chars().alias("_shape_len"),
        text.str.contains(r"\d").alias("_shape_digits"),
        text.str.contains(r"\p{L}").alias("_shape_letters"),
        text.str.contains(r"\s").alias("_shape_spaces"),
        text.str.extract_all(_PUNCTUATION).list.unique().list.sort().list.join("").alias("_shape_punct"),
        text.str.contains(r"[^\d\p{L}\s!-/:-@\[-`{-~]").alias("_shape_other"),
    ]


def _describe_shape(length: int, digits: bool, letters: bool, spaces: bool, punct: str,
                    other: bool) -> str:
    """``a 10-character value of digits and '-'``: what a value looks like, not what it is.

    Examples
    --------
    >>> _describe_shape(11, True, False, False, "-", False)
    "an 11-character value of digits and '-'"
    >>> _describe_shape(6, False, True, False, "", False)
    'a 6-character value of letters'
    """
    parts = [name for name, has in (("digits", digits), ("letters", letters), ("spaces", spaces))
             if has]
    parts += [repr(c) for c in punct]
    if other:
        parts.append("other characters")
    article = "an" if str(length).startswith("8") or length in (11, 18) else "a"
    if not parts:
        return f"{article} {length}-character value"
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{article} {length}-character value of {listed}"


@dataclass
class _Problems:
    items: list[InputProblem]
    names: list[str]  # file index -> relative path

    def add(self, file: str, column: str | None, expected: str, row: int | None = None,
            value: str | None = None) -> None:
        self.items.append(InputProblem(file, column, expected, row, value))

    def scan(self, frame: pl.DataFrame, checks: Iterable[_Check]) -> None:
        """Record the first rows breaking each check; ``frame`` has ``_file`` and ``_row``.

        Where a check names a column to ``show``, the problem carries the shape of that
        column's value (computed in Polars; the value never reaches Python).
        """
        checks = list(checks)
        if not checks or frame.height == 0:
            return
        masks = frame.select([c.bad.fill_null(False).alias(f"c{i}") for i, c in enumerate(checks)])
        counts = masks.sum().row(0)
        for i, (check, count) in enumerate(zip(checks, counts, strict=True)):
            if not count:
                continue
            cols = [_FILE, _ROW] + ([check.show] if check.show else [])
            hits = frame.select(cols).filter(masks[f"c{i}"])
            per_file = hits.group_by(_FILE, maintain_order=True).len()
            for file_index, rows in per_file.iter_rows():
                first = hits.filter(pl.col(_FILE) == file_index).head(PER_RULE_LIMIT)
                if check.show:
                    first = first.with_columns(_shape_exprs(check.show)).drop(check.show)
                name = self.names[file_index]
                for rec in first.iter_rows(named=True):
                    shape = None
                    if check.show and rec["_shape_len"]:
                        shape = _describe_shape(*(rec[c] for c in _SHAPE))
                    self.add(name, check.column, check.expected, rec[_ROW], shape)
                if rows > PER_RULE_LIMIT:
                    self.add(name, check.column,
                             f"{check.expected} ({rows - PER_RULE_LIMIT} more row(s) like this)")

    def raise_if_any(self) -> None:
        """Raise every problem, grouped by file in reading order, then by row."""
        if self.items:
            order = {name: i for i, name in enumerate(self.names)}
            raise InputError(sorted(self.items, key=lambda p: (order.get(p.file, -1), p.row is None, p.row or 0)))


# --------------------------------------------------------------------------------------
# Column conversion: any accepted source type -> the contract's type
# --------------------------------------------------------------------------------------


def _stripped_or_null(series: pl.Series) -> pl.Series:
    """``series`` stripped of surrounding white space, empty values null.

    When nothing changes (the usual case: a clean extract), the input column itself is returned,
    so the validated frame shares its strings with the file's instead of holding a copy.
    """
    stripped = series.str.strip_chars()
    lengths = stripped.str.len_bytes()
    if bool((lengths == series.str.len_bytes()).fill_null(True).all()) and not bool((lengths == 0).any()):
        return series
    return stripped.to_frame("x").select(pl.when(pl.col("x").str.len_bytes() > 0).then(pl.col("x"))).to_series()


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return expr.map_batches(lambda s: in_slices(s, _stripped_or_null).rename(s.name), return_dtype=pl.String(),
                            is_elementwise=True)


def _text(name: str, dtype: pl.DataType) -> pl.Expr | None:
    """The column as stripped text (null when empty), or None when its type cannot be text."""
    col = pl.col(name)
    if dtype == pl.String:
        return _blank_to_null(col)
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
        text = _blank_to_null(col)
        looks_like_date = text.str.contains(r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$")
        return pl.when(looks_like_date).then(
            text.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        )
    return None


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


def _municipality_fast(text: pl.Expr) -> pl.Expr:
    """:func:`_municipality`, with the reference codes themselves kept as they are."""
    codes = sorted(geography().municipality_codes)
    return _where_not_final(text, lambda s: s.is_in(codes), _municipality)


def _lowercase_fast(text: pl.Expr, words: tuple[str, ...]) -> pl.Expr:
    """``text.str.to_lowercase()``, with the vocabulary's own (lower-case) words kept as they are."""
    return _where_not_final(text, lambda s: s.is_in(list(words)), lambda e: e.str.to_lowercase())


_TYPE_EXPECTED = {
    "datetime": "date-times (ISO 8601 text or a Parquet timestamp)",
    "date": "dates (YYYY-MM-DD text or a Parquet date)",
}


_Converted = tuple[pl.Expr, pl.Expr | None, list[_Check], list[_Stage]]


def _convert(spec: _Col, dtype: pl.DataType) -> _Converted | None:
    """``(raw, value, checks, stages)`` for one present column; None when its type is unusable.

    ``raw`` is the stripped text (null when empty), used for emptiness and display; ``value``
    the contract-typed column (None when ``stages`` compute it from ``_raw_<name>``);
    ``checks`` the column's own rules over the frame holding ``_raw_<name>`` and ``<name>``.
    """
    name, raw_name = spec.name, f"_raw_{spec.name}"
    raw_col, value_col = pl.col(raw_name), pl.col(name)
    show = raw_name  # its shape is described, never its value
    checks: list[_Check] = []
    if spec.kind == "datetime":
        gap = f"_gap_{name}"
        checks.append(_Check(name, _EXPECT_DATETIME,
                             raw_col.is_not_null() & value_col.is_null() & ~pl.col(gap), show))
        checks.append(_Check(name, "a local time that exists in Europe/Copenhagen (clocks skip "
                             "02:00-03:00 on the last Sunday of March); give it with its UTC offset",
                             pl.col(gap), show))
        raw = _blank_to_null(pl.col(name).cast(pl.String))
        if dtype == pl.String:
            return raw, None, checks, _datetime_stages(raw_name, name, gap)
        if isinstance(dtype, pl.Datetime):
            flag = (raw_col.is_not_null() & value_col.is_null()).alias(gap)
            return raw, to_local(pl.col(name), dtype), checks, [[flag]]
        return None
    if spec.kind == "date":
        date = _date(name, dtype)
        if date is None:
            return None
        raw = _blank_to_null(pl.col(name).cast(pl.String))
        checks.append(_Check(name, "a date YYYY-MM-DD", raw_col.is_not_null() & value_col.is_null(), show))
        return raw, date, checks, []
    text = _text(name, dtype)
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
        checks.append(_Check(name, "one of the 98 kommunekoder (3 digits, e.g. 101 for København)",
                             raw_col.is_not_null() & (value_col.is_null() | ~value_col.is_in(
                                 sorted(geography().municipality_codes))), show))
    elif spec.kind == "district":
        codes = sorted(geography().district_codes)
        checks.append(_Check(name, f"a police district code ({', '.join(codes)})",
                             raw_col.is_not_null() & ~value_col.is_in(codes), show))
    elif spec.kind == "role":
        checks.append(_Check(name, f"a role: {' | '.join(ROLES)}",
                             value_col.is_not_null() & ~value_col.is_in(ROLES), show))
    elif spec.kind == "relation":
        checks.append(_Check(name, f"a relation: {' | '.join(RELATIONS)}",
                             value_col.is_not_null() & ~value_col.is_in(RELATIONS), show))
    elif spec.kind == "cpr" and spec.nonempty:
        # Normalised once (kept as _norm_<name>) for this check and the cross-file ones.
        norm = f"_norm_{name}"
        checks.append(_Check(name, "a valid CPR number DDMMYYSSSS or DDMMYY-SSSS",
                             raw_col.is_not_null() & pl.col(norm).is_null(), show))
        return text, None, checks, [[value.alias(name)], [_normalise_cpr(value_col).alias(norm)]]
    return text, None, checks, [[value.alias(name)]]


# --------------------------------------------------------------------------------------
# Reading raw extracts
# --------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


#: Files an operating system leaves in folders by itself: the only entries that are skipped
#: (compared without regard to case).
IGNORED_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")
_IGNORED = frozenset(name.lower() for name in IGNORED_FILES)

_SAVE_AS_UTF8 = (
    "save it as UTF-8 with commas: in Excel, Filer > Gem som > filtype \"CSV UTF-8 "
    "(kommasepareret) (*.csv)\" (File > Save As > \"CSV UTF-8 (Comma delimited)\"); Danish "
    "Windows writes ';' even then unless the list separator is ',' (see docs/data-contract.md)"
)
_SEPARATOR_NAMES = {";": "';'", "\t": "tabs", "|": "'|'"}
_HEAD_BYTES = 1 << 16
_QUOTED = r'"(?:[^"]|"")*"'
_UNBALANCED = ("a CSV file whose quotes are balanced (a '\"' opens a value that is never closed, "
               "or a '\"' stands inside a value that does not start with one)")


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe, FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        return "device"
    return "special file"


def _entry_problem(path: Path, *, in_folder: bool = True) -> str | None:
    """Why ``path`` cannot be read as a table file; None for a regular file (or a link to one).

    Nothing is opened: a named pipe would block the run, a device never end.
    """
    try:
        mode = path.stat().st_mode  # follows symbolic links
    except OSError as exc:
        if path.is_symlink():
            if exc.errno == errno.ELOOP:
                return ("a file, not a symbolic link that loops (it points back to itself through "
                        "one or more links); replace it by the file it should point to")
            return ("a file, not a broken symbolic link (its target does not exist); copy the "
                    "file in or remove the link")
        return f"a readable file ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(mode):
        if not in_folder:
            return "a file, not a folder"
        return ("a file, not a folder (sub-folders are not read: move its files up into this "
                "folder, or move it out)")
    if not stat.S_ISREG(mode):
        return f"a regular file (this is a {_kind_of(mode)})"
    return None


def _folder_entries(folder: Path, table: str, rel: str, problems: _Problems) -> tuple[list[Path], bool]:
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
        problem = _entry_problem(path)
        if problem is None and name.startswith((".", "~")):
            problem = ("a table file, not a hidden or temporary file (the name starts with "
                       f"'{name[0]}'); remove it, or rename it if it is an extract")
        if problem is None and path.suffix.lower() not in _SUFFIXES:
            problem = (f"only *.csv and *.parquet files in {table}/ (move other files out; only "
                       f"{', '.join(IGNORED_FILES)} are skipped)")
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


def _table_files(root: Path, table: str, problems: _Problems) -> tuple[list[Path], bool]:
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
    found = [root / f"{table}{s}" for s in _SUFFIXES if os.path.lexists(root / f"{table}{s}")]
    if not found:
        problems.add(str(root / f"{table}.csv"), None, f"a file {table}.csv or {table}.parquet")
        return [], False
    if len(found) > 1:
        problems.add(str(root / table), None, f"one file, {table}.csv or {table}.parquet, not both")
        return [], False
    problem = _entry_problem(found[0], in_folder=False)
    if problem is not None:
        problems.add(found[0].name, None, problem)
        return [], False
    return found, True


def _stray_tables(root: Path, problems: _Problems) -> None:
    """Refuse a table-looking file at the top of the input folder that no table would read.

    Other entries there (notes, synth's ``truth/``) are not input and stay unread, but a
    ``*.csv`` or ``*.parquet`` file is never skipped silently: it is most likely a district's
    file put one folder too high, or a table file named in another case.
    """
    expected = {f"{table}{suffix}" for table in _FILE_TABLES for suffix in _SUFFIXES}
    try:
        names = sorted(e.name for e in os.scandir(root))
    except OSError as exc:
        problems.add(str(root), None, f"a readable folder ({exc.strerror or type(exc).__name__})")
        return
    for name in names:  # one per entry of the folder
        if Path(name).suffix.lower() not in _SUFFIXES or name in expected:
            continue
        if name.lower() in expected:
            if not os.path.lexists(root / name.lower()):  # (a case-insensitive disk finds it)
                problems.add(name, None, f"the name {name.lower()} (names are case-sensitive)")
        else:
            problems.add(name, None, "no table file at the top of the input folder other than "
                         "population.csv|parquet and relations.csv|parquet (files of incidents and "
                         "incident persons go in incidents/ and incident_persons/)")


def _read_head(path: Path) -> bytes:
    """The first bytes of a file, to recognise its format before a parser sees it."""
    with path.open("rb") as handle:
        return handle.read(_HEAD_BYTES)


def _not_text(head: bytes) -> str | None:
    """What a ``.csv`` file is when it is not UTF-8 text, from its first bytes; else None."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return f"a UTF-8 CSV file (this one is UTF-32: it starts with a UTF-32 byte-order mark); {_SAVE_AS_UTF8}"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return (f"a UTF-8 CSV file (this one is UTF-16, as Excel's \"Unicode-tekst\" writes: it "
                f"starts with a UTF-16 byte-order mark); {_SAVE_AS_UTF8}")
    if head.startswith(b"PAR1"):
        return "a CSV file (this is a Parquet file: rename it to end in .parquet)"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        return f"a CSV file (this is an Excel workbook, not text); {_SAVE_AS_UTF8}"
    if b"\x00" in head:
        return (f"a UTF-8 CSV file (this one holds zero bytes: UTF-16 without a byte-order mark, or "
                f"not text at all); {_SAVE_AS_UTF8}")
    if b"\r" in head and b"\n" not in head:
        return ("a CSV file whose lines end in a line feed (these end in a carriage return only, "
                "as classic Mac OS wrote); save it with Windows (CRLF) or Unix (LF) line endings")
    return None


def _header_separator(head: bytes) -> str:
    """The separator the header row uses: the most frequent of , ; tab | outside quotes."""
    line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    line = re.sub(_QUOTED, "", line)
    counts = {sep: line.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return "," if counts[best] == 0 or counts[","] >= counts[best] else best


def _not_utf8(path: Path) -> tuple[str, int] | None:
    """When the file is not UTF-8: the encoding it looks like, and the row of the first bad byte.

    The row counts lines (the header is row 0); it is the data row unless a quoted value
    spans lines before it.
    """
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start)
    try:
        data.decode("cp1252")
        looks = "Windows-1252 (Western European \"ANSI\"), as Danish Excel's \"CSV (semikolonsepareret)\" writes"
    except UnicodeDecodeError:
        looks = "Latin-1 (ISO 8859-1) or another single-byte encoding"
    if any(bytes([b]) in data for b in b"\xe6\xf8\xe5\xc6\xd8\xc5"):
        looks += "; its æ, ø and å are single bytes"
    return f"it is not UTF-8: it looks like {looks}", row


def _read_lines(path: Path) -> pl.DataFrame:
    """The file's lines as one text column ``line`` (Polars, no quoting, no splitting)."""
    return pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None,
                       infer_schema=False, empty_string_is_null=False,
                       schema={"line": pl.String}, truncate_ragged_lines=True, encoding="utf8")


def _record_fields(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per CSV record (the header first): its number of fields and whether it is blank.

    Lines are joined where a quoted value spans them, then counted with string expressions:
    commas outside quotes, plus one.
    """
    quotes = pl.col("line").str.count_matches('"', literal=True)
    lines = lines.with_columns(quotes=quotes)
    if lines["quotes"].sum() == 0:  # the usual case: no quoting at all, one record per line
        unquoted = pl.col("line")
    else:
        lines = lines.with_columns(inside=((pl.col("quotes").cum_sum() - pl.col("quotes")) % 2) == 1)
        if lines["inside"].any():  # a quoted value spans lines: a record is several lines
            lines = (lines.group_by((~pl.col("inside")).cum_sum().alias("record"), maintain_order=True)
                     .agg(pl.col("line").str.join("\n")))
        unquoted = pl.col("line").str.replace_all(_QUOTED, "")
    text = pl.col("line").str.strip_chars_end("\r")
    return lines.select(
        fields=unquoted.str.count_matches(",", literal=True) + 1,
        blank=text.str.strip_chars().str.len_bytes() == 0,
    )


def _header_problems(names: list[str], rel: str, problems: _Problems) -> bool:
    """Record every column name that appears twice; True when the header is usable."""
    if not any(names):
        problems.add(rel, None, "a header row of column names (the first line has none)")
        return False
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):  # one per column of the header
        if name:
            positions.setdefault(name, []).append(i + 1)
    ok = True
    for name, where in positions.items():
        if len(where) > 1:
            known = name in _KNOWN_COLUMNS  # any other name may be a cell of a data row
            columns = ", ".join(str(i) for i in where[:-1]) + f" and {where[-1]}"
            problems.add(rel, name if known else None,
                         f"each column name once in the header ("
                         f"{'it' if known else 'a name (not shown)'} appears in columns {columns}; "
                         "only one of them would be read)")
            ok = False
    return ok


def _read_csv(path: Path, rel: str, problems: _Problems) -> pl.DataFrame | None:
    """Read a CSV file as text columns named by its header, with ``_row`` (blank rows dropped).

    Refused, with the reason recorded: an empty file, another encoding or separator, a column
    name that appears twice, a row with another number of fields than the header.
    """
    head = _read_head(path)
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        problems.add(rel, None, "a header row (the file is empty)")
        return None
    not_text = _not_text(head)
    if not_text:
        problems.add(rel, None, not_text)
        return None
    separator = _header_separator(head)
    if separator != ",":
        encoding = _not_utf8(path)
        also = f"; also, {encoding[0]}" if encoding else ""
        problems.add(rel, None, f"comma-separated values (the file is separated by "
                     f"{_SEPARATOR_NAMES[separator]}, expected ','{also}); {_SAVE_AS_UTF8}")
        return None
    try:
        header = pl.read_csv(path, has_header=False, n_rows=1, infer_schema=False, encoding="utf8",
                             truncate_ragged_lines=True)
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8", truncate_ragged_lines=True)
        lines = _read_lines(path)
    except pl.exceptions.NoDataError:
        problems.add(rel, None, "a header row (the file is empty)")
        return None
    except pl.exceptions.PolarsError as exc:
        encoding = _not_utf8(path)
        if encoding is not None:
            problems.add(rel, None, f"a UTF-8 CSV file ({encoding[0]}); {_SAVE_AS_UTF8}", encoding[1])
        elif path.read_bytes().count(b'"') % 2:
            problems.add(rel, None, _UNBALANCED)
        else:  # the library's message may quote a line of data: never pass it on
            problems.add(rel, None, f"a CSV file with a header row and one record per line "
                         f"({type(exc).__name__})")
        return None
    names = [("" if v is None else str(v)).strip() for v in header.row(0)]
    if not _header_problems(names, rel, problems):
        return None
    width = len(names)
    data = _record_fields(lines).slice(1).with_row_index(_ROW, offset=1)
    if data.height != frame.height:
        problems.add(rel, None, _UNBALANCED)
        return None
    ragged = data.filter(~pl.col("blank") & (pl.col("fields") != width))
    for row, fields in ragged.head(PER_RULE_LIMIT).select(_ROW, "fields").iter_rows():
        problems.add(rel, None, f"{width} fields on every row, as in the header (this row has "
                     f"{fields}: a ',' too many or too few, or an unquoted ',' inside a value)", row)
    if ragged.height > PER_RULE_LIMIT:
        problems.add(rel, None, f"{width} fields on every row, as in the header "
                     f"({ragged.height - PER_RULE_LIMIT} more row(s) like this)")
    if ragged.height:
        return None
    renamed = {old: new or f"_unnamed_{i}" for i, (old, new) in enumerate(zip(frame.columns, names, strict=True))}
    frame = frame.rename(renamed)
    keep = [c for c in frame.columns if not c.startswith("_")]
    return (frame.select(keep).with_columns(data[_ROW].cast(pl.UInt32))
            .filter(~data["blank"]))


def _read_file(path: Path, rel: str, problems: _Problems) -> pl.DataFrame | None:
    """Read one CSV (all columns as text) or Parquet file; None after recording a problem.

    A CSV frame carries ``_row``, its 1-based data row (blank rows are dropped, not
    renumbered); for Parquet the row is the position.
    """
    try:
        if path.suffix.lower() == ".csv":
            return _read_csv(path, rel, problems)
        frame = pl.read_parquet(path)
        return frame.select([c for c in frame.columns if not c.startswith("_")])
    except OSError as exc:
        problems.add(rel, None, f"a readable file ({exc.strerror or type(exc).__name__})")
    except pl.exceptions.PolarsError as exc:
        # The library's message may quote a line of data: never pass it on.
        problems.add(rel, None, f"a readable Parquet file ({type(exc).__name__})")
    return None


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


def _normalise(table: str, frame: pl.DataFrame, rel: str, index: int,
               problems: _Problems) -> pl.DataFrame | None:
    """One file's frame in the contract's types, with ``_file``, ``_row`` and per-row checks run."""
    specs = _RAW_SPECS[table]
    missing = [s.name for s in specs if s.required and s.name not in frame.columns]
    for name in missing:
        problems.add(rel, name, f"a column '{name}' ({_describe_header(frame.columns, name)})")
    row = pl.col(_ROW) if _ROW in frame.columns else pl.int_range(1, pl.len() + 1, dtype=pl.UInt32)
    exprs: list[pl.Expr] = [pl.lit(index, pl.UInt32).alias(_FILE), row.alias(_ROW)]
    checks: list[_Check] = []
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
            checks.append(_Check(spec.name, "a value (this column may not be empty)",
                                 pl.col(f"_raw_{spec.name}").is_null()))
        checks.extend(own)
    if missing:
        return None
    if table == "incidents":
        checks.append(_Check("incident_code", "an incident_code or an offence_code (both are empty)",
                             pl.col("_raw_incident_code").is_null() & pl.col("_raw_offence_code").is_null()))
    out = _apply_stages(frame.select(exprs), stages)
    problems.scan(out, checks)
    norms = [c for c in out.columns if c.startswith("_norm_")]
    return out.select([_FILE, _ROW, *[s.name for s in specs], *norms])


def _read_table(root: Path, table: str, problems: _Problems,
                files: list[Path], digests: dict[str, str]) -> tuple[pl.DataFrame | None, bool]:
    """All files of a table, concatenated; ``(frame, complete)``."""
    frames: list[pl.DataFrame] = []
    paths, complete = _table_files(root, table, problems)
    for path in paths:
        rel = _rel(path, root)
        index = len(problems.names)
        problems.names.append(rel)
        try:
            frame = _read_file(path, rel, problems)
            if frame is not None:
                digests[rel] = _sha256(path)
                files.append(path)
        except OSError as exc:  # a file that vanished or became unreadable while we read it
            problems.add(rel, None, f"a readable file ({exc.strerror or type(exc).__name__})")
            frame = None
        normalised = None if frame is None else _normalise(table, frame, rel, index, problems)
        if normalised is None:
            complete = False
        else:
            frames.append(normalised)
    if not frames:
        return None, False
    return pl.concat(frames, how="vertical"), complete


def _cross_checks(tables: dict[str, pl.DataFrame | None], complete: dict[str, bool],
                  problems: _Problems) -> None:
    """Rules that span rows and files: uniqueness and references."""
    incidents = tables.get("incidents")
    keyed = pl.col("district").is_not_null() & pl.col("incident_id").is_not_null()
    if incidents is not None:
        problems.scan(incidents, [_Check(
            "incident_id", "a journal number unique within its district (this one appeared "
            "earlier; value not shown)",
            keyed & ~pl.struct("district", "incident_id").is_first_distinct())])
    persons = tables.get("incident_persons")
    if persons is not None and incidents is not None and complete["incidents"]:
        # Only the key columns (and the row's position) are carried: no copy of names or CPR numbers.
        known = incidents.select("district", "incident_id").filter(keyed).unique()
        orphans = (persons.select(_FILE, _ROW, "district", "incident_id").filter(keyed)
                   .join(known, on=["district", "incident_id"], how="anti"))
        problems.scan(orphans, [_Check(
            "incident_id", "an incident that exists in incidents/ for the same district "
            "(none found; value not shown)", pl.lit(True))])
    population = tables.get("population")
    if population is not None:
        norm = pl.col("_norm_cpr")
        problems.scan(population, [_Check(
            "cpr", "each person once in the population extract (this CPR number appeared "
            "earlier; value not shown)",
            norm.is_not_null() & ~norm.cast(pl.UInt64).is_first_distinct())])
    relations = tables.get("relations")
    if relations is not None:
        problems.scan(relations, [_Check(
            "adult_cpr", "an adult other than the child (child_cpr and adult_cpr are the same "
            "person; value not shown)",
            pl.col("_norm_child_cpr") == pl.col("_norm_adult_cpr"))])


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
                     problems: _Problems) -> None:
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


def read_raw(input_dir: Path, *, absent_districts: Collection[str] = ()) -> RawExtracts:
    """Read and validate raw extracts laid out as in DESIGN.md §3.

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
    problems = _Problems([], [])
    files: list[Path] = []
    digests: dict[str, str] = {}
    tables: dict[str, pl.DataFrame | None] = {}
    complete: dict[str, bool] = {}
    with _withheld_library_messages(f"validating the extracts in {root}"):
        _stray_tables(root, problems)
        for table in (*_FOLDER_TABLES, *_FILE_TABLES):
            tables[table], complete[table] = _read_table(root, table, problems, files, digests)
        _cross_checks(tables, complete, problems)
        per_district = _rows_per_district(tables)
        if complete["incidents"]:
            _district_checks(per_district["incidents"], absent, problems)
    problems.raise_if_any()
    out = {
        name: frame.drop([c for c in frame.columns if c.startswith("_")])
        for name, frame in tables.items()
        if frame is not None
    }
    return RawExtracts(
        incidents=out["incidents"],
        incident_persons=out["incident_persons"],
        population=out["population"],
        relations=out["relations"],
        files=tuple(files),
        digests=digests,
        rows={name: frame.height for name, frame in out.items()},
        rows_per_district=per_district,
    )
