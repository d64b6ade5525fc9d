"""The source station: raw extracts → the hub extract for one week (``docs/architecture.md``, ``docs/privacy.md``).

The station already holds identities, so everything that needs them happens here, in the
clear, and only pseudonyms leave:

1. **Select** the events the week's search can use: a catalogue code, registered in W's
   lookback window; on them, the persons whose role one of the event's codes counts.
2. **Resolve** those persons without a valid CPR number against the population register
   (:func:`socialsearch.station.resolution.resolve`: birth-date candidates, Danish name folding,
   Fellegi–Sunter with term frequencies, one-to-one, a fixed threshold; the number as written,
   the event's municipality and the relatives of the event's persons with a valid number as
   further evidence, none of which leaves the stage).
3. **Minimise**: keep the children (age 0..``child_max_age`` on the last day of W) who are such
   a person or whose adult is; the relations between them; the persons and events that link
   to one of them.
4. **Pseudonymise** each distinct CPR number once (HMAC-SHA256, :mod:`socialsearch.crypto.pseudonyms`),
   each event as a keyed reference, and seal the raw values of the shipped people and events to
   the key custodian (AES-SIV under a data key sealed to the custodian's X25519 key).
5. **Search** with the weekly rule and no history (:func:`draftable`): the children it drafts
   are every child the hub can draft.
6. **Seal and ship** only what the hub's history step reads in clear — per (child, event,
   person) of those children's signals the three pseudonyms, per event whether it is of W, per
   child its municipality — and seal the rest for the receiving municipality (codes, roles,
   links, districts, weeks, the rule's outcome, the age, the event's times and place) and each
   draft's statistics values for the key custodian.
7. **Order** every table by keyed values (a permutation no one without the secret can
   reproduce or relate to the raw files' order).

Single-site ``run`` on raw input calls the same :func:`pseudonymise_extracts`, so there is one
search path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from .. import identifiers, progress
from ..catalogue import Catalogue, load_catalogue
from ..contract import DATETIME, RELATIONS, age_on, iso_week
from ..crypto import municipal, vault
from ..crypto.keys import KeyStore
from ..crypto.municipal import MunicipalSealer
from ..crypto.pseudonyms import Pseudonymiser
from ..crypto.recipients import scoped_frame
from ..errors import UsageError
from ..hub.search import History, catalogue_events, weekly_search
from ..hub_extract import HubExtract, check_target, write_hub
from ..weeks import IsoWeek
from . import resolution
from .extracts import RawExtracts, read_raw

__all__ = ["draftable", "pseudonymise", "pseudonymise_extracts"]

log = logging.getLogger(__name__)


def _catalogue_events(incidents: pl.DataFrame, catalogue: Catalogue, week: IsoWeek) -> pl.DataFrame:
    """Events with a catalogue code registered in W's lookback window, long by (event, kind, code)."""
    codes = catalogue.codes_frame()
    start = pl.lit(week.lookback_start(catalogue.lookback_weeks), dtype=DATETIME)
    end = pl.lit(week.end, dtype=DATETIME)
    window = incidents.lazy().with_row_index("_event").filter(
        (pl.col("registered_at") >= start) & (pl.col("registered_at") < end)
    )
    return catalogue_events(window, codes, keep=("_event", "district", "incident_id")).collect()


def _signal_persons(persons: pl.DataFrame, events: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Incident persons on those events whose role one of the event's codes counts (one row per
    person row), with ``_event``, the normalised ``cpr`` (null when not valid), ``written_cpr``
    (the cell as written where it is not valid, else null) and names."""
    roles = catalogue.codes_frame().select("kind", "code", "role")
    counted = events.join(roles, on=["kind", "code"]).select("_event", "district", "incident_id", "role").unique()
    names = [c for c in ("given_name", "surname", "birth_date") if c in persons.columns]
    return (
        persons.lazy()
        # one join gives the filter and the event: an incident's (district, journal number) is
        # unique (checked on reading), so each counted (incident, role) is one event
        .join(counted.lazy(), on=["district", "incident_id", "role"], how="inner", maintain_order="left")
        .with_columns(identifiers.cpr_number(pl.col("cpr")).alias("_number"))
        # the number as written, where it is not a valid one: evidence for resolution only
        .select("_event", "role", pl.col("_number").alias("cpr"),
                pl.when(pl.col("_number").is_null()).then(pl.col("cpr")).alias("written_cpr"), *names)
        .collect()
    )


def _links(relations: pl.DataFrame, numbers: pl.DataFrame | None = None) -> pl.DataFrame:
    """The relations as ``child`` and ``adult`` CPR numbers (``Int64``) and ``relation`` (an
    ``Enum``): a sixth of the memory of their text. ``numbers`` are the two numbers when the
    reading already computed them (row for row)."""
    relation = pl.col("relation").cast(pl.Enum(RELATIONS))
    if numbers is None:
        return relations.select(identifiers.cpr_number(pl.col("child_cpr")).alias("child"),
                                identifiers.cpr_number(pl.col("adult_cpr")).alias("adult"), relation)
    return numbers.select("child", "adult").with_columns(relations.select(relation).to_series())


def _register(population: pl.DataFrame, numbers: pl.Series | None = None) -> pl.DataFrame:
    """The population with its CPR number as text (``cpr``, as delivered) and as a normalised
    ``Int64`` (``number``, the join key), birth date (from the CPR number), municipality and names.

    The delivered text is kept only for :func:`resolution.resolve` (which takes text and returns
    the matched resident's); no new column of six million strings is built for it. ``numbers``
    are the normalised numbers when the reading already computed them (row for row).
    """
    names = [pl.col(c) if c in population.columns else pl.lit(None, pl.String).alias(c)
             for c in ("given_name", "surname")]
    number = (identifiers.cpr_number(pl.col("cpr")) if numbers is None
              else pl.lit(numbers.rename("number"))).alias("number")
    return population.select("cpr", number, "municipality", *names).with_columns(
        identifiers.birth_date_of_number(pl.col("number")).alias("birth_date"))


def _register_index(persons: pl.DataFrame, register: pl.DataFrame) -> resolution.RegisterIndex | None:
    """The register's names, birth dates and residences as integer keys and counts (built once
    per run), or None when every person has a valid CPR number or the persons carry no names
    (nothing to resolve)."""
    if persons.filter(pl.col("cpr").is_null()).height == 0 or not {"given_name", "surname", "birth_date"} <= set(
            persons.columns):
        return None
    return resolution.RegisterIndex.build(register.select("cpr", "given_name", "surname", "birth_date",
                                                          "municipality"))


def _event_relatives(persons: pl.DataFrame, missing: pl.DataFrame, relations: pl.DataFrame) -> pl.DataFrame:
    """Per event of a person without a valid CPR number: ``_event``, ``kin`` and ``household``
    (:func:`resolution.relatives` of the event's persons with a valid number; the numbers as ten
    digits, which resolution compares with the register's on their digits)."""
    events = missing["_event"].unique().implode()
    co = persons.filter(pl.col("cpr").is_not_null() & pl.col("_event").is_in(events)).select(
        event="_event", person="cpr")
    found = resolution.relatives(co, relations.select("child", "adult"))
    ten = pl.element().cast(pl.String).str.zfill(10)
    return found.select(_event="event", kin=pl.col("kin").list.eval(ten),
                        household=pl.col("household").list.eval(ten))


def _resolve(persons: pl.DataFrame, index: resolution.RegisterIndex | None, places: pl.DataFrame,
             relations: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Give persons without a valid CPR number the resident :mod:`resolution` finds, if any.

    Besides names and birth date, the CPR number as written, the event's municipality
    (``places``: ``_event``, ``municipality``) against the residents' (the ``index``'s
    residence) and the relatives (``relations``: ``child``, ``adult`` numbers) of the
    event's persons with a valid number are evidence; none of them leaves this function.

    Returns the persons with ``cpr`` filled where resolved, ``resolved_by`` and
    ``match_probability``; and the counts for the manifest.
    """
    persons = persons.with_row_index("_qid")
    missing = persons.filter(pl.col("cpr").is_null())
    counts = {"without_valid_cpr": missing.height, "resolved": 0, "unresolved": missing.height}
    if missing.height == 0 or index is None:
        found = pl.DataFrame(schema={"_qid": pl.UInt32, "_found": pl.Int64, "match_probability": pl.Float64})
    else:
        queries = missing.join(places.select("_event", pl.col("municipality").cast(pl.String)), on="_event",
                               how="left", maintain_order="left").join(
            _event_relatives(persons, missing, relations), on="_event", how="left", maintain_order="left")
        outcome = resolution.resolve(
            queries.select(pl.col("_qid").alias("qid"), "given_name", "surname", "birth_date",
                           pl.col("written_cpr").cast(pl.String), "municipality", "kin", "household"), index)
        found = outcome.matches.filter(pl.col("cpr").is_not_null()).select(
            pl.col("qid").cast(pl.UInt32).alias("_qid"),
            identifiers.cpr_number(pl.col("cpr")).alias("_found"), "match_probability")
        counts["resolved"] = found.height
        counts["unresolved"] = missing.height - found.height
        counts.update({f"outcome_{k}": v for k, v in sorted(outcome.stats.items()) if k != "queries"})
    # only the columns kept go through the join (not the names and written numbers of every person)
    out = persons.select("_qid", "_event", "role", "cpr").join(found, on="_qid", how="left").select(
        "_event", "role",
        pl.coalesce("cpr", "_found").alias("cpr"),
        pl.when(pl.col("cpr").is_not_null()).then(pl.lit("cpr"))
        .when(pl.col("_found").is_not_null()).then(pl.lit("probabilistic")).alias("resolved_by"),
        pl.when(pl.col("cpr").is_null()).then(pl.col("match_probability")).alias("match_probability"),
    ).filter(pl.col("cpr").is_not_null())
    return out, counts


def _minimise(persons: pl.DataFrame, register: pl.DataFrame, relations: pl.DataFrame,
              week: IsoWeek, max_age: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The children the persons link to, the relations between them, and the linking persons.

    A child is a resident aged 0..``max_age`` on W's last day who is one of the persons (link
    ``self``) or whose adult, in ``relations`` (``child``, ``adult``: numbers; ``relation``), is
    one of them.
    """
    people = persons.select("cpr").unique()
    rel = (
        relations.lazy()
        .join(people.lazy(), left_on="adult", right_on="cpr", how="semi")
        .filter(pl.col("child") != pl.col("adult"))
        .select("child", "adult", pl.col("relation").cast(pl.String))
        .collect()
    )
    candidates = pl.concat([people.get_column("cpr"), rel.get_column("child")]).unique().to_frame("cpr")
    children = (
        register.join(candidates, left_on="number", right_on="cpr", how="semi")
        .select(pl.col("number").alias("cpr"), age_on(pl.col("birth_date"), week.sunday).alias("age"),
                "municipality")
        .filter(pl.col("age").is_between(0, max_age))
    )
    rel = rel.join(children.select(pl.col("cpr").alias("child")), on="child", how="semi").unique()
    linking = pl.concat([children.get_column("cpr"), rel.get_column("adult")]).unique().to_frame("cpr")
    return children, rel, persons.join(linking, on="cpr", how="semi")


def draftable(incidents: pl.DataFrame, persons: pl.DataFrame, children: pl.DataFrame, relations: pl.DataFrame,
              catalogue: Catalogue, week: IsoWeek
              ) -> tuple[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame], pl.DataFrame, pl.DataFrame]:
    """Only the rows that can change one of W's drafts, whatever the hub's ledger holds.

    A child can be drafted in W only if it has a signal registered in W and is eligible
    (immediate category or score ≥ threshold); earlier drafts can only take drafts away
    (their pairs are not new). So the children that the weekly search drafts with no history
    are every child the hub can draft, and their signals are all their drafts can show.
    ``incidents`` (with ``registered_week``), ``persons``, ``children`` (``person``,
    ``municipality``: children only) and ``relations`` are the hub frames; returns them cut to
    those children and the rows of their signals, and the search's signals and drafts. The
    same :func:`~socialsearch.hub.search.weekly_search` as the hub's: one search path.
    """
    result = weekly_search(
        incidents=incidents.select("event_ref", "district", "registered_week", "incident_code", "offence_code"),
        persons=persons.select("event_ref", "person", "role", "resolved_by", "match_probability"),
        population=children.select("person", "municipality"),
        relations=relations,
        catalogue=catalogue,
        week=week,
        history=History.empty(),
        draft_ids=lambda children, week: children,
    )
    signals = result.signals
    kept = (
        incidents.join(signals.select("event_ref").unique(), on="event_ref", how="semi"),
        persons.join(signals.select("event_ref", "person", "role").unique(), on=["event_ref", "person", "role"],
                     how="semi"),
        children.join(result.drafts.select(pl.col("child").alias("person")), on="person", how="semi"),
        relations.join(signals.filter(pl.col("link") != "self").select(
            "child", pl.col("person").alias("adult"), pl.col("link").alias("relation")).unique(),
            on=["child", "adult", "relation"], how="semi"),
    )
    return kept, signals, result.drafts


def _scoped(keystore: KeyStore, key_id: str, signals: pl.DataFrame, drafts: pl.DataFrame) -> pl.DataFrame:
    """Each child, person and event of the drafts as the receiving municipality's drafts show it
    (``_to``, ``kind``, ``value``, ``scoped``): what a sealed value names in its ``ref``."""
    to = drafts.select("child", pl.col("municipality").alias("_to"))
    mine = signals.join(to, on="child")
    return scoped_frame(pl.concat([
        to.select("_to", pl.col("child").alias("value"), pl.lit("person").alias("kind")),
        mine.select("_to", pl.col("person").alias("value"), pl.lit("person").alias("kind")),
        mine.select("_to", pl.col("event_ref").alias("value"), pl.lit("event").alias("kind")),
    ]).unique(), keystore, key_id)


def _ref(scoped: pl.DataFrame, kind: str, column: str, to: str = "_to") -> pl.DataFrame:
    """The scoping table for one join: ``to``, ``column`` (hub value) → ``_<column>`` (scoped)."""
    return scoped.filter(pl.col("kind") == kind).select(
        pl.col("_to").alias(to), pl.col("value").alias(column), pl.col("scoped").alias(f"_{column}"))


def _seal_children(sealer: MunicipalSealer, scoped: pl.DataFrame, children: pl.DataFrame, signals: pl.DataFrame,
                   drafts: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Each drafted child's municipality, and ``details`` sealed for it: the age and what the
    rule decided (rule, score, threshold, the immediate categories that made it)."""
    immediate = [c.id for c in catalogue.categories if c.immediate]
    categories = signals.group_by("child").agg(
        pl.col("category").filter(pl.col("category").is_in(immediate)).unique().sort().alias("immediate_categories"))
    kids = (
        drafts.select("child", "municipality", "rule", "score", "threshold")
        .join(children.select(pl.col("person").alias("child"), "age"), on="child", how="left")
        .join(categories, on="child", how="left")
        .join(_ref(scoped, "person", "child", "municipality"), on=["municipality", "child"], how="left")
        .with_columns(pl.when(pl.col("rule") == "immediate").then(pl.col("immediate_categories"))
                      .otherwise(pl.lit([], pl.List(pl.String))).alias("immediate_categories"))
    )
    kids = kids.with_columns(text=municipal.plaintext({
        "ref": pl.col("_child"), "age": pl.col("age"), "rule": pl.col("rule"), "score": pl.col("score"),
        "threshold": pl.col("threshold"), "immediate_categories": pl.col("immediate_categories")}))
    return kids.select(pl.col("child").alias("person"), "municipality",
                       sealer.seal(kids["municipality"], kids["text"], "child").alias("details"))


def _seal_signals(sealer: MunicipalSealer, scoped: pl.DataFrame, signals: pl.DataFrame,
                  drafts: pl.DataFrame) -> pl.DataFrame:
    """One row per (child, event, person) of the drafts' signals, with ``details`` sealed for
    the child's municipality: every (role, link, kind, code) the person gives the child on the
    event and how the person was resolved. One row whatever their number, so that no count of
    rows tells a mother who is also the custodian from a father who is not."""
    rows = (
        signals.join(drafts.select("child", pl.col("municipality").alias("_to")), on="child")
        .sort("role", "link", "kind", "code")
        .group_by("_to", "child", "event_ref", "person", maintain_order=True)
        .agg(pl.struct("role", "link", "kind", "code", "resolved_by", "match_probability").alias("signals"))
        .join(_ref(scoped, "person", "child"), on=["_to", "child"], how="left")
        .join(_ref(scoped, "event", "event_ref"), on=["_to", "event_ref"], how="left")
        .join(_ref(scoped, "person", "person"), on=["_to", "person"], how="left")
    )
    rows = rows.with_columns(text=municipal.plaintext({
        "ref": pl.concat_str("_child", "_event_ref", "_person", separator="/"), "signals": pl.col("signals")}))
    return rows.select("child", "event_ref", "person",
                       sealer.seal(rows["_to"], rows["text"], "signal").alias("details"))


def _seal_events(sealer: MunicipalSealer, scoped: pl.DataFrame, incidents: pl.DataFrame, signals: pl.DataFrame,
                 drafts: pl.DataFrame) -> pl.DataFrame:
    """``event_details`` (event_ref, recipient, details): each event of a draft sealed for the
    draft's municipality: its date-times, municipality, registration week, police district and
    its catalogue codes (kind, code, label, category, category label, weight)."""
    codes = (
        signals.select("event_ref", "kind", "code", "label", "category", "category_label", "weight").unique()
        .sort("kind", "code")
        .group_by("event_ref", maintain_order=True)
        .agg(pl.struct("kind", "code", "label", "category", "category_label", "weight").alias("codes"))
    )
    recipients = (
        signals.select("child", "event_ref").unique()
        .join(drafts.select("child", pl.col("municipality").alias("recipient")), on="child")
        .select("event_ref", "recipient").unique()
    )
    iso = "%Y-%m-%dT%H:%M:%S%:z"
    events = (
        recipients.join(incidents.select("event_ref", "occurred_at", "registered_at", "municipality", "district",
                                         "registered_week"), on="event_ref")
        .join(codes, on="event_ref", how="left")
        .join(_ref(scoped, "event", "event_ref", "recipient"), on=["recipient", "event_ref"], how="left")
    )
    events = events.with_columns(text=municipal.plaintext({
        "ref": pl.col("_event_ref"), "occurred_at": pl.col("occurred_at").dt.to_string(iso),
        "registered_at": pl.col("registered_at").dt.to_string(iso), "municipality": pl.col("municipality"),
        "registered_week": pl.col("registered_week"), "district": pl.col("district"), "codes": pl.col("codes")}))
    return events.select("event_ref", "recipient",
                         sealer.seal(events["recipient"], events["text"], "event").alias("details"))


def _seal_statistics(data_key: bytes, draft_ids: pl.Series, children: pl.DataFrame, incidents: pl.DataFrame,
                     signals: pl.DataFrame, drafts: pl.DataFrame) -> pl.DataFrame:
    """Each drafted child's ``statistics`` (what ``socialsearch stats`` reads of a draft: the
    age, the rule, the signals' categories and police districts, the newest registration time), sealed
    for the key custodian and naming the draft id the hub will give the child's draft."""
    iso = "%Y-%m-%dT%H:%M:%S%:z"
    per_child = (
        signals.join(incidents.select("event_ref", "registered_at"), on="event_ref", how="left")
        .group_by("child")
        .agg(pl.col("category").drop_nulls().unique().sort().alias("categories"),
             pl.col("district").drop_nulls().unique().sort().alias("districts"),
             pl.col("registered_at").max().dt.to_string(iso).alias("newest"))
    )
    kids = (
        drafts.select("child", "rule").with_columns(draft_ids.alias("_draft"))
        .join(children.select(pl.col("person").alias("child"), "age"), on="child", how="left")
        .join(per_child, on="child", how="left")
    )
    text = kids.select(municipal.plaintext({
        "ref": pl.col("_draft"), "age": pl.col("age"), "rule": pl.col("rule"), "categories": pl.col("categories"),
        "districts": pl.col("districts"), "newest": pl.col("newest")})).to_series()
    return kids.select(pl.col("child").alias("person"), municipal.seal_statistics(text, data_key).alias("statistics"))


def _no_stage(name: str) -> None:
    """The default stage observer: nothing."""


def pseudonymise_extracts(raw: RawExtracts, keystore: KeyStore, *, week: IsoWeek,
                          catalogue: Catalogue, on_stage: Callable[[str], None] = _no_stage) -> HubExtract:
    """The hub extract of ``raw`` for ``week`` and ``catalogue`` (see the module docstring).

    ``on_stage(name)`` is called as each stage ends (``select``, ``register``, ``resolve``,
    ``minimise``, ``identities``, ``events``, ``draftable``, ``seal``, ``assemble``): the benchmarks
    time and measure them.
    """
    pseudonymiser = Pseudonymiser(keystore)
    key_id = pseudonymiser.key_id
    data_key = keystore.subkey("vault", key_id)
    # Each raw frame is let go as soon as the station is done with it (freed when the caller
    # holds no other reference, as `pseudonymise` does not): at ten times national scale the
    # population and the relations are most of what the process holds.
    incidents, incident_persons, population = raw.incidents, raw.incident_persons, raw.population
    raw_relations = _links(raw.relations, raw.relation_numbers)
    rows, numbers = raw.rows, raw.population_numbers
    del raw

    with progress.stage("selecting the week's catalogue events"):
        events = _catalogue_events(incidents, catalogue, week)
        persons = _signal_persons(incident_persons, events, catalogue)
        del incident_persons
        # Only the catalogue events in the window can ship: the other incidents are let go here.
        in_week = int(incidents.select(pl.col("registered_at").is_between(
            pl.lit(week.start, dtype=DATETIME), pl.lit(week.end, dtype=DATETIME), closed="left").sum()).item())
        # ``_event`` is the incident's row number: its rows are taken by position, in order
        kept = events.get_column("_event").unique().sort()
        incidents = incidents.select(kept.alias("_event"), pl.all().gather(kept))
        on_stage("select")
        register = _register(population, numbers)
        del population, numbers
        index = _register_index(persons, register)
        on_stage("register")
    with progress.stage("resolving people without a valid CPR number"):
        persons, counts = _resolve(persons, index, incidents.select("_event", "municipality"), raw_relations)
        del index
        # The delivered CPR text and the names served resolution only.
        register = register.select("number", "birth_date", "municipality")
        on_stage("resolve")
    with progress.stage("keeping only the linked children, relations and persons"):
        children, relations, persons = _minimise(persons, register, raw_relations, week, catalogue.child_max_age)
        del register, raw_relations
        on_stage("minimise")

    # Each distinct CPR number of a shipped person is hashed and sealed once, then joined back.
    cprs = pl.concat([children.get_column("cpr"), relations.get_column("adult"),
                      persons.get_column("cpr")]).unique().rename("cpr")
    text = cprs.cast(pl.String).str.zfill(10)  # the normalised CPR number DDMMYYSSSS
    ids = cprs.to_frame().with_columns(
        person=pseudonymiser.persons_distinct_normalised(text),
        person_sealed=vault.seal_values(text, data_key),
    )
    on_stage("identities")
    shipped = events.select("_event").unique().join(persons.select("_event").unique(), on="_event", how="semi")
    incidents = incidents.join(shipped, on="_event", how="semi")
    incidents = incidents.with_columns(
        event_ref=pseudonymiser.events(incidents["district"], incidents["incident_id"]),
        event_sealed=vault.seal_values(vault.event_reference_text(incidents["district"], incidents["incident_id"]),
                                       data_key),
        registered_week=iso_week(pl.col("registered_at")),
    )
    on_stage("events")
    person_rows = (
        persons.join(incidents.select("_event", "event_ref"), on="_event")
        .join(ids, on="cpr")
        .select("event_ref", "person", "role", "resolved_by", "match_probability", "person_sealed")
        .unique(subset=["event_ref", "person", "role"], keep="first", maintain_order=True)
    )
    hub_children = children.join(ids, on="cpr").select("person", "age", "municipality", "person_sealed")
    hub_relations = (
        relations.join(ids.select(pl.col("cpr").alias("child"), pl.col("person").alias("_c")), on="child")
        .join(ids.select(pl.col("cpr").alias("adult"), pl.col("person").alias("_a")), on="adult")
        .select(pl.col("_c").alias("child"), pl.col("_a").alias("adult"), "relation")
    )
    with progress.stage("keeping only what can make a draft"):
        (incidents, person_rows, hub_children, hub_relations), signals, drafts = draftable(
            incidents, person_rows, hub_children, hub_relations, catalogue, week)
        on_stage("draftable")
    with progress.stage("sealing exact values for the receiving municipalities"):
        sealer = MunicipalSealer(keystore.municipal_public_keys, str(week))
        scoped = _scoped(keystore, key_id, signals, drafts)
        hub_signals = _seal_signals(sealer, scoped, signals, drafts)
        kids = _seal_children(sealer, scoped, hub_children, signals, drafts, catalogue)
        stats_sealed = _seal_statistics(data_key, pseudonymiser.draft_ids(drafts["child"], str(week)), hub_children,
                                        incidents, signals, drafts)
        event_details = _seal_events(sealer, scoped, incidents, signals, drafts)
        on_stage("seal")
    shipped_people = pl.concat([hub_signals.select("child").unique().to_series().rename("person"),
                                hub_signals.get_column("person")]).unique().to_frame()
    sealed_people = pl.concat([hub_children.select("person", "person_sealed"),
                               person_rows.select("person", "person_sealed")]).unique("person", keep="first")
    tables = {
        # Ordered by keyed values only: nothing about the raw files' order survives.
        "events": incidents.join(hub_signals.select("event_ref").unique(), on="event_ref", how="semi").select(
            "event_ref", (pl.col("registered_week") == str(week)).alias("in_week"), "event_sealed",
        ).sort("event_ref"),
        "signals": hub_signals.sort("child", "event_ref", "person"),
        "children": kids.join(stats_sealed, on="person", how="left").select(
            "person", "municipality", "details", "statistics").sort("person"),
        "persons": shipped_people.join(sealed_people, on="person", how="left").sort("person"),
        "event_details": event_details.sort("event_ref", "recipient"),
    }
    manifest: dict[str, Any] = {
        "week": str(week),
        "catalogue": {"sha256": catalogue.digest, "lookback_weeks": catalogue.lookback_weeks,
                      "child_max_age": catalogue.child_max_age},
        "key_id": key_id,
        "custodian_key_id": keystore.custodian_key_id,
        "vault_key": vault.seal_data_key(data_key, keystore.custodian_public_key,
                                         keystore.custodian_key_id, key_id=key_id),
        "municipal_keys": sealer.sealed_keys(),
        "municipalities_without_key": sorted(sealer.missing),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "counts": {
            "rows_read": dict(sorted(rows.items())),
            "incidents_registered_in_week": in_week,
            "persons": counts,
            "shipped": {name: frame.height for name, frame in tables.items()},
        },
    }
    on_stage("assemble")
    return HubExtract(manifest=manifest, **tables)


def _check_folders(input_dir: Path, out_dir: Path) -> None:
    """Refuse an output folder that is, contains or lies inside the input folder."""
    src, dst = input_dir.resolve(), out_dir.resolve()
    if src == dst or src.is_relative_to(dst) or dst.is_relative_to(src):
        raise UsageError(
            f"--out {out_dir} would overlap the raw extracts in --input {input_dir}; "
            "write the hub extract to a folder of its own"
        )


def pseudonymise(input_dir: str | Path, out_dir: str | Path, keys_dir: str | Path, *, week: IsoWeek | str,
                 catalogue: str | Path | None = None, force: bool = False,
                 absent_districts: Collection[str] = ()) -> dict[str, Any]:
    """Read raw extracts, make the hub extract for ``week`` and write it to ``out_dir``.

    ``out_dir`` must not overlap ``input_dir``, and an existing non-empty ``out_dir`` is replaced
    only with ``force``; the folder is written beside it and renamed into place when complete.
    Returns the manifest's counts and the receiving municipalities without a key pair at the
    station (no identifiers).
    """
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    week = week if isinstance(week, IsoWeek) else IsoWeek.parse(str(week))
    _check_folders(input_dir, out_dir)
    check_target(out_dir, force=force)  # before minutes of work, and again when writing
    cat = load_catalogue(Path(catalogue) if catalogue is not None else None)
    keystore = KeyStore.load(keys_dir)
    # No name is kept for the raw extracts here, so the station can free each frame when done.
    hub = pseudonymise_extracts(read_raw(input_dir, absent_districts=absent_districts), keystore,
                                week=week, catalogue=cat)
    write_hub(hub, out_dir, force=force)
    log.info("wrote the hub extract for %s to %s", week, out_dir)
    missing = hub.manifest["municipalities_without_key"]
    if missing:
        log.warning("no key pair at the station for %d receiving municipality(ies) (%s): their drafts will carry "
                    "only pseudonyms, with no rule, codes, roles, links, ages, times or places "
                    "(socialsearch keys municipality add)", len(missing), ", ".join(missing))
    return {"out": str(out_dir), "week": str(week), "key_id": hub.key_id,
            "municipalities_without_key": missing, **hub.manifest["counts"]}
