"""The reading machinery shared by the raw extracts and the hub extract.

:mod:`socialsearch.station.extracts` (the raw contract) and :mod:`socialsearch.hub_extract` (the
hub layout) both read tables through these pieces: one :class:`Problems` collector that gathers
every contract violation before anything is raised, :class:`Check` (one rule over a parsed frame,
evaluated as a whole-column expression), :func:`read_file` (a CSV or Parquet file read once, with
its bounds checked first), :func:`sha256_file` and :func:`withheld_library_messages`.

A problem names file, position and column, never a cell: a CSV position is the file's line as a
person counts it in an editor (the header is line 1, so the first data row is line 2); a Parquet
position is the 1-based row.

Bounds on CSV input: every line, the header included, is at most :data:`MAX_LINE_BYTES`, and
every value at most :data:`MAX_FIELD_BYTES`. Lines, and fields far over the bound (a quoted value
spanning lines), are measured while the file is read in blocks of :data:`BLOCK_BYTES`, before
any parser sees it, so that a file with one endless line or value is refused in bounded memory;
a value just over the bound is found after parsing.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import re
import stat
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import InputError, InputProblem

__all__ = [
    "BLOCK_BYTES",
    "FILE",
    "MAX_FIELD_BYTES",
    "MAX_LINE_BYTES",
    "PER_RULE_LIMIT",
    "ROW",
    "SUFFIXES",
    "Check",
    "Problems",
    "entry_problem",
    "positions",
    "read_file",
    "rel_path",
    "sha256_file",
    "withheld_library_messages",
]

#: problems reported per (file, column, rule); more are summarised in one line
PER_RULE_LIMIT = 20

SUFFIXES = (".csv", ".parquet")
ROW = "_row"
FILE = "_file"

#: bytes read at a time when a file is hashed or scanned for its bounds (1 MiB)
BLOCK_BYTES = 1 << 20
#: the longest line a CSV file may hold, the header included (1 MiB)
MAX_LINE_BYTES = 1 << 20
#: the longest field a CSV file may hold (64 KiB; a name, a code or a date is far shorter)
MAX_FIELD_BYTES = 1 << 16


@contextmanager
def withheld_library_messages(what: str) -> Iterator[None]:
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


@dataclass(frozen=True)
class Check:
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


def describe_shape(length: int, digits: bool, letters: bool, spaces: bool, punct: str,
                    other: bool) -> str:
    """``a 10-character value of digits and '-'``: what a value looks like, not what it is.

    Examples
    --------
    >>> describe_shape(11, True, False, False, "-", False)
    "an 11-character value of digits and '-'"
    >>> describe_shape(6, False, True, False, "", False)
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


def positions(frame: pl.DataFrame, file: int | None) -> list[pl.Expr]:
    """``_file`` and ``_row`` of ``frame``: its own columns, or (where it lacks one and ``file``,
    its file's index, is given) made for one file's rows in order (``_row``: position plus one)."""
    def one(column: str, made: pl.Expr) -> pl.Expr:
        return pl.col(column) if column in frame.columns or file is None else made.alias(column)

    return [one(FILE, pl.lit(file, pl.UInt32)), one(ROW, pl.int_range(1, pl.len() + 1, dtype=pl.UInt32))]


@dataclass
class Problems:
    """Every contract violation found, raised together by :meth:`raise_if_any`.

    ``names`` maps a file index (the ``_file`` column of a frame) to the file's relative path;
    ``csv`` holds the paths whose positions are lines of text (reported as ``line N``), every
    other file's positions are rows (``row N``).
    """

    items: list[InputProblem] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    csv: set[str] = field(default_factory=set)

    def add(self, file: str, column: str | None, expected: str, row: int | None = None,
            value: str | None = None) -> None:
        """Record one problem; ``row`` is the file's line for a CSV file, else the 1-based row."""
        if file in self.csv:
            self.items.append(InputProblem(file, column, expected, None, value, line=row))
        else:
            self.items.append(InputProblem(file, column, expected, row, value))

    def scan(self, frame: pl.DataFrame, checks: Iterable[Check], file: int | None = None) -> None:
        """Record the first rows breaking each check.

        ``frame`` has ``_file`` and ``_row``; or it is one file's rows in order, and ``file``
        is that file's index: ``_file`` and ``_row`` (the position plus one) missing from it are
        made only for a check that some row breaks. Every check is one whole-column expression,
        evaluated once for all checks together (one ``select``); only a check that some row
        breaks costs more. Where a check names a column to ``show``, the problem carries the
        shape of that column's value (computed in Polars; the value never reaches Python).
        """
        checks = list(checks)
        if not checks or frame.height == 0:
            return
        masks = frame.select([c.bad.fill_null(False).alias(f"c{i}") for i, c in enumerate(checks)])
        counts = masks.sum().row(0)
        for i, (check, count) in enumerate(zip(checks, counts, strict=True)):
            if not count:
                continue
            cols = positions(frame, file) + (
                [pl.col(check.show)] if check.show else [])
            hits = frame.select(cols).filter(masks[f"c{i}"])
            per_file = hits.group_by(FILE, maintain_order=True).len()
            for file_index, rows in per_file.iter_rows():  # one per file with a problem
                first = hits.filter(pl.col(FILE) == file_index).head(PER_RULE_LIMIT)
                if check.show:
                    first = first.with_columns(_shape_exprs(check.show)).drop(check.show)
                name = self.names[file_index]
                for rec in first.iter_rows(named=True):  # at most PER_RULE_LIMIT
                    shape = None
                    if check.show and rec["_shape_len"]:
                        shape = describe_shape(*(rec[c] for c in _SHAPE))
                    self.add(name, check.column, check.expected, rec[ROW], shape)
                if rows > PER_RULE_LIMIT:
                    self.add(name, check.column,
                             f"{check.expected} ({rows - PER_RULE_LIMIT} more row(s) like this)")

    def raise_if_any(self) -> None:
        """Raise every problem, grouped by file in reading order, then by line or row."""
        if self.items:
            order = {name: i for i, name in enumerate(self.names)}

            def where(p: InputProblem) -> tuple[int, bool, int]:
                at = p.line if p.line is not None else p.row
                return order.get(p.file, -1), at is None, at or 0

            raise InputError(sorted(self.items, key=where))


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file's bytes (hex), read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def rel_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (as in messages), or the whole path outside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)



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


def entry_problem(path: Path, *, in_folder: bool = True) -> str | None:
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


def _blocks(path: Path) -> Iterator[bytes]:
    """The file's bytes in blocks of :data:`BLOCK_BYTES` (one block in memory at a time)."""
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(BLOCK_BYTES), b"")


def _long_line(path: Path) -> tuple[int, int] | None:
    """``(line, bytes so far)`` of the first line longer than :data:`MAX_LINE_BYTES`; None when none is.

    Read in blocks: the positions of the line feeds in each block are found by NumPy, so a file
    of one endless line is refused after ``limit`` bytes, not after it was read whole.
    """
    limit = MAX_LINE_BYTES
    lines = 0  # line feeds before the current block
    current = 0  # bytes of the unfinished line before the current block
    for block in _blocks(path):  # one per MiB of the file
        feeds = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
        if len(feeds) == 0:
            current += len(block)
            if current > limit:
                return lines + 1, current
            continue
        lengths = np.diff(feeds, prepend=-1) - 1  # each line ended in this block, without its '\n'
        lengths[0] += current
        over = np.flatnonzero(lengths > limit)
        if len(over):
            return lines + int(over[0]) + 1, int(lengths[over[0]])
        lines += len(feeds)
        current = len(block) - int(feeds[-1]) - 1
        if current > limit:
            return lines + 1, current
    return None


def _long_field(path: Path) -> tuple[int, int] | None:
    """``(line, column)`` where the first field longer than twice :data:`MAX_FIELD_BYTES` starts
    (its line in the file, its 0-based position in the record); None when none is.

    Read in blocks, with quotes: a separator is a ',' or a line feed outside a quoted value, so a
    quoted value spanning lines is one field. A raw field over twice the bound cannot hold a
    value within it (a quote is written as two), so the file is refused before it is parsed; a
    value just over the bound is found after parsing (:func:`_long_fields`).
    """
    limit = 2 * MAX_FIELD_BYTES + 2
    quotes = lines = 0  # '"' and line feeds before the current block
    length, start_line, column = 0, 1, 0  # the field that is open at the block's start
    for block in _blocks(path):  # one per MiB of the file
        data = np.frombuffer(block, dtype=np.uint8)
        feed = data == 0x0A
        outside = (np.cumsum(data == 0x22) + quotes) % 2 == 0
        ends_record = feed & outside
        seps = np.flatnonzero(((data == 0x2C) & outside) | ends_record)
        feeds_before = np.cumsum(feed)  # line feeds up to and including each byte
        if len(seps):
            lengths = np.diff(seps, prepend=-1) - 1  # each field closed in this block
            lengths[0] += length
            over = np.flatnonzero(lengths > limit)
            index = np.arange(len(seps))
            last_end = np.maximum.accumulate(np.where(ends_record[seps], index, -1))
            after = np.where(last_end >= 0, index - last_end, column + index + 1)  # column after each separator
            after[ends_record[seps]] = 0
            if len(over):
                i = int(over[0])
                if i == 0:
                    return start_line, column
                return lines + int(feeds_before[seps[i - 1]]) + 1, int(after[i - 1])
            length = len(data) - int(seps[-1]) - 1
            start_line, column = lines + int(feeds_before[seps[-1]]) + 1, int(after[-1])
        else:
            length += len(data)
        if length > limit:
            return start_line, column
        quotes += int(np.count_nonzero(data == 0x22))
        lines += int(feeds_before[-1]) if len(data) else 0
    return None


def _long_quoted(path: Path) -> bool:
    """Whether a quoted value (from its opening to its closing quote, ``""`` inside included)
    is longer than twice :data:`MAX_FIELD_BYTES`: one comparison per byte, in blocks.

    The cheap first look that :func:`_long_field` follows up, only when True, to find the line
    and column (a file without quotes costs one comparison per byte here and nothing more).
    """
    limit = 2 * MAX_FIELD_BYTES + 2
    offset = 0
    pending: int | None = None  # where a value opened by a quote that is still open began
    last_close = -2  # the previous closing quote (a '"' right after it is an escaped quote)
    group_start = -1  # where the value holding the previous closing quote opened
    for block in _blocks(path):  # one per MiB of the file
        quotes = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x22) + offset
        if pending is not None:
            quotes = np.concatenate([[pending], quotes])
        opens, closes = quotes[0::2], quotes[1::2]
        pending = int(opens[-1]) if len(opens) > len(closes) else None
        opens = opens[: len(closes)]
        if len(closes):
            joined = np.concatenate([[opens[0] == last_close + 1], opens[1:] == closes[:-1] + 1])
            starts = np.maximum.accumulate(np.where(joined, -1, np.arange(len(opens))))
            begin = np.where(starts >= 0, opens[np.maximum(starts, 0)], group_start)
            if bool(np.any(closes - begin > limit)):
                return True
            last_close, group_start = int(closes[-1]), int(begin[-1])
        offset += len(block)
        if pending is not None and offset - pending > limit:
            return True
    return False


def _header_names(head: bytes) -> list[str]:
    """The column names of the header line in ``head`` (RFC 4180 quoting)."""
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r")
    return [name.strip() for name in next(csv.reader([first]), [])]


def _not_utf8(path: Path) -> tuple[str, int] | None:
    """When the file is not UTF-8: the encoding it looks like, and the line of the first bad byte.

    The line is the file's line as an editor counts it (the header is line 1). Read in blocks.
    """
    lines, line, carry = 0, None, b""
    single_byte_letters = False
    undefined_in_cp1252 = False
    for block in _blocks(path):  # one per MiB of the file
        if line is None:
            data, carry = carry + block, b""  # a character cut by the block's end, then this block
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data":  # only at the end: finish it in the next block
                    carry = data[exc.start:]
                else:
                    line = lines + data.count(b"\n", 0, exc.start) + 1
        lines += block.count(b"\n")
        single_byte_letters |= any(bytes([b]) in block for b in b"\xe6\xf8\xe5\xc6\xd8\xc5")
        undefined_in_cp1252 |= any(bytes([b]) in block for b in b"\x81\x8d\x8f\x90\x9d")
    if line is None and carry:
        line = lines + 1
    if line is None:
        return None
    if undefined_in_cp1252:
        looks = "Latin-1 (ISO 8859-1) or another single-byte encoding"
    else:
        looks = "Windows-1252 (Western European \"ANSI\"), as Danish Excel's \"CSV (semikolonsepareret)\" writes"
    if single_byte_letters:
        looks += "; its æ, ø and å are single bytes"
    return f"it is not UTF-8: it looks like {looks}", line


def _odd_quotes(path: Path) -> bool:
    """Whether the file holds an odd number of '"' (a quoted value that is never closed)."""
    return sum(block.count(b'"') for block in _blocks(path)) % 2 == 1


def _read_lines(path: Path) -> pl.DataFrame:
    """The file's lines as one text column ``line`` (Polars, no quoting, no splitting)."""
    return pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None,
                       infer_schema=False, empty_string_is_null=False,
                       schema={"line": pl.String}, truncate_ragged_lines=True, encoding="utf8")


def _record_fields(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per CSV record (the header first): the file line it starts on (``line``, the
    header's is 1), its number of fields and whether it is blank.

    Lines are joined where a quoted value spans them, then counted with string expressions:
    commas outside quotes, plus one.
    """
    quotes = pl.col("line").str.count_matches('"', literal=True)
    lines = lines.with_columns(quotes=quotes).with_row_index(ROW, offset=1)
    if lines["quotes"].sum() == 0:  # the usual case: no quoting at all, one record per line
        unquoted = pl.col("line")
    else:
        lines = lines.with_columns(inside=((pl.col("quotes").cum_sum() - pl.col("quotes")) % 2) == 1)
        if lines["inside"].any():  # a quoted value spans lines: a record is several lines
            lines = (lines.group_by((~pl.col("inside")).cum_sum().alias("record"), maintain_order=True)
                     .agg(pl.col(ROW).first(), pl.col("line").str.join("\n")))
        unquoted = pl.col("line").str.replace_all(_QUOTED, "")
    text = pl.col("line").str.strip_chars_end("\r")
    return lines.select(
        pl.col(ROW).cast(pl.UInt32),
        fields=unquoted.str.count_matches(",", literal=True) + 1,
        blank=text.str.strip_chars().str.len_bytes() == 0,
    )


def _header_problems(names: list[str], rel: str, problems: Problems, known: Collection[str]) -> bool:
    """Record every column name that appears twice; True when the header is usable.

    A repeated name is shown only when it is one of ``known`` (any other may be a data cell).
    """
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
            shown = name in known
            columns = ", ".join(str(i) for i in where[:-1]) + f" and {where[-1]}"
            problems.add(rel, name if shown else None,
                         f"each column name once in the header ("
                         f"{'it' if shown else 'a name (not shown)'} appears in columns {columns}; "
                         "only one of them would be read)")
            ok = False
    return ok


def _kib(size: int) -> str:
    return f"{size // 1024:,} KiB" if size < 1 << 20 else f"{size >> 20:,} MiB"


def _bounds(path: Path, rel: str, problems: Problems, head: bytes, known: Collection[str]) -> bool:
    """Refuse a file with a line longer than :data:`MAX_LINE_BYTES`, or a field (a quoted value
    spanning lines) far longer than :data:`MAX_FIELD_BYTES`, found in blocks; True when none is."""
    long = _long_line(path)
    if long is None:
        field = _long_field(path) if _long_quoted(path) else None
        if field is None:
            return True
        line, index = field
        names = _header_names(head)
        name = names[index] if index < len(names) and names[index] in known else None
        problems.add(rel, name, f"a value of at most {_kib(MAX_FIELD_BYTES)} (this one is longer)", line)
        return False
    line, size = long
    if line == 1:
        problems.add(rel, None, f"a header row within the first {_kib(MAX_LINE_BYTES)} of the file (the "
                     f"first line is longer: more than {size:,} bytes without a line break); is this "
                     "a CSV file?")
    else:
        problems.add(rel, None, f"lines of at most {_kib(MAX_LINE_BYTES)} (this line has more than {size:,} "
                     f"bytes; a value is at most {_kib(MAX_FIELD_BYTES)})", line)
    return False


def _long_fields(frame: pl.DataFrame, rel: str, problems: Problems, known: Collection[str]) -> bool:
    """Refuse values longer than :data:`MAX_FIELD_BYTES`; True when none is.

    One whole-column maximum per column; only a column over the bound is searched for lines.
    """
    values = [c for c in frame.columns if c != ROW]
    lengths = frame.select(pl.col(values).str.len_bytes().max()).row(0)
    ok = True
    for column, longest in zip(values, lengths, strict=True):  # one per column of the header
        if longest is None or longest <= MAX_FIELD_BYTES:
            continue
        ok = False
        name = column if column in known else None  # another name may be a data cell
        hits = frame.filter(pl.col(column).str.len_bytes() > MAX_FIELD_BYTES).get_column(ROW)
        for line in hits.head(PER_RULE_LIMIT).to_list():  # at most PER_RULE_LIMIT
            problems.add(rel, name, f"a value of at most {_kib(MAX_FIELD_BYTES)} (this one is longer)", line)
        if hits.len() > PER_RULE_LIMIT:
            problems.add(rel, name, f"a value of at most {_kib(MAX_FIELD_BYTES)} "
                         f"({hits.len() - PER_RULE_LIMIT} more line(s) like this)")
    return ok


def _read_csv(path: Path, rel: str, problems: Problems, known: Collection[str]) -> pl.DataFrame | None:
    """Read a CSV file as text columns named by its header, with ``_row`` (blank lines dropped).

    ``_row`` is the line of the file each record starts on (the header is line 1). Refused,
    with the reason recorded: an empty file, another encoding or separator, a line or a value
    longer than the bounds, a column name that appears twice, a record with another number of
    fields than the header.
    """
    problems.csv.add(rel)
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
    if not _bounds(path, rel, problems, head, known):
        return None
    try:
        lines = _read_lines(path)
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8", truncate_ragged_lines=True)
        header = pl.read_csv(path, has_header=False, n_rows=1, infer_schema=False, encoding="utf8",
                             truncate_ragged_lines=True)
    except pl.exceptions.NoDataError:
        problems.add(rel, None, "a header row (the file is empty)")
        return None
    except pl.exceptions.PolarsError as exc:
        encoding = _not_utf8(path)
        if encoding is not None:
            problems.add(rel, None, f"a UTF-8 CSV file ({encoding[0]}); {_SAVE_AS_UTF8}", encoding[1])
        elif _odd_quotes(path):
            problems.add(rel, None, _UNBALANCED)
        else:  # the library's message may quote a line of data: never pass it on
            problems.add(rel, None, f"a CSV file with a header row and one record per line "
                         f"({type(exc).__name__})")
        return None
    names = [("" if v is None else str(v)).strip() for v in header.row(0)]
    if not _header_problems(names, rel, problems, known):
        return None
    width = len(names)
    data = _record_fields(lines).slice(1)
    del lines
    if data.height != frame.height:
        problems.add(rel, None, _UNBALANCED)
        return None
    ragged = data.filter(~pl.col("blank") & (pl.col("fields") != width))
    for line, fields in ragged.head(PER_RULE_LIMIT).select(ROW, "fields").iter_rows():  # at most 20
        problems.add(rel, None, f"{width} fields on every row, as in the header (this row has "
                     f"{fields}: a ',' too many or too few, or an unquoted ',' inside a value)", line)
    if ragged.height > PER_RULE_LIMIT:
        problems.add(rel, None, f"{width} fields on every row, as in the header "
                     f"({ragged.height - PER_RULE_LIMIT} more row(s) like this)")
    if ragged.height:
        return None
    renamed = {old: new or f"_unnamed_{i}" for i, (old, new) in enumerate(zip(frame.columns, names, strict=True))}
    frame = frame.rename(renamed).with_columns(data[ROW]).filter(~data["blank"])
    if not _long_fields(frame, rel, problems, known):
        return None
    return frame.select([c for c in frame.columns if not c.startswith("_") or c == ROW])


def read_file(path: Path, rel: str, problems: Problems, *, columns: Collection[str] | None = None,
              known: Collection[str] = ()) -> pl.DataFrame | None:
    """Read one CSV (all columns as text) or Parquet file once; None after recording a problem.

    A CSV frame carries ``_row``, the line of the file each record starts on (the header is
    line 1; blank lines are dropped); a Parquet file's row is its position. Parquet is scanned
    lazily with only ``columns`` projected (every column not starting with ``_`` when None);
    a CSV file is first checked against its bounds in blocks, then read whole. ``known`` are the column names a
    message may show (a header's other names may be data).
    """
    try:
        if path.suffix.lower() == ".csv":  # read whole (the parser reads every field anyway)
            return _read_csv(path, rel, problems, known)
        names = pl.read_parquet_schema(path).keys()
        wanted = [c for c in names if not c.startswith("_") and (columns is None or c in columns)]
        return pl.scan_parquet(path).select(wanted).collect()
    except OSError as exc:
        problems.add(rel, None, f"a readable file ({exc.strerror or type(exc).__name__})")
    except pl.exceptions.PolarsError as exc:
        # The library's message may quote a line of data: never pass it on.
        problems.add(rel, None, f"a readable Parquet file ({type(exc).__name__})")
    return None
