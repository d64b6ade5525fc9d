"""The hub extract (format version 4): what a source station hands to the hub.

``socialsearch pseudonymise --week W`` writes it and ``socialsearch run`` reads it without any
secret::

    PSEUDO/manifest.json           format, version 4, week, catalogue digest, key ids, the sealed
                                   vault data key, the municipalities' sealed data keys, counts,
                                   file digests, created_at
    PSEUDO/events.parquet          event_ref, in_week, event_sealed
    PSEUDO/signals.parquet         child, event_ref, person, details
    PSEUDO/children.parquet        person, municipality, details, statistics
    PSEUDO/persons.parquet         person, person_sealed
    PSEUDO/event_details.parquet   event_ref, recipient, details

The station runs the whole weekly rule itself with no history, so everything the rule decides
that does not depend on earlier drafts is decided there. The hub gets only what the rest needs
(``docs/search.md``): for each child the station drafts, its municipality (routing); for each
(child, event, person) that gives it a signal, the three pseudonyms; for each such event,
whether it was registered in W. No code, role, relation type, police district, week, score or
rule is in clear. ``details`` are those values sealed for the receiving municipality
(:mod:`socialsearch.crypto.municipal`): a child's age and what the rule decided, an event's
date-times, place, week, district and codes, a signal row's (role, link, kind, code) entries.
``statistics`` (a draft's age, categories and districts) is sealed for the key custodian;
``*_sealed`` are the raw identifiers sealed for the key custodian (the vault). Rows are in an
order given by keyed values only, never by the raw files (``docs/privacy.md``).

The manifest's ``files`` map each Parquet file to the SHA-256 of its own bytes (these are
files the station wrote, not raw files: they confirm nothing about the raw extracts), so a
folder whose writing was interrupted or changed is refused rather than read.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from ._atomic import fsync_dir, replacing, write_json_atomic
from .contract import HUB_SCHEMA
from .errors import InputError, UsageError
from .geography import geography
from .station._reading import Check as _Check
from .station._reading import Problems as _Problems
from .station._reading import read_file as _read_file
from .station._reading import sha256_file as _sha256
from .station._reading import withheld_library_messages as _withheld_library_messages

__all__ = [
    "HUB_FORMAT",
    "HUB_PATHS",
    "HUB_SCHEMA",
    "check_target",
    "HUB_VERSION",
    "HubExtract",
    "is_hub_extract",
    "read_hub",
    "write_hub",
]

HUB_FORMAT: Final = "socialsearch-hub-extract"
HUB_VERSION: Final = 4
_MANIFEST: Final = "manifest.json"
_V1_FORMAT = "socialsearch-pseudonymised"

HUB_PATHS: Final[dict[str, str]] = {table: f"{table}.parquet" for table in HUB_SCHEMA}
"""Where each table lives in the folder."""
_NULLABLE = {"details", "statistics"}
_RETIRED: Final = {
    2: "with children's ages, event times and places",
    3: "with codes, roles, relation types, police districts and weeks in clear",
}


@dataclass(frozen=True)
class HubExtract:
    """The five hub tables and the manifest (see the module docstring); no raw identifiers."""

    events: pl.DataFrame
    signals: pl.DataFrame
    children: pl.DataFrame
    persons: pl.DataFrame
    event_details: pl.DataFrame
    manifest: dict[str, Any]

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        return {"events": self.events, "signals": self.signals, "children": self.children,
                "persons": self.persons, "event_details": self.event_details}

    @property
    def relations(self) -> pl.DataFrame:
        """``child``, ``adult``: the (child, adult) pairs the hub sees, one per adult who gives the
        child a signal (an adult is any person on a child's signal row but the child itself). The
        type of the tie is sealed, so there is no ``relation`` column."""
        return (self.signals.filter(pl.col("person") != pl.col("child"))
                .select("child", pl.col("person").alias("adult")).unique().sort("child", "adult"))

    @property
    def week(self) -> str:
        return str(self.manifest["week"])

    @property
    def key_id(self) -> str:
        return str(self.manifest["key_id"])

    @property
    def catalogue_digest(self) -> str:
        return str(self.manifest["catalogue"]["sha256"])


def is_hub_extract(directory: Path) -> bool:
    """True when ``directory`` holds a ``manifest.json`` (of any socialsearch hub format).

    A damaged manifest counts too, so that :func:`read_hub` says what is wrong with it instead
    of the folder being read as raw extracts.
    """
    return (Path(directory) / _MANIFEST).is_file()


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / _MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.single(path, None, "a manifest.json written by `socialsearch pseudonymise`") from None
    except (ValueError, OSError) as exc:
        raise InputError.single(path, None, f"a readable JSON manifest ({type(exc).__name__})") from None
    if isinstance(manifest, dict) and manifest.get("format") == _V1_FORMAT:
        raise UsageError(
            f"{root} is a hub extract of format version 1 (with name encodings and birth dates), which "
            "this socialsearch no longer reads: pseudonymise the raw extracts again with "
            "`socialsearch pseudonymise --input RAW --out PSEUDO --keys KEYS --week W`"
        )
    if not isinstance(manifest, dict) or manifest.get("format") != HUB_FORMAT:
        raise InputError.single(path, "format", f'"{HUB_FORMAT}"')
    retired = _RETIRED.get(manifest["version"]) if isinstance(manifest.get("version"), int) else None
    if retired is not None:
        raise UsageError(
            f"{root} is a hub extract of format version {manifest['version']} ({retired}), which this "
            f"socialsearch no longer reads (it reads version {HUB_VERSION}): pseudonymise the raw "
            "extracts again with `socialsearch pseudonymise --input RAW --out PSEUDO --keys KEYS --week W`"
        )
    if manifest.get("version") != HUB_VERSION:
        raise InputError.single(path, "version", f"{HUB_VERSION} (this socialsearch reads version {HUB_VERSION})")
    for key in ("week", "key_id", "custodian_key_id", "vault_key", "municipal_keys", "catalogue", "files"):
        if key not in manifest:
            raise InputError.single(path, key, "a value (the manifest is incomplete; pseudonymise again)")
    if not isinstance(manifest["files"], dict) or not isinstance(manifest["catalogue"], dict):
        raise InputError.single(path, "files", "an object mapping each table file to its SHA-256")
    if not isinstance(manifest["municipal_keys"], dict):
        raise InputError.single(path, "municipal_keys", "an object mapping each kommunekode to its sealed data key")
    return manifest


def _column(name: str, want: pl.DataType, have: pl.DataType) -> pl.Expr | None:
    """Cast a stored type to the hub type when lossless; None when it does not fit."""
    col = pl.col(name)
    if want == pl.String and (have == pl.String or isinstance(have, (pl.Categorical, pl.Enum, pl.Null))):
        return col.cast(pl.String)
    if want == pl.Binary and have in (pl.Binary, pl.Null):
        return col.cast(pl.Binary)
    if want == pl.Int64 and (have.is_integer() or have == pl.Null):
        return col.cast(pl.Int64)
    if want == pl.Boolean and have in (pl.Boolean, pl.Null):
        return col.cast(pl.Boolean)
    return None


def _checks(table: str) -> list[_Check]:
    schema = HUB_SCHEMA[table]
    checks = [_Check(name, "a value (this column may not be empty)", pl.col(name).is_null())
              for name in schema if name not in _NULLABLE]
    geo = geography()
    for column in ("municipality", "recipient"):
        if column in schema:
            checks.append(_Check(column, "one of the 98 kommunekoder",
                                 ~pl.col(column).is_in(sorted(geo.municipality_codes))))
    return checks


def _unique(columns: list[str], what: str) -> _Check:
    return _Check(columns[-1], what, ~pl.struct(columns).is_first_distinct())


def _orphans(frame: pl.DataFrame, other: pl.DataFrame, left: str, right: str, what: str,
             problems: _Problems) -> None:
    """Rows of ``frame`` whose ``left`` is no ``right`` of ``other``, reported at their row."""
    missing = frame.join(other.select(pl.col(right).alias(left)), on=left, how="anti")
    problems.scan(missing, [_Check(left, what, pl.lit(True))])


def _read_table(root: Path, table: str, manifest: dict[str, Any], problems: _Problems) -> pl.DataFrame | None:
    rel = HUB_PATHS[table]
    index = len(problems.names)
    problems.names.append(rel)
    path = root / rel
    expected = manifest["files"].get(rel)
    if expected is None:
        problems.add(_MANIFEST, "files", f"an entry for {rel}")
        return None
    if not path.is_file():
        problems.add(rel, None, "the file the manifest lists (it is missing)")
        return None
    if _sha256(path) != expected:
        problems.add(rel, None, "the content recorded in manifest.json (SHA-256 differs: the folder was "
                     "changed or only partly written; pseudonymise again)")
        return None
    frame = _read_file(path, rel, problems)
    if frame is None:
        return None
    exprs = [pl.lit(index, pl.UInt32).alias("_file"), pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).alias("_row")]
    ok = True
    for name, want in HUB_SCHEMA[table].items():
        if name not in frame.columns:
            problems.add(rel, name, f"a column '{name}' of type {want}")
            ok = False
            continue
        expr = _column(name, want, frame.schema[name])
        if expr is None:
            problems.add(rel, name, f"type {want} (found {frame.schema[name]})")
            ok = False
            continue
        exprs.append(expr.alias(name))
    extra = sorted(set(frame.columns) - set(HUB_SCHEMA[table]))
    if extra:
        problems.add(rel, None, f"only the columns of the hub extract (found {len(extra)} other column(s): "
                     f"{', '.join(e[:40] for e in extra[:5])})")
        ok = False
    if not ok:
        return None
    out = frame.select(exprs)
    problems.scan(out, _checks(table))
    return out


def read_hub(directory: str | Path) -> HubExtract:
    """Read and validate a hub extract written by :func:`write_hub` (or ``pseudonymise``).

    Raises
    ------
    UsageError
        For a folder of the retired format version 1 (it says to pseudonymise again).
    InputError
        Every problem found, naming file, row and column, never a value: a missing or changed
        file, a missing, extra or mistyped column, a bad code, an orphan reference.
    """
    root = Path(directory)
    manifest = _read_manifest(root)
    problems = _Problems([], [])
    with _withheld_library_messages(f"validating the hub extract in {root}"):
        tables = {table: _read_table(root, table, manifest, problems) for table in HUB_SCHEMA}
        events, signals, children = tables["events"], tables["signals"], tables["children"]
        persons, details = tables["persons"], tables["event_details"]
        for frame, key, what in ((events, ["event_ref"], "an event reference unique in events"),
                                 (signals, ["child", "event_ref", "person"], "each (child, event_ref, person) once"),
                                 (children, ["person"], "each child once"), (persons, ["person"], "each person once"),
                                 (details, ["event_ref", "recipient"], "each (event_ref, recipient) once")):
            if frame is not None:
                problems.scan(frame, [_unique(key, what)])
        if signals is not None and events is not None:
            _orphans(signals, events, "event_ref", "event_ref", "an event that exists in events", problems)
        if signals is not None and children is not None:
            _orphans(signals, children, "child", "person", "a child that exists in children", problems)
        if signals is not None and persons is not None:
            _orphans(signals, persons, "person", "person", "a person that exists in persons", problems)
        if details is not None and events is not None:
            _orphans(details, events, "event_ref", "event_ref", "an event that exists in events", problems)
    problems.raise_if_any()
    out = {name: frame.drop("_file", "_row") for name, frame in tables.items() if frame is not None}
    return HubExtract(manifest=manifest, **out)


def _write_table(frame: pl.DataFrame, target: Path) -> str:
    with replacing(target) as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=False)
        return _sha256(tmp)


def check_target(directory: Path, *, force: bool = False) -> None:
    """Refuse to write a hub extract over an existing, non-empty folder unless ``force``."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())) and not force:
        raise UsageError(f"{directory} exists and is not empty; choose another output folder, or replace it "
                         "when forced (--force)")


def write_hub(hub: HubExtract, directory: str | Path, *, force: bool = False) -> Path:
    """Write ``hub`` as a folder; returns the manifest's path.

    The folder is built next to ``directory`` under a temporary name and renamed into place
    when complete, so a failed or killed write leaves ``directory`` as it was. An existing
    non-empty ``directory`` is replaced only with ``force=True``.
    """
    root = Path(directory)
    check_target(root, force=force)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.with_name(f".{root.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    files = {}
    for table, schema in HUB_SCHEMA.items():
        frame = hub.tables[table].select([pl.col(c).cast(t) for c, t in schema.items()])
        (staging / HUB_PATHS[table]).parent.mkdir(exist_ok=True)
        files[HUB_PATHS[table]] = _write_table(frame, staging / HUB_PATHS[table])
    write_json_atomic(staging / _MANIFEST, {**hub.manifest, "format": HUB_FORMAT, "version": HUB_VERSION,
                                           "files": files})
    if root.exists():
        retired = root.with_name(f".{root.name}.replaced")
        shutil.rmtree(retired, ignore_errors=True)
        root.rename(retired)
        staging.rename(root)
        shutil.rmtree(retired)
    else:
        staging.rename(root)
    fsync_dir(root.parent)
    return root / _MANIFEST
