"""The hub extract (format version 3): what a source station hands to the hub.

``socialsearch pseudonymise --week W`` writes it and ``socialsearch run`` reads it without any
secret::

    PSEUDO/manifest.json              format, version 3, week, catalogue digest, key ids, the
                                      sealed vault data key, the municipalities' sealed data
                                      keys, counts, file digests, created_at
    PSEUDO/incidents/incidents.parquet                event_ref, district, registered_week,
                                                      incident_code, offence_code, event_sealed
    PSEUDO/incident_persons/incident_persons.parquet  event_ref, person, role, resolved_by,
                                                      match_probability, person_sealed
    PSEUDO/children.parquet                           person, municipality, person_sealed, details
    PSEUDO/relations.parquet                          child, adult, relation
    PSEUDO/event_details.parquet                      event_ref, recipient, details

It holds only what can change one of the week's drafts, at the grain the rule reads it
(``docs/search.md``): the children the search can draft in W whatever the ledger holds, their
signals' events (the ISO week of registration, the police district, the codes), the persons
and relations that give those signals. No age (the station keeps children only), no event
time or place, no name or name encoding, no adult's birth date or municipality, no CPR status
per row. ``details`` are the exact values a caseworker needs, sealed for the receiving
municipality (:mod:`socialsearch.crypto.municipal`). Rows are in an order given by keyed
values only, never by the raw files (``docs/privacy.md``).

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
from .contract import HUB_SCHEMA, ISO_WEEK_PATTERN, RELATIONS, RESOLVED_BY, ROLES, to_local
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
HUB_VERSION: Final = 3
_MANIFEST: Final = "manifest.json"
_V1_FORMAT = "socialsearch-pseudonymised"

HUB_PATHS: Final[dict[str, str]] = {
    "incidents": "incidents/incidents.parquet",
    "incident_persons": "incident_persons/incident_persons.parquet",
    "children": "children.parquet",
    "relations": "relations.parquet",
    "event_details": "event_details.parquet",
}
"""Where each table lives in the folder."""
_NULLABLE = {"incident_code", "offence_code", "match_probability", "details"}


@dataclass(frozen=True)
class HubExtract:
    """The five hub tables and the manifest (see the module docstring); no raw identifiers."""

    incidents: pl.DataFrame
    incident_persons: pl.DataFrame
    children: pl.DataFrame
    relations: pl.DataFrame
    event_details: pl.DataFrame
    manifest: dict[str, Any]

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        return {"incidents": self.incidents, "incident_persons": self.incident_persons,
                "children": self.children, "relations": self.relations, "event_details": self.event_details}

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
    if manifest.get("version") in (2,):
        raise UsageError(
            f"{root} is a hub extract of format version 2 (with children's ages, event times and places), "
            f"which this socialsearch no longer reads (it reads version {HUB_VERSION}): pseudonymise the raw "
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
    if want == pl.Float64 and (have.is_float() or have == pl.Null):
        return col.cast(pl.Float64)
    if isinstance(want, pl.Datetime) and isinstance(have, pl.Datetime):
        return to_local(col, have)
    return None


def _checks(table: str) -> list[_Check]:
    schema = HUB_SCHEMA[table]
    checks = [_Check(name, "a value (this column may not be empty)", pl.col(name).is_null())
              for name in schema if name not in _NULLABLE]
    geo = geography()
    if "district" in schema:
        checks.append(_Check("district", "a police district code",
                             ~pl.col("district").is_in(sorted(geo.district_codes))))
    for column in ("municipality", "recipient"):
        if column in schema:
            checks.append(_Check(column, "one of the 98 kommunekoder",
                                 ~pl.col(column).is_in(sorted(geo.municipality_codes))))
    if "registered_week" in schema:
        checks.append(_Check("registered_week", "an ISO week such as 2026-W47",
                             ~pl.col("registered_week").str.contains(ISO_WEEK_PATTERN)))
    if table == "incident_persons":
        checks += [
            _Check("role", f"a role: {' | '.join(ROLES)}", ~pl.col("role").is_in(ROLES)),
            _Check("resolved_by", f"one of {' | '.join(RESOLVED_BY)}", ~pl.col("resolved_by").is_in(RESOLVED_BY)),
            _Check("match_probability", "a probability in [0, 1], given exactly when resolved_by is probabilistic",
                   (pl.col("resolved_by") == "probabilistic")
                   != pl.col("match_probability").is_between(0.0, 1.0).fill_null(False)),
        ]
    if table == "relations":
        checks.append(_Check("relation", f"a relation: {' | '.join(RELATIONS)}",
                             ~pl.col("relation").is_in(RELATIONS)))
    return checks


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
        incidents, persons = tables["incidents"], tables["incident_persons"]
        if incidents is not None:
            problems.scan(incidents, [_Check("event_ref", "an event reference unique in incidents",
                                             ~pl.col("event_ref").is_first_distinct())])
        if persons is not None and incidents is not None:
            orphans = persons.join(incidents.select("event_ref"), on="event_ref", how="anti")
            problems.scan(orphans, [_Check("event_ref", "an event that exists in incidents", pl.lit(True))])
        children = tables["children"]
        if children is not None:
            problems.scan(children, [_Check("person", "each child once",
                                            ~pl.col("person").is_first_distinct())])
        details = tables["event_details"]
        if details is not None:
            problems.scan(details, [_Check("recipient", "each (event_ref, recipient) once",
                                           ~pl.struct("event_ref", "recipient").is_first_distinct())])
            if incidents is not None:
                orphans = details.join(incidents.select("event_ref"), on="event_ref", how="anti")
                problems.scan(orphans, [_Check("event_ref", "an event that exists in incidents", pl.lit(True))])
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
