"""The source-station stage: raw extracts → pseudonymised (hub) extracts.

Every CPR number becomes a keyed pseudonym, every journal number a keyed event reference,
and names with birth dates become keyed Bloom-filter encodings for the fuzzy fallback. Next
to each pseudonym travels the raw value encrypted under the vault data key
(``person_sealed``, ``event_sealed``), which only the key custodian can open; the data key
itself is sealed to the custodian in the manifest. A hub therefore needs no secret.

Each distinct CPR number is normalised and hashed once, across all four tables, and joined
back.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from . import identifiers, linkage, vault
from .extracts import HubExtracts, RawExtracts, read_raw, write_hub
from .keys import KeyStore
from .pseudonyms import Pseudonymiser

__all__ = ["FORMAT", "pseudonymise_dir", "pseudonymise_extracts"]

log = logging.getLogger(__name__)

FORMAT = "socialsearch-pseudonymised"
FORMAT_VERSION = 1


def _normalised(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Replace each raw CPR column by its normalised form (``None`` when invalid or missing)."""
    return frame.with_columns(identifiers.normalise_cpr(pl.col(c)).alias(c) for c in columns)


def _identity_table(columns: list[pl.Series], pseudonymiser: Pseudonymiser, data_key: bytes) -> pl.DataFrame:
    """One row per distinct valid CPR number in ``columns`` (already normalised):
    ``cpr``, ``person``, ``person_sealed``, ``birth_date``."""
    values = pl.concat([c.rename("cpr") for c in columns]).drop_nulls().unique()
    return values.to_frame().with_columns(
        person=pseudonymiser.persons_distinct_normalised(values),
        person_sealed=vault.seal_values(values, data_key),
        birth_date=identifiers.birth_date(pl.col("cpr")),
    )


def _join_identity(frame: pl.DataFrame, column: str, ids: pl.DataFrame, *, keep: dict[str, str]) -> pl.DataFrame:
    """Replace the normalised CPR ``column`` by the identity columns ``keep`` (name → new name)."""
    renamed = ids.select(pl.col("cpr").alias(column), *(pl.col(k).alias(v) for k, v in keep.items()))
    return frame.join(renamed, on=column, how="left").drop(column)


def pseudonymise_extracts(raw: RawExtracts, keystore: KeyStore) -> HubExtracts:
    """Turn validated raw extracts into the hub layout (see ``docs/architecture.md``)."""
    pseudonymiser = Pseudonymiser(keystore)
    key_id = pseudonymiser.key_id
    data_key = keystore.subkey("vault", key_id)
    linkage_key = keystore.subkey("linkage", key_id)
    population = _normalised(raw.population, "cpr")
    relations = _normalised(raw.relations, "child_cpr", "adult_cpr")
    persons = raw.incident_persons.with_columns(
        cpr_status=identifiers.cpr_status(pl.col("cpr")),
        cpr=identifiers.normalise_cpr(pl.col("cpr")),
    )
    ids = _identity_table(
        [population["cpr"], relations["child_cpr"], relations["adult_cpr"], persons["cpr"]],
        pseudonymiser, data_key,
    )

    incidents = raw.incidents.with_columns(
        event_ref=pseudonymiser.events(raw.incidents["district"], raw.incidents["incident_id"]),
        event_sealed=vault.seal_values(
            (raw.incidents["district"] + ":" + raw.incidents["incident_id"]), data_key
        ),
    )
    # Every incident person's event exists (checked by read_raw): join the reference, don't re-hash.
    persons = persons.join(
        incidents.select("district", "incident_id", "event_ref"), on=["district", "incident_id"], how="left"
    )
    incidents = incidents.select(
        "district", "event_ref", "occurred_at", "registered_at", "municipality",
        "incident_code", "offence_code", "event_sealed",
    )
    persons = _join_identity(persons, "cpr", ids, keep={"person": "person", "person_sealed": "person_sealed"})
    # Only people without a valid CPR need name encodings: encode just those rows.
    persons = persons.with_row_index("_row")
    encoded = linkage.encode_people(
        persons.filter(pl.col("person").is_null()), given="given_name", surname="surname",
        birth_date="birth_date", key=linkage_key,
    )
    lk_cols = [c for c in encoded.columns if c.startswith("lk_")]
    persons = (
        persons.join(encoded.select(["_row", *lk_cols]), on="_row", how="left")
        .sort("_row")
        .select("district", "event_ref", "person", "cpr_status", "role", "person_sealed", *lk_cols)
    )

    population = _join_identity(population, "cpr", ids, keep={
        "person": "person", "person_sealed": "person_sealed", "birth_date": "birth_date"})
    pop_encoded = linkage.encode_people(
        population, given="given_name", surname="surname", birth_date="birth_date", key=linkage_key
    )
    pop_lk = [c for c in pop_encoded.columns if c.startswith("lk_")]
    population = pop_encoded.select("person", "municipality", "birth_date", "person_sealed", *pop_lk)

    relations = (
        _join_identity(relations, "child_cpr", ids, keep={"person": "child"})
        .pipe(_join_identity, "adult_cpr", ids, keep={"person": "adult"})
        .select("child", "adult", "relation")
    )

    sealed_key = vault.seal_data_key(data_key, keystore.custodian_public_key,
                                     keystore.custodian_key_id, key_id=key_id)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "key_id": key_id,
        "custodian_key_id": keystore.custodian_key_id,
        "vault_key": sealed_key,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": dict(sorted(raw.digests.items())),
        "rows": dict(sorted(raw.rows.items())),
    }
    return HubExtracts(
        incidents=incidents,
        incident_persons=persons,
        population=population,
        relations=relations,
        manifest=manifest,
        files=raw.files,
        digests=raw.digests,
        rows=raw.rows,
    )


def pseudonymise_dir(input_dir: Path, out_dir: Path, keys_dir: Path, *,
                     absent_districts: Collection[str] = ()) -> dict[str, Any]:
    """Read raw extracts from ``input_dir``, pseudonymise them and write the hub layout to ``out_dir``.

    ``absent_districts``: police districts named as having delivered no incidents (:func:`read_raw`).
    """
    keystore = KeyStore.load(keys_dir)
    raw = read_raw(input_dir, absent_districts=absent_districts)
    hub = pseudonymise_extracts(raw, keystore)
    write_hub(hub, out_dir)
    log.info("pseudonymised %s into %s", input_dir, out_dir)
    return {
        "out": str(out_dir),
        "key_id": hub.manifest["key_id"],
        "rows": hub.manifest["rows"],
        "persons_without_valid_cpr": int(hub.incident_persons["person"].null_count()),
    }
