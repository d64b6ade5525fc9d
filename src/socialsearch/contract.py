"""The data contract, defined once: time zone, vocabularies, schemas, ages, CPR-like text.

Every other module imports these names; none defines its own copy. The raw input contract, the
hub extract and the output are described in ``docs/data-contract.md``.

Examples
--------
>>> import polars as pl
>>> from datetime import date
>>> pl.DataFrame({"b": [date(2008, 11, 22), date(2008, 11, 23)]}).select(
...     age_on(pl.col("b"), date(2026, 11, 22)))["b"].to_list()
[18, 17]
>>> contains_cpr_like("ring 0101901234"), contains_cpr_like("sag 01.01.90 1234"), contains_cpr_like("uge 47")
(True, True, False)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any, Final
from zoneinfo import ZoneInfo

import polars as pl

from ._terminal import unsafe_class

__all__ = [
    "CPR_STATUSES",
    "DATETIME",
    "DECISIONS",
    "DECISIONS_FILE_MAX_BYTES",
    "DECISIONS_SCHEMA",
    "HUB_SCHEMA",
    "ISO_WEEK_PATTERN",
    "KINDS",
    "LINKS",
    "RAW_SCHEMA",
    "RELATIONS",
    "RESOLVED_BY",
    "ROLES",
    "TIME_ZONE",
    "TZ",
    "age_on",
    "contains_cpr_like",
    "cpr_like_many",
    "decision_problems",
    "iso_week",
    "to_local",
]

# --------------------------------------------------------------------------- time
TIME_ZONE: Final = "Europe/Copenhagen"
"""Every date-time of the contract is local time here (naive input means this zone)."""
TZ: Final = ZoneInfo(TIME_ZONE)
DATETIME: Final = pl.Datetime("us", TIME_ZONE)


def to_local(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A date-time column of type ``dtype`` as :data:`DATETIME`.

    The one naive→local rule: a naive value is local Copenhagen time; an hour repeated in
    October is read as the first (summer-time) one; a local time skipped in March becomes null
    (callers that validate input flag it). A value with another zone is converted.
    """
    if not isinstance(dtype, pl.Datetime):
        return expr
    if dtype.time_zone is None:
        expr = expr.dt.replace_time_zone(TIME_ZONE, ambiguous="earliest", non_existent="null")
    elif dtype.time_zone != TIME_ZONE:
        expr = expr.dt.convert_time_zone(TIME_ZONE)
    return expr.dt.cast_time_unit("us")


# --------------------------------------------------------------------------- vocabularies
ROLES: Final[tuple[str, ...]] = ("suspect", "victim", "witness", "involved")
"""A person's role on a police event."""
RELATIONS: Final[tuple[str, ...]] = ("mother", "father", "custodian", "household")
"""An adult's relation to a child in the relations extract."""
LINKS: Final[tuple[str, ...]] = ("self", *RELATIONS)
"""How a signal's person is tied to the child: the child itself, or a relation."""
KINDS: Final[tuple[str, ...]] = ("offence", "incident")
"""A catalogue code is a gerningskode (offence) or a hændelseskode (incident)."""
CPR_STATUSES: Final[tuple[str, ...]] = ("valid", "invalid", "missing")
RESOLVED_BY: Final[tuple[str, ...]] = ("cpr", "probabilistic")
"""How an incident person's pseudonym was found: a valid CPR number, or resolution at the station."""
DECISIONS: Final[tuple[str, ...]] = ("approve", "dismiss")
"""A municipality's decision on a draft."""


# --------------------------------------------------------------------------- schemas
_S, _B = pl.String(), pl.Binary()

RAW_SCHEMA: Final[dict[str, dict[str, pl.DataType]]] = {
    "incidents": {
        "district": _S, "incident_id": _S, "occurred_at": DATETIME, "registered_at": DATETIME,
        "municipality": _S, "incident_code": _S, "offence_code": _S,
    },
    "incident_persons": {
        "district": _S, "incident_id": _S, "cpr": _S, "role": _S,
        "given_name": _S, "surname": _S, "birth_date": pl.Date(),
    },
    "population": {"cpr": _S, "municipality": _S, "given_name": _S, "surname": _S},
    "relations": {"child_cpr": _S, "adult_cpr": _S, "relation": _S},
}
"""The raw input contract (``docs/data-contract.md``): each table's columns and their types once read.
``extracts.read_raw`` validates text or Parquet into these types; ``synth`` writes them."""

HUB_SCHEMA: Final[dict[str, dict[str, pl.DataType]]] = {
    "events": {"event_ref": _S, "in_week": pl.Boolean(), "event_sealed": _B},
    "signals": {"child": _S, "event_ref": _S, "person": _S, "details": _B},
    "children": {"person": _S, "municipality": _S, "details": _B, "statistics": _B},
    "persons": {"person": _S, "person_sealed": _B},
    "event_details": {"event_ref": _S, "recipient": _S, "details": _B},
}
"""The hub extract (version 4, ``docs/data-contract.md``): every column it holds, with its type.

Only what the history step of the weekly rule reads: who is on which event for which child
(pseudonyms), whether the event was registered in the searched week, and each child's
municipality (routing). Codes, roles, relation types, districts, weeks and the rule's outcome
are in ``details``, sealed for the receiving municipality (:mod:`socialsearch.crypto.municipal`;
null where it has no key); ``statistics`` is sealed for the key custodian; ``*_sealed`` are the
raw identifiers sealed for the key custodian (the vault)."""

ISO_WEEK_PATTERN: Final = r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$"
"""An ISO week as text, ``2026-W47`` (the hub's grain of a registration time)."""


def iso_week(expr: pl.Expr) -> pl.Expr:
    """The ISO week (``"2026-W47"``) of a :data:`DATETIME` column, by its local date.

    Examples
    --------
    >>> from datetime import datetime
    >>> frame = pl.DataFrame({"t": [datetime(2026, 11, 22, 23, 59), datetime(2027, 1, 1, 12)]})
    >>> frame.select(iso_week(pl.col("t").dt.replace_time_zone(TIME_ZONE)))["t"].to_list()
    ['2026-W47', '2026-W53']
    """
    return expr.dt.iso_year().cast(pl.String) + pl.lit("-W") + expr.dt.week().cast(pl.String).str.zfill(2)


# --------------------------------------------------------------------------- ages
def age_on(birth_date: pl.Expr | str, day: date) -> pl.Expr:
    """Completed years on ``day`` (``Int64``); a 29 February birthday is reached on 1 March.

    Examples
    --------
    >>> frame = pl.DataFrame({"b": [date(2008, 2, 29)]})
    >>> [frame.select(age_on("b", d)).item() for d in (date(2026, 2, 28), date(2026, 3, 1))]
    [17, 18]
    """
    col = pl.col(birth_date) if isinstance(birth_date, str) else birth_date
    month_day = col.dt.month().cast(pl.Int32) * 100 + col.dt.day().cast(pl.Int32)
    not_yet = (month_day > day.month * 100 + day.day).cast(pl.Int64)
    # written from the column outwards, so the result keeps the column's name
    return (col.dt.year().cast(pl.Int64) * -1 + day.year) - not_yet


# --------------------------------------------------------------------------- CPR-like text
# Digits with anything a person might type between them: spaces, dots, slashes, dashes of
# every kind. Ten digits in such a run, glued to text or not, may be a CPR number.
_SEPARATED_DIGITS = re.compile(r"\d(?:[\s.\-/\u2010-\u2015\u2212]*\d)+")
_TEN_DIGITS = re.compile(r"\d{10}")


def contains_cpr_like(text: str) -> bool:
    """Whether ``text`` holds something that could be a CPR number (free text must not).

    True for ten digits in a row, and for any ten consecutive digits of a digit run with
    separators (``01 01 90-1234``, ``010190–1234``, ``01.01.90.1234``) that the project's own
    normaliser (:func:`socialsearch.identifiers.normalise_cpr`) accepts as a CPR number.
    """
    return cpr_like_many([text])[0]


def cpr_like_many(texts: Sequence[str]) -> list[bool]:
    """:func:`contains_cpr_like` of each text, with one normaliser pass over all of them.

    Examples
    --------
    >>> cpr_like_many(["ring 0101901234", "uge 47", "sag 01.01.90 1234", ""])
    [True, False, True, False]
    """
    found = [_TEN_DIGITS.search(t) is not None for t in texts]
    owners: list[int] = []
    windows: list[str] = []
    for i, text in enumerate(texts):
        if found[i]:
            continue
        for run in _SEPARATED_DIGITS.findall(text):
            digits = re.sub(r"\D", "", run)
            for j in range(len(digits) - 9):
                owners.append(i)
                windows.append(digits[j : j + 10])
    if not windows:
        return found
    from .identifiers import normalise_cpr  # late: identifiers imports this module

    frame = pl.DataFrame({"i": owners, "w": windows}, schema={"i": pl.Int64, "w": pl.String})
    hits = frame.filter(normalise_cpr("w").is_not_null())["i"].unique().to_list()
    for i in hits:
        found[i] = True
    return found


# --------------------------------------------------------------------------- decisions
DECISIONS_FILE_MAX_BYTES: Final = 16 * 1024 * 1024
"""The largest ``decisions.json`` ``review --import`` reads (16 MiB: 20,000 decisions with
reasons of several hundred characters each)."""

_REASON_MAX = 2000
_REASON_ALLOWED = f"^[^{unsafe_class(allow=chr(10))[1:-1]}]*$"  # line breaks are a textarea's own

DECISIONS_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["format", "version", "week", "municipality", "decisions"],
    "additionalProperties": False,
    "maxDepth": 3,
    "properties": {
        "format": {"const": "socialsearch-decisions"},
        "version": {"const": 1},
        "week": {"type": "string", "pattern": r"^\d{4}-W\d{2}$"},
        "municipality": {"type": "string", "pattern": r"^\d{3}$"},
        "decisions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["draft_id", "decision", "reason", "reviewer"],
                "additionalProperties": False,
                "properties": {
                    "draft_id": {"type": "string", "pattern": r"^D[0-9A-Za-z-]{1,95}$"},
                    "decision": {"enum": list(DECISIONS)},
                    "reason": {"type": "string", "minLength": 1, "maxLength": _REASON_MAX,
                               "pattern": _REASON_ALLOWED},
                    "reviewer": {"type": "string", "minLength": 2, "maxLength": 6, "pattern": "^[A-ZÆØÅ]{2,6}$"},
                },
            },
        },
    },
}
"""The ``decisions.json`` the caseworker's page writes and ``review --import`` reads, as a JSON
Schema (draft 2020-12 keywords, plus ``maxDepth``: the deepest nesting of objects and arrays).

The page carries this very dictionary and checks every decision with its numbers and patterns
before it offers the file; :func:`decision_problems` checks the same fields in the library, for
the file and for ``socialsearch review``. A reason holds at most 2,000 characters and no control,
bidirectional or invisible formatting character (line breaks are allowed); initials are 2 to 6
capital letters, Danish letters included (a Cyrillic or Greek look-alike is refused). Reasons are
also checked for anything that could be a CPR number (:func:`contains_cpr_like`).
"""

_ITEM = DECISIONS_SCHEMA["properties"]["decisions"]["items"]["properties"]
_REVIEWER = re.compile(_ITEM["reviewer"]["pattern"])
_REASON_OK = re.compile(_ITEM["reason"]["pattern"])


def decision_problems(items: Sequence[tuple[object, object, object]]) -> list[list[str]]:
    """Every problem of each (decision, reason, reviewer), by :data:`DECISIONS_SCHEMA`.

    The reviewer is checked as given (``socialsearch review`` upper-cases it first, as the page
    does); a reason is checked after trimming surrounding white space, the way it is recorded.
    Messages describe, never quote, the reason. One pass over the list, one CPR check for all.

    Examples
    --------
    >>> found = decision_problems([("approve", "Kendt familie", "KB"), ("maybe", "ring 0101901234", "КВ")])
    >>> [[problem.split(":")[0] for problem in problems] for problems in found]
    [[], ['decision', 'reason', 'reviewer']]
    """
    cpr = ("reason: seems to contain a CPR number (ten digits, with or without separators); write it "
           "without identifiers, the draft id identifies the case")
    first: list[list[str]] = []  # the decision's and the reason's problems
    last: list[list[str]] = []  # the reviewer's
    texts: list[str] = []
    owners: list[int] = []
    for i, (decision, reason, reviewer) in enumerate(items):
        problems: list[str] = []
        if decision not in DECISIONS:
            problems.append(f"decision: expected one of {', '.join(DECISIONS)}")
        text = reason.strip() if isinstance(reason, str) else ""
        if not text:
            problems.append("reason: must not be empty; say why the draft is approved or dismissed")
        elif len(text) > _REASON_MAX:
            problems.append(f"reason: {len(text):,} characters; at most {_REASON_MAX:,} are kept")
        elif not _REASON_OK.match(text):
            problems.append("reason: holds a control, bidirectional or invisible formatting character "
                            "(such as NUL, ESC or U+202E); write plain text")
        else:
            texts.append(text)
            owners.append(i)
        first.append(problems)
        ok = isinstance(reviewer, str) and _REVIEWER.match(reviewer.strip()) is not None
        last.append([] if ok else ["reviewer: expected the reviewer's initials, 2 to 6 capital letters A-Z, Æ, Ø or Å"])
    for i, cpr_like in zip(owners, cpr_like_many(texts), strict=True):
        if cpr_like:
            first[i].append(cpr)
    return [a + b for a, b in zip(first, last, strict=True)]
