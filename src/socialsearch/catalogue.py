"""The event-code catalogue: ``configs/event_codes.toml`` as frozen, typed objects.

:func:`load_catalogue` reads the TOML once, checks it, and returns a frozen
:class:`Catalogue`. Every problem in the file is reported at once in one
:class:`~socialsearch.errors.CatalogueError`, each naming its line, the entry and the fix.

Examples
--------
>>> cat = load_catalogue()            # the packaged configs/event_codes.toml
>>> cat.schema_version, cat.threshold
(1, 3)
>>> cat.category("violence").label
'Vold'
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import polars as pl

from ._resources import config_path
from .contract import KINDS, ROLES
from .errors import CatalogueError

__all__ = [
    "Catalogue",
    "Category",
    "Code",
    "KINDS",
    "Kind",
    "ROLES",
    "catalogue_check",
    "load_catalogue",
]

Kind = Literal["offence", "incident"]
_Role = Literal["suspect", "victim", "witness", "involved"]


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    immediate: bool = False


@dataclass(frozen=True)
class Code:
    kind: Kind
    code: str
    label: str
    category: str
    weight: int
    roles: tuple[_Role, ...]


@dataclass(frozen=True)
class Catalogue:
    schema_version: int
    lookback_weeks: int
    threshold: int
    child_max_age: int
    categories: tuple[Category, ...]
    codes: tuple[Code, ...]
    digest: str = ""  # sha256 hex of the TOML file's bytes ("" when built in code)
    source: str = ""  # path it was loaded from

    def category(self, category_id: str) -> Category:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(category_id)

    def codes_frame(self) -> pl.DataFrame:
        """One row per (code, role): kind, code, label, category, category_label, immediate, weight, role."""
        cats = {c.id: c for c in self.categories}
        rows = [
            {
                "kind": c.kind,
                "code": c.code,
                "label": c.label,
                "category": c.category,
                "category_label": cats[c.category].label,
                "immediate": cats[c.category].immediate,
                "weight": c.weight,
                "role": role,
            }
            for c in self.codes
            for role in c.roles
        ]
        schema = {
            "kind": pl.String,
            "code": pl.String,
            "label": pl.String,
            "category": pl.String,
            "category_label": pl.String,
            "immediate": pl.Boolean,
            "weight": pl.Int64,
            "role": pl.String,
        }
        return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------

_SCHEMA_VERSION = 1
_MAX_CHILD_AGE = 22  # Barnets lov reaches young people up to 22 (efterværn); beyond is a typo

_TOP_KEYS = ("schema_version", "lookback_weeks", "threshold", "child_max_age", "category", "code")
_CATEGORY_KEYS = ("id", "label", "immediate")
_CODE_KEYS = ("kind", "code", "label", "category", "weight", "roles")

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_\-\"'. ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_\-]+))\s*(?:\.[^=]*)?=""")


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """Read, validate and freeze an event-code catalogue.

    Parameters
    ----------
    path
        The TOML file; ``None`` loads the packaged ``configs/event_codes.toml``.

    Returns
    -------
    Catalogue
        With ``digest`` the SHA-256 (hex) of the file's bytes and ``source`` its path.

    Raises
    ------
    CatalogueError
        Listing *every* problem found, each as ``line N: <entry>: <what>; <fix>``.

    Examples
    --------
    >>> cat = load_catalogue()
    >>> sorted({c.kind for c in cat.codes})
    ['incident', 'offence']
    """
    source = Path(path) if path is not None else config_path("event_codes.toml")
    try:
        raw = source.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CatalogueError(
            source, [f"cannot read the file ({reason}); give an existing TOML file"]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CatalogueError(
            source, [f"line {line}: the file is not valid UTF-8; save it as UTF-8"]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(
            source, [f"TOML syntax error: {exc}; fix the syntax there (see https://toml.io)"]
        ) from None
    catalogue = _validate(data, _LineIndex.scan(text), source)
    return Catalogue(
        schema_version=catalogue.schema_version,
        lookback_weeks=catalogue.lookback_weeks,
        threshold=catalogue.threshold,
        child_max_age=catalogue.child_max_age,
        categories=catalogue.categories,
        codes=catalogue.codes,
        digest=hashlib.sha256(raw).hexdigest(),
        source=str(source),
    )


def catalogue_check(path: Path | str | None = None) -> dict[str, Any]:
    """Validate a catalogue and describe it (``socialsearch catalogue check``).

    Every problem is reported at once (a :class:`~socialsearch.errors.CatalogueError` from
    :func:`load_catalogue`); a valid catalogue is described by what a weekly run takes from it.

    Parameters
    ----------
    path
        The TOML file; ``None`` checks the packaged ``configs/event_codes.toml``.

    Examples
    --------
    >>> report = catalogue_check()
    >>> report["threshold"] > 0 and len(report["sha256"])
    64
    """
    cat = load_catalogue(path)
    return {
        "source": cat.source,
        "categories": len(cat.categories),
        "codes": len(cat.codes),
        "threshold": cat.threshold,
        "lookback_weeks": cat.lookback_weeks,
        "child_max_age": cat.child_max_age,
        "immediate": sorted(c.id for c in cat.categories if c.immediate),
        "sha256": cat.digest,
    }


@dataclass
class _Table:
    header: int
    keys: dict[str, int] = field(default_factory=dict)


@dataclass
class _LineIndex:
    """Where keys and ``[[table]]`` headers are in the text (tomllib gives no line numbers)."""

    top: dict[str, int] = field(default_factory=dict)
    tables: dict[str, list[_Table]] = field(default_factory=dict)

    @classmethod
    def scan(cls, text: str) -> _LineIndex:
        index = cls()
        current: _Table | None = None
        in_string: str | None = None  # the delimiter of an open multi-line string
        for lineno, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = _HEADER.match(line)
            if header:
                name = header.group(2).strip().strip("\"'")
                if header.group(1) == "[[":
                    current = _Table(lineno)
                    index.tables.setdefault(name, []).append(current)
                    index.top.setdefault(name, lineno)
                else:  # a plain [table]: a top-level key whose keys we do not check by line
                    index.top.setdefault(name.split(".")[0], lineno)
                    current = _Table(lineno)
                continue
            key = _KEY.match(line)
            if key:
                name = next(g for g in key.groups() if g is not None)
                (current.keys if current is not None else index.top).setdefault(name, lineno)
            for delim in ('"""', "'''"):
                if line.count(delim) % 2 == 1:
                    in_string = delim
                    break
        return index

    def of_top(self, key: str) -> int:
        return self.top.get(key, 1)

    def of_entry(self, table: str, position: int, key: str | None = None) -> int:
        entries = self.tables.get(table, [])
        if position < len(entries):
            entry = entries[position]
            return entry.keys.get(key, entry.header) if key else entry.header
        return self.of_top(table)


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, entry: str, what: str, fix: str) -> None:
        self.items.append((line, f"line {line}: {entry}: {what}; {fix}"))

    def sorted(self) -> list[str]:
        return [text for _, text in sorted(self.items, key=lambda item: item[0])]


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _suggest(word: str, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}allowed: {', '.join(allowed)}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(data: dict[str, Any], lines: _LineIndex, source: Path) -> Catalogue:
    problems = _Problems()
    top = "top level"
    for key in data:
        if key not in _TOP_KEYS:
            problems.add(lines.of_top(key), top, f"unknown key '{key}'",
                         f"remove it or correct the spelling ({_suggest(key, _TOP_KEYS)})")

    settings: dict[str, int] = {}
    rules = {
        "schema_version": (_SCHEMA_VERSION, _SCHEMA_VERSION, f"set schema_version = {_SCHEMA_VERSION}"),
        "lookback_weeks": (1, None, "use a positive number of weeks, e.g. lookback_weeks = 26"),
        "threshold": (1, None, "use a positive summed weight, e.g. threshold = 3"),
        "child_max_age": (0, _MAX_CHILD_AGE,
                          f"use an age between 0 and {_MAX_CHILD_AGE}, e.g. child_max_age = 17"),
    }
    for key, (low, high, fix) in rules.items():
        if key not in data:
            problems.add(1, top, f"missing required key '{key}'",
                         f"add it before the first table: {fix.split(', e.g. ')[-1]}")
            continue
        value = data[key]
        line = lines.of_top(key)
        if not _is_int(value):
            problems.add(line, top, f"'{key}' must be an integer, not {_toml_type(value)}", fix)
        elif value < low or (high is not None and value > high):
            if key == "schema_version":
                what = f"unsupported schema_version {value} (this socialsearch reads {_SCHEMA_VERSION})"
            elif low == 1:
                what = f"'{key}' must be positive, got {value}"
            else:
                what = f"'{key}' must be between {low} and {high}, got {value}"
            problems.add(line, top, what, fix)
        else:
            settings[key] = value

    categories = _check_categories(data, lines, problems)
    codes = _check_codes(data, lines, problems, {c.id for c in categories}, [c.id for c in categories])
    if problems.items:
        raise CatalogueError(source, problems.sorted())
    return Catalogue(
        schema_version=settings["schema_version"],
        lookback_weeks=settings["lookback_weeks"],
        threshold=settings["threshold"],
        child_max_age=settings["child_max_age"],
        categories=tuple(categories),
        codes=tuple(codes),
    )


def _entries(
    data: dict[str, Any], table: str, lines: _LineIndex, problems: _Problems
) -> list[dict[str, Any]]:
    """The ``[[table]]`` entries, or [] after recording why there are none usable."""
    if table not in data:
        problems.add(1, "top level", f"no [[{table}]] entries",
                     f"add at least one [[{table}]] table (see docs/catalogue.md)")
        return []
    value = data[table]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.add(lines.of_top(table), "top level", f"'{table}' must be an array of tables",
                     f"write each entry as a [[{table}]] table")
        return []
    if not value:
        problems.add(lines.of_top(table), "top level", f"no [[{table}]] entries",
                     f"add at least one [[{table}]] table")
    return cast(list[dict[str, Any]], value)


def _check_keys(
    entry: dict[str, Any],
    allowed: tuple[str, ...],
    required: tuple[str, ...],
    where: str,
    table: str,
    position: int,
    lines: _LineIndex,
    problems: _Problems,
) -> None:
    for key in entry:
        if key not in allowed:
            problems.add(lines.of_entry(table, position, key), where, f"unknown key '{key}'",
                         f"remove it or correct the spelling ({_suggest(key, allowed)})")
    for key in required:
        if key not in entry:
            problems.add(lines.of_entry(table, position), where, f"missing required key '{key}'",
                         f"add {key} = ... to this [[{table}]] table")


def _string(
    entry: dict[str, Any], key: str, where: str, line: int, problems: _Problems, fix: str = ""
) -> str | None:
    """The non-empty string at ``key``, or None after recording a problem (or when absent)."""
    if key not in entry:
        return None
    value = entry[key]
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, str):
        problems.add(line, where, f"'{key}' is empty", fix or f"give {key} a value")
    else:
        problems.add(line, where, f"'{key}' must be a string, not {_toml_type(value)}",
                     fix or f'write it in quotes: {key} = "..."')
    return None


def _check_categories(
    data: dict[str, Any], lines: _LineIndex, problems: _Problems
) -> list[Category]:
    result: list[Category] = []
    first_line: dict[str, int] = {}
    for position, entry in enumerate(_entries(data, "category", lines, problems)):
        cid = entry.get("id")
        where = f'[[category]] "{cid}"' if isinstance(cid, str) else f"[[category]] no. {position + 1}"
        line = lines.of_entry("category", position)

        def at(key: str, position: int = position) -> int:
            return lines.of_entry("category", position, key)

        _check_keys(entry, _CATEGORY_KEYS, ("id", "label"), where, "category", position, lines, problems)
        ident = _string(entry, "id", where, at("id"), problems)
        label = _string(entry, "label", where, at("label"), problems)
        immediate = entry.get("immediate", False)
        if not isinstance(immediate, bool):
            problems.add(at("immediate"), where,
                         f"'immediate' must be a boolean, not {_toml_type(immediate)}",
                         "write immediate = true or immediate = false")
            immediate = None
        if ident is not None and ident in first_line:
            problems.add(line, where, f"duplicate category id '{ident}' (first on line {first_line[ident]})",
                         "give each category a unique id or merge the two entries")
            continue
        if ident is not None:
            first_line[ident] = line
        if ident is not None and label is not None and immediate is not None:
            result.append(Category(id=ident, label=label, immediate=immediate))
    return result


def _check_codes(
    data: dict[str, Any],
    lines: _LineIndex,
    problems: _Problems,
    category_ids: set[str],
    category_order: list[str],
) -> list[Code]:
    result: list[Code] = []
    first_line: dict[tuple[str, str], int] = {}
    declared = _declared_category_ids(data)
    known = category_order or sorted(declared)
    for position, entry in enumerate(_entries(data, "code", lines, problems)):
        kind, code = entry.get("kind"), entry.get("code")
        where = (
            f'[[code]] {kind} "{code}"'
            if isinstance(kind, str) and isinstance(code, str)
            else f"[[code]] no. {position + 1}"
        )
        line = lines.of_entry("code", position)

        def at(key: str, position: int = position) -> int:
            return lines.of_entry("code", position, key)

        _check_keys(entry, _CODE_KEYS, _CODE_KEYS, where, "code", position, lines, problems)
        ok = True
        if "kind" in entry and entry["kind"] not in KINDS:
            shown = entry["kind"] if isinstance(entry["kind"], str) else _toml_type(entry["kind"])
            problems.add(at("kind"), where, f"unknown kind '{shown}'",
                         'use kind = "offence" (gerningskode) or kind = "incident" (hændelseskode)')
            ok = False
        if "code" in entry and _is_int(entry["code"]):
            problems.add(at("code"), where, "'code' must be a string, not an integer",
                         f'write it in quotes to keep leading zeros: code = "{entry["code"]}"')
            ok = False
        else:
            ok &= _string(entry, "code", where, at("code"), problems) is not None or "code" not in entry
        ok &= _string(entry, "label", where, at("label"), problems) is not None or "label" not in entry
        category = _string(entry, "category", where, at("category"), problems)
        if category is not None and category not in category_ids and category not in declared:
            problems.add(at("category"), where, f"unknown category '{category}'",
                         f"use the id of a [[category]] ({_suggest(category, known)})"
                         if known else "declare the category in a [[category]] table")
            ok = False
        ok &= _check_weight(entry, where, at("weight"), problems)
        ok &= _check_roles(entry, where, at("roles"), problems)
        if isinstance(kind, str) and isinstance(code, str) and kind in KINDS:
            if (kind, code) in first_line:
                problems.add(line, where,
                             f"duplicate code: {kind} \"{code}\" is already on line {first_line[(kind, code)]}",
                             "keep one entry per (kind, code); remove or renumber this one")
                ok = False
            else:
                first_line[(kind, code)] = line
        if ok and set(_CODE_KEYS) <= entry.keys() and category in category_ids:
            result.append(
                Code(
                    kind=cast(Kind, entry["kind"]),
                    code=entry["code"],
                    label=entry["label"],
                    category=entry["category"],
                    weight=entry["weight"],
                    roles=tuple(cast(_Role, r) for r in entry["roles"]),
                )
            )
    return result


def _declared_category_ids(data: dict[str, Any]) -> set[str]:
    """Every string id in [[category]], valid or not: avoids a second error for one typo."""
    entries = data.get("category")
    if not isinstance(entries, list):
        return set()
    return {e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)}


def _check_weight(entry: dict[str, Any], where: str, line: int, problems: _Problems) -> bool:
    if "weight" not in entry:
        return False
    weight = entry["weight"]
    if not _is_int(weight):
        problems.add(line, where, f"'weight' must be an integer, not {_toml_type(weight)}",
                     "use a whole number from 1 (weak) to 3 (strong), e.g. weight = 2")
        return False
    if weight < 1:
        problems.add(line, where, f"'weight' must be positive, got {weight}",
                     "use a whole number from 1 (weak) to 3 (strong), or remove the code")
        return False
    return True


def _check_roles(entry: dict[str, Any], where: str, line: int, problems: _Problems) -> bool:
    if "roles" not in entry:
        return False
    roles = entry["roles"]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        problems.add(line, where, "'roles' must be an array of strings",
                     'write e.g. roles = ["suspect", "victim"]')
        return False
    if not roles:
        problems.add(line, where, "'roles' is empty: the code could never make a signal",
                     f"list at least one of: {', '.join(ROLES)}")
        return False
    ok = True
    for role in roles:
        if role not in ROLES:
            problems.add(line, where, f"unknown role '{role}'",
                         f"use roles from the input contract ({_suggest(role, ROLES)})")
            ok = False
    duplicates = sorted({r for r in roles if roles.count(r) > 1})
    if duplicates:
        problems.add(line, where, f"role(s) listed twice: {', '.join(duplicates)}",
                     "list each role once")
        ok = False
    return ok
