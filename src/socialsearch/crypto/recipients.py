"""Recipient-scoped pseudonyms: what each municipality's drafts call a person or an event.

The hub's own pseudonyms (in its extract and its ledger) are the same everywhere. If they went
into the drafts, two municipalities could join their drafts on them and learn that the same
adult appears in both. So every pseudonym and event reference written under
``OUT/<week>/<kommunekode>/`` is re-keyed for that municipality, so that recipients cannot join
each other's drafts (``docs/privacy.md``)::

    K_m      = HKDF-SHA256(recipient sub-key, info = b"socialsearch/v2/recipient/" + kommunekode)
    person   = "<kommunekode>." + b64u(HMAC-SHA256(K_m, hub pseudonym)[:16])
    event    = "<kommunekode>.e." + b64u(HMAC-SHA256(K_m, hub event reference)[:16])

The recipient sub-key is a hub key (``keys export --role hub`` includes it); it opens nothing.
The same child keeps one pseudonym in its municipality week after week (the same hub
pseudonym under the same key); another municipality sees an unrelated value. Draft ids stay
global: they name what was sent, for the ledger and the custodian.
"""

from __future__ import annotations

import polars as pl

from . import _native
from .keys import KeyStore, hkdf
from .pseudonyms import default_threads

__all__ = ["recipient_key", "scope_pseudonyms", "scoped_frame", "scoped_values"]

_INFO = b"socialsearch/v2/recipient/"


def recipient_key(keystore: KeyStore, key_id: str, municipality: str) -> bytes:
    """The scoping key of one municipality (32 bytes)."""
    return hkdf(keystore.subkey("recipient", key_id), _INFO + municipality.encode("ascii"))


def scoped_frame(values: pl.DataFrame, keystore: KeyStore, key_id: str) -> pl.DataFrame:
    """``_to`` (the recipient municipality), ``value``, ``kind`` (distinct) → adds ``scoped``.

    One HMAC per row, under its municipality's key, in one call of the native kernel: the
    loop is over the (at most 98) municipalities' keys, never over values.
    """
    if values.height == 0:
        return values.with_columns(scoped=pl.lit(None, pl.String))
    recipients = values.select("_to", "kind").unique().sort("_to", "kind").with_row_index("_key")
    pairs = [(str(m), str(kind)) for m, kind in recipients.select("_to", "kind").rows()]
    keys = {m: recipient_key(keystore, key_id, m) for m in dict.fromkeys(m for m, _ in pairs)}
    indexed = values.join(recipients, on=["_to", "kind"], how="left", maintain_order="left", nulls_equal=True)
    scoped = _native.hmac_sha256_keyed(
        [keys[m] for m, _ in pairs], [_prefix(m, kind) for m, kind in pairs],
        indexed.get_column("_key").to_numpy(), values.get_column("value").cast(pl.String),
        "base64url16", default_threads())
    return values.with_columns(scoped=pl.Series("scoped", scoped, dtype=pl.String))


def _prefix(municipality: str, kind: str) -> bytes:
    """What a scoped value of ``kind`` starts with: ``<kommunekode>.`` or ``<kommunekode>.e.``."""
    return (f"{municipality}.e." if kind == "event" else f"{municipality}.").encode("ascii")


def scope_pseudonyms(drafts: pl.DataFrame, signals: pl.DataFrame, keystore: KeyStore,
                     key_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The search result's drafts and signals with every person pseudonym and event reference
    replaced by its value scoped to the draft's municipality (see the module docstring).

    ``drafts`` needs ``draft_id, municipality, child, persons`` (a list of ``{pseudonym, link}``);
    ``signals`` needs ``draft_id, child, person, event_ref``.
    """
    # The recipient is the draft's municipality (a signal's own ``municipality`` is where it happened).
    where = drafts.select("draft_id", pl.col("municipality").alias("_to"))
    sig = signals.join(where, on="draft_id", how="left")
    listed = (drafts.select(pl.col("municipality").alias("_to"), "persons").explode("persons")
              .select("_to", pl.col("persons").struct.field("pseudonym").alias("value")))
    values = pl.concat([
        drafts.select(pl.col("municipality").alias("_to"), pl.col("child").alias("value"),
                      pl.lit("person").alias("kind")),
        listed.drop_nulls().with_columns(kind=pl.lit("person")),
        sig.select("_to", pl.col("person").alias("value"), pl.lit("person").alias("kind")),
        sig.select("_to", pl.col("event_ref").alias("value"), pl.lit("event").alias("kind")),
    ]).unique()
    table = scoped_frame(values, keystore, key_id).select("_to", "value", "kind", "scoped")
    persons = table.filter(pl.col("kind") == "person").drop("kind")
    events = table.filter(pl.col("kind") == "event").drop("kind")

    def swap(frame: pl.DataFrame, column: str, lookup: pl.DataFrame) -> pl.DataFrame:
        renamed = lookup.rename({"value": column, "scoped": f"_{column}"})
        return (frame.join(renamed, on=["_to", column], how="left", maintain_order="left")
                .with_columns(pl.col(f"_{column}").alias(column)).drop(f"_{column}"))

    sig = swap(swap(swap(sig, "child", persons), "person", persons), "event_ref", events).drop("_to")
    exploded = (
        drafts.select("draft_id", pl.col("municipality").alias("_to"), pl.col("persons").alias("_p"))
        .explode("_p")
        .with_row_index("_i")
        .with_columns(pl.col("_p").struct.field("pseudonym").alias("value"), pl.col("_p").struct.field("link"))
        .join(persons, on=["_to", "value"], how="left", maintain_order="left")
        .sort("_i")
    )
    lists = (
        exploded.filter(pl.col("_p").is_not_null())
        .group_by("draft_id", maintain_order=True)
        .agg(pl.struct(pl.col("scoped").alias("pseudonym"), "link").alias("persons"))
    )
    drafts_to = drafts.with_columns(pl.col("municipality").alias("_to"))
    out = swap(drafts_to, "child", persons)
    out = out.drop("persons").join(lists, on="draft_id", how="left", maintain_order="left").select(drafts.columns)
    out = out.with_columns(pl.col("persons").fill_null(pl.lit([], dtype=drafts.schema["persons"])))
    return out, sig.select(signals.columns)


def scoped_values(values: list[str], keystore: KeyStore, key_id: str, municipality: str, *,
                  kind: str = "person") -> dict[str, str]:
    """hub value → the value ``municipality``'s drafts show, for ``kind`` ``person`` or ``event``
    (the custodian uses it to tell a caseworker which pseudonym in their page is whom)."""
    frame = pl.DataFrame({"value": values}, schema={"value": pl.String}).unique().with_columns(
        _to=pl.lit(municipality), kind=pl.lit(kind))
    table = scoped_frame(frame, keystore, key_id)
    return dict(zip(table["value"].to_list(), table["scoped"].to_list(), strict=True))
