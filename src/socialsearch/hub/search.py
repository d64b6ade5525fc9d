"""The weekly search of ``docs/search.md``: catalogue codes → signals → drafts, with Polars joins.

The whole search is a handful of lazy joins over pseudonymised frames; no Python touches a
row. The plan, cheapest filter first:

1. incidents registered in the lookback window whose incident or offence code is in the
   catalogue (``is_in`` on a few dozen codes), long by (event, kind, code);
2. ⋈ incident persons on ``event_ref``, ⋈ the catalogue's (kind, code, role) rows: who was
   registered on a catalogue event in a role that code counts;
3. link each such person to children: the person itself (``self``) and, through
   ``relations``, every child the person is an adult of; look the distinct candidates up in
   the population once (so the 5.9 M-row extract is never carried along) and keep those of
   child age;
4. per child: one weight per distinct event (the largest matching weight), the score, the
   immediate flag and whether a new signal was registered in the week; draft or not;
5. only for drafted children: event and code attributes, persons, earlier drafts, draft ids.

See ``docs/search.md`` for every interpretation made.

Examples
--------
A father (``F``) is a suspect on two violence events (offence 1100, weight 2) in two districts
in week 47; his child ``C`` (living in 101) gets a threshold draft with score 4:

>>> from socialsearch.catalogue import load_catalogue
>>> inc = pl.DataFrame({"event_ref": ["e1", "e2"], "district": ["KBH", "NJY"],
...                     "registered_week": ["2026-W47", "2026-W47"],
...                     "incident_code": [None, None], "offence_code": ["1100", "1100"]})
>>> per = pl.DataFrame({"event_ref": ["e1", "e2"], "person": ["F", "F"], "role": ["suspect", "suspect"]})
>>> pop = pl.DataFrame({"person": ["C"], "municipality": ["101"]})  # the station kept children only
>>> rel = pl.DataFrame({"child": ["C"], "adult": ["F"], "relation": ["father"]})
>>> result = weekly_search(incidents=inc, persons=per, population=pop, relations=rel,
...                        catalogue=load_catalogue(None), week=IsoWeek.parse("2026-W47"),
...                        history=History.empty(), draft_ids=lambda c, w: "D" + w + "-" + c)
>>> result.drafts.select("draft_id", "municipality", "rule", "score").rows()
[('D2026-W47-C', '101', 'threshold', 4)]
>>> result.signals.select("event_ref", "link", "weight", "new").rows()
[('e1', 'father', 2, True), ('e2', 'father', 2, True)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl

from ..catalogue import Catalogue
from ..contract import age_on, iso_week, to_local
from ..weeks import IsoWeek

__all__ = [
    "DRAFT_SCHEMA",
    "SIGNAL_SCHEMA",
    "DraftIds",
    "FrameLike",
    "History",
    "SearchResult",
    "HUB_SIGNAL_SCHEMA",
    "catalogue_events",
    "hub_search",
    "weekly_search",
]

FrameLike = pl.DataFrame | pl.LazyFrame
DraftIds = Callable[[pl.Series, str], pl.Series]

SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "draft_id": pl.String(),
    "child": pl.String(),
    "event_ref": pl.String(),
    "registered_week": pl.String(),
    "district": pl.String(),
    "kind": pl.String(),
    "code": pl.String(),
    "label": pl.String(),
    "category": pl.String(),
    "category_label": pl.String(),
    "role": pl.String(),
    "link": pl.String(),
    "person": pl.String(),
    "weight": pl.Int64(),
    "new": pl.Boolean(),
    "resolved_by": pl.String(),
    "match_probability": pl.Float64(),
}
"""Columns and types of :attr:`SearchResult.signals` (``docs/search.md``)."""

DRAFT_SCHEMA: dict[str, pl.DataType] = {
    "draft_id": pl.String(),
    "week": pl.String(),
    "child": pl.String(),
    "municipality": pl.String(),
    "rule": pl.String(),
    "score": pl.Int64(),
    "threshold": pl.Int64(),
    "n_signals": pl.Int64(),
    "n_new_signals": pl.Int64(),
    "persons": pl.List(pl.Struct({"pseudonym": pl.String(), "link": pl.String()})),
    "previous_drafts": pl.List(pl.String()),
}
"""Columns and types of :attr:`SearchResult.drafts` (``docs/search.md``)."""

HUB_SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "draft_id": pl.String(),
    "child": pl.String(),
    "event_ref": pl.String(),
    "person": pl.String(),
    "in_week": pl.Boolean(),
    "new": pl.Boolean(),
}
"""Columns and types of :func:`hub_search`'s signals: one row per (child, event, person) that
gives a drafted child at least one signal (which ones is sealed for the municipality)."""

_PAIRS_SCHEMA = {"child": pl.String(), "event_ref": pl.String()}
_PREVIOUS_SCHEMA = {"child": pl.String(), "draft_id": pl.String(), "week": pl.String()}

# One signal is one row per this key (result_schema.md).
_SIGNAL_KEY = ["child", "event_ref", "person", "role", "link", "kind", "code"]
_EVENT_ATTRS = ["event_ref", "registered_week", "district"]


@dataclass(frozen=True)
class History:
    """What earlier weeks' drafts contained (from the ledger; weeks strictly before W).

    Attributes
    ----------
    drafted_pairs
        ``child``, ``event_ref``: every (child, event) pair contained in an earlier draft.
    previous_drafts
        ``child``, ``draft_id``, ``week`` (``"2026-W45"``): the earlier drafts.
    """

    drafted_pairs: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=_PAIRS_SCHEMA)
    )
    previous_drafts: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=_PREVIOUS_SCHEMA)
    )

    @classmethod
    def empty(cls) -> History:
        """No earlier drafts: the first week ever searched."""
        return cls()


@dataclass(frozen=True)
class SearchResult:
    """The outcome of :func:`weekly_search`.

    Attributes
    ----------
    signals
        Every signal in the lookback of every drafted child (:data:`SIGNAL_SCHEMA`), sorted by
        (draft_id, registered_week, event_ref, code, person, link).
    drafts
        One row per draft emitted in the week (:data:`DRAFT_SCHEMA`), sorted by
        (municipality, draft_id).
    stats
        Counts for the run summary (no identifiers); see ``docs/search.md``.
    """

    signals: pl.DataFrame
    drafts: pl.DataFrame
    stats: dict[str, int]


def weekly_search(
    *,
    incidents: FrameLike,
    persons: FrameLike,
    population: FrameLike,
    relations: FrameLike,
    catalogue: Catalogue,
    week: IsoWeek,
    history: History,
    draft_ids: DraftIds,
) -> SearchResult:
    """Run the weekly search of ``docs/search.md`` for ``week`` over pseudonymised frames.

    Parameters
    ----------
    incidents
        ``event_ref, district, registered_week, incident_code, offence_code``, the week as
        ISO text (``"2026-W47"``, the hub extract's grain); or ``registered_at`` (a date-time,
        naive meaning Copenhagen time) instead of ``registered_week``. Other columns are
        not read.
    persons
        Resolved incident persons: ``event_ref, person, role`` and optionally
        ``resolved_by`` (default ``"cpr"``) and ``match_probability`` (default null). Rows
        with a null ``person`` are ignored.
    population
        ``person, municipality``, one row per person, and ``birth_date`` (a full CPR extract)
        or ``age`` (whole years on W's last day) to tell children; without either every row
        is a child (the hub extract's ``children``: the station decided the age).
    relations
        ``child, adult, relation`` (mother, father, custodian, household).
    catalogue
        The event codes and the rule.
    week
        The ISO week W being searched.
    history
        Earlier drafts (weeks strictly before W).
    draft_ids
        ``draft_ids(children, str(week))`` returns one draft id per child, same order.

    Returns
    -------
    SearchResult
        Signals and drafts (columns in ``SIGNAL_SCHEMA`` and ``DRAFT_SCHEMA``), and counts.
    """
    window = _in_window(_lazy(incidents), [str(week.shift(-i)) for i in range(catalogue.lookback_weeks)])
    codes = catalogue.codes_frame()

    matched, event_attrs, stats = _match_codes(window, _persons(_lazy(persons)), codes, week)
    related, children = _link_population(
        matched, _lazy(relations), _lazy(population), week, catalogue.child_max_age, stats
    )
    core = _signals_of_children(matched, related, children)

    signals_all = _enrich(core, event_attrs, codes, history, str(week))
    per_child = _per_child(signals_all, catalogue.threshold)
    drafted = per_child.filter(pl.col("drafted"))
    draft_frame = _drafts(drafted, signals_all, children, history, catalogue, week, draft_ids)
    signals = _signals_out(signals_all, draft_frame)

    stats.update(
        signals_in_lookback=signals_all.height,
        new_signals=int(signals_all["new"].sum()),
        new_signals_in_week=int((signals_all["new"] & signals_all["in_week"]).sum()),
        children_with_signals=per_child.height,
        children_with_new_signals_in_week=int(per_child["has_new_in_week"].sum()),
        children_eligible=int(per_child["eligible"].sum()),
        drafts=draft_frame.height,
        drafts_immediate=int((draft_frame["rule"] == "immediate").sum()),
        drafts_threshold=int((draft_frame["rule"] == "threshold").sum()),
        drafts_follow_up=int((draft_frame["previous_drafts"].list.len() > 0).sum()),
        municipalities_with_drafts=draft_frame["municipality"].n_unique(),
        signals_in_drafts=signals.height,
    )
    return SearchResult(signals=signals, drafts=draft_frame, stats=stats)


def _match_codes(
    window: pl.LazyFrame, persons: pl.LazyFrame, codes: pl.DataFrame, week: IsoWeek
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """Stage 1: persons on a catalogue event in a role the code counts.

    Returns the matches (event_ref, kind, code, person, role, resolved_by,
    match_probability), the attributes of the catalogue events (one row per event) and the
    window's counts. The window is scanned once; the rest works on the catalogue events.
    """
    this_week = pl.col("registered_week") == str(week)
    long, *counts = pl.collect_all(
        [
            catalogue_events(window, codes),
            window.select(pl.len()),
            window.filter(this_week).select(pl.len()),
        ]
    )
    event_attrs = long.select(_EVENT_ATTRS).unique(subset="event_ref", keep="first")
    matched = (
        long.lazy()
        .select("event_ref", "kind", "code")
        .join(persons, on="event_ref", how="inner")
        .join(
            codes.lazy().select("kind", "code", "role"), on=["kind", "code", "role"], how="inner"
        )
        .collect()
    )
    stats = {
        "events_in_window": int(counts[0].item()),
        "events_in_week": int(counts[1].item()),
        "catalogue_events": event_attrs.height,
        "catalogue_events_in_week": int((event_attrs["registered_week"] == str(week)).sum()),
        "role_matches": matched.height,
    }
    return matched, event_attrs, stats


def _link_population(
    matched: pl.DataFrame,
    relations: pl.LazyFrame,
    population: pl.LazyFrame,
    week: IsoWeek,
    max_age: int,
    stats: dict[str, int],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Stage 2: the matched adults' related children, and who among the candidates is a child.

    The population is probed once with the distinct candidates (matched persons and their
    related children), so the national extract is never carried through a join. Returns
    the matches joined to relations (with ``child``, ``link``) and the children (``child``,
    ``municipality``, ``age``); adds the not-in-population counts to ``stats``.
    """
    rel = relations.select("child", "adult", pl.col("relation").alias("link")).filter(
        pl.col("child") != pl.col("adult")
    )
    related = matched.lazy().join(rel, left_on="person", right_on="adult", how="inner").collect()
    candidates = (
        pl.concat(
            [
                matched.select("person", pl.lit(True).alias("matched")),
                related.select(pl.col("child").alias("person"), pl.lit(False).alias("matched")),
            ]
        )
        .lazy()
        .group_by("person")
        .agg(pl.col("matched").any(), (~pl.col("matched")).any().alias("related"))
    )
    # A full population frame gives birth dates; a hub extract's children are children already.
    schema = population.collect_schema()
    age = (pl.col("age") if "age" in schema else age_on(pl.col("birth_date"), week.sunday) if "birth_date" in schema
           else pl.lit(0))
    known = (
        candidates.join(
            population.select("person", "municipality", age.cast(pl.Int64).alias("age"), pl.lit(True).alias("in_pop")),
            on="person",
            how="left",
        )
        .select(
            pl.col("person").alias("child"),
            "matched",
            "related",
            "municipality",
            pl.col("in_pop").fill_null(False).alias("in_population"),
            pl.col("age").cast(pl.Int64),
        )
        .with_columns(pl.col("age").is_between(0, max_age).fill_null(False).alias("is_child"))
        .collect()
    )
    children = known.filter("is_child").select("child", "municipality")
    outside = known.filter(~pl.col("in_population"))
    stats["persons_not_in_population"] = int(outside["matched"].sum())
    stats["children_not_in_population"] = int(outside["related"].sum())
    stats["related_not_of_child_age"] = int(
        known.filter(pl.col("related") & pl.col("in_population") & ~pl.col("is_child")).height
    )
    return related, children


def _signals_of_children(
    matched: pl.DataFrame, related: pl.DataFrame, children: pl.DataFrame
) -> pl.DataFrame:
    """Stage 3: ``self`` links and adult links whose child is a child, one row per signal."""
    self_links = matched.join(
        children.select(pl.col("child").alias("person")), on="person", how="semi"
    ).with_columns(pl.col("person").alias("child"), pl.lit("self").alias("link"))
    adult_links = related.join(children.select("child"), on="child", how="semi")
    both = pl.concat([self_links.select(_CORE), adult_links.select(_CORE)], how="vertical")
    return _dedupe_signals(both.lazy()).collect()


_CORE = ["child", "event_ref", "person", "role", "link", "kind", "code", "resolved_by",
         "match_probability"]


def _lazy(frame: FrameLike) -> pl.LazyFrame:
    return frame.lazy()


def _in_window(incidents: pl.LazyFrame, weeks: list[str]) -> pl.LazyFrame:
    """Incidents registered in one of ``weeks`` (ISO text), with ``registered_week``.

    A ``registered_at`` date-time (naive meaning Copenhagen time) is turned into its local ISO
    week first; the lookback window and "registered in W" are whole local weeks, so the week
    is all the rule reads of the time.
    """
    schema = incidents.collect_schema()
    week = (pl.col("registered_week").cast(pl.String) if "registered_week" in schema
            else iso_week(to_local(pl.col("registered_at"), schema["registered_at"])))
    return (
        incidents.select(
            "event_ref", week.alias("registered_week"), "district",
            pl.col("incident_code").cast(pl.String), pl.col("offence_code").cast(pl.String),
        )
        .filter(pl.col("registered_week").is_in(weeks))
    )


def catalogue_events(
    window: pl.LazyFrame, codes: pl.DataFrame, keep: Sequence[str] = _EVENT_ATTRS
) -> pl.LazyFrame:
    """Events long by every catalogue code they carry: the ``keep`` columns, ``kind``, ``code``.

    ``codes`` is :meth:`Catalogue.codes_frame`; an event with a catalogue incident code and a
    catalogue offence code gives two rows. The station selects with it too.
    """
    parts = []
    for kind, column in (("incident", "incident_code"), ("offence", "offence_code")):
        wanted = codes.filter(pl.col("kind") == kind)["code"].unique().to_list()
        parts.append(
            window.filter(pl.col(column).is_in(wanted)).select(
                *keep, pl.lit(kind).alias("kind"), pl.col(column).alias("code")
            )
        )
    return pl.concat(parts, how="vertical")


def _persons(persons: pl.LazyFrame) -> pl.LazyFrame:
    """Resolved persons with a pseudonym; resolution fields defaulted when absent."""
    schema = persons.collect_schema()
    resolved_by = pl.col("resolved_by") if "resolved_by" in schema else pl.lit("cpr")
    probability = (
        pl.col("match_probability") if "match_probability" in schema else pl.lit(None)
    )
    return persons.filter(pl.col("person").is_not_null()).select(
        "event_ref",
        "person",
        "role",
        resolved_by.cast(pl.String).alias("resolved_by"),
        probability.cast(pl.Float64).alias("match_probability"),
    )


def _dedupe_signals(core: pl.LazyFrame) -> pl.LazyFrame:
    """One row per signal key; a person listed twice keeps the CPR (or likeliest) resolution.

    Rows equal in the key and in the resolution are identical, so the choice is deterministic.
    """
    return core.sort(
        ["resolved_by", "match_probability"], descending=[False, True], nulls_last=True
    ).unique(subset=_SIGNAL_KEY, keep="first", maintain_order=True)


def _enrich(
    core: pl.DataFrame,
    event_attrs: pl.DataFrame,
    codes: pl.DataFrame,
    history: History,
    week: str,
) -> pl.DataFrame:
    """Add event and code attributes, the ``new`` flag and ``in_week``."""
    code_attrs = codes.unique(subset=["kind", "code"]).drop("role")
    pairs = (
        history.drafted_pairs.lazy()
        .select("child", "event_ref")
        .unique()
        .with_columns(pl.lit(False).alias("new"))
    )
    return (
        core.lazy()
        .join(event_attrs.lazy(), on="event_ref", how="left")
        .join(code_attrs.lazy(), on=["kind", "code"], how="left")
        .join(pairs, on=["child", "event_ref"], how="left")
        .with_columns(
            pl.col("new").fill_null(True),
            (pl.col("registered_week") == week).alias("in_week"),
        )
        .collect()
    )


def _per_child(signals: pl.DataFrame, threshold: int) -> pl.DataFrame:
    """Score, immediate flag, new-in-week flag and the decision for every child with signals."""
    per_event = signals.group_by("child", "event_ref").agg(
        pl.col("weight").max(),
        pl.col("immediate").any(),
        (pl.col("new") & pl.col("in_week")).any().alias("new_in_week"),
    )
    return (
        per_event.group_by("child")
        .agg(
            pl.col("weight").sum().cast(pl.Int64).alias("score"),
            pl.col("immediate").any().alias("has_immediate"),
            pl.col("new_in_week").any().alias("has_new_in_week"),
        )
        .with_columns(
            (pl.col("has_immediate") | (pl.col("score") >= threshold)).alias("eligible")
        )
        .with_columns((pl.col("eligible") & pl.col("has_new_in_week")).alias("drafted"))
        .sort("child")
    )


def _ids(drafted: pl.DataFrame, week: IsoWeek, draft_ids: DraftIds) -> pl.Series:
    """The caller's draft ids of the drafted children, one non-null id per child in order."""
    ids = draft_ids(drafted["child"], str(week))
    if len(ids) != drafted.height or ids.null_count():
        raise ValueError("draft_ids must return one non-null id per child, in order")
    return ids


def _previous(history: History, base: pl.DataFrame) -> pl.DataFrame:
    """Per drafted child of ``base``, its earlier draft ids, oldest week first (ties by id)."""
    return (
        history.previous_drafts.lazy()
        .select("child", "week", "draft_id")
        .join(base.lazy().select("child"), on="child", how="semi")
        .unique()
        .sort("child", "week", "draft_id")
        .group_by("child", maintain_order=True)
        .agg(pl.col("draft_id").alias("previous_drafts"))
        .collect()
    )


def _drafts(
    drafted: pl.DataFrame,
    signals: pl.DataFrame,
    children: pl.DataFrame,
    history: History,
    catalogue: Catalogue,
    week: IsoWeek,
    draft_ids: DraftIds,
) -> pl.DataFrame:
    """One draft row per drafted child, in DRAFT_SCHEMA, sorted by (municipality, draft_id)."""
    if drafted.height == 0:
        return pl.DataFrame(schema=DRAFT_SCHEMA)
    ids = _ids(drafted, week, draft_ids)
    base = drafted.select(
        pl.Series("draft_id", ids, dtype=pl.String),
        "child",
        "score",
        pl.when(pl.col("has_immediate"))
        .then(pl.lit("immediate"))
        .otherwise(pl.lit("threshold"))
        .alias("rule"),
    )
    mine = signals.join(base.select("child"), on="child", how="semi")
    counts = mine.group_by("child").agg(
        pl.len().cast(pl.Int64).alias("n_signals"),
        pl.col("new").sum().cast(pl.Int64).alias("n_new_signals"),
    )
    persons = (
        mine.select("child", "person", "link")
        .unique()
        .sort("child", "person", "link")
        .group_by("child", maintain_order=True)
        .agg(pl.struct(pl.col("person").alias("pseudonym"), "link").alias("persons"))
    )
    previous = _previous(history, base)
    where = children.join(base.select("child"), on="child", how="semi")
    out = (
        base.join(where, on="child", how="left")
        .join(counts, on="child", how="left")
        .join(persons, on="child", how="left")
        .join(previous, on="child", how="left")
        .with_columns(
            pl.lit(str(week)).alias("week"),
            pl.lit(catalogue.threshold, dtype=pl.Int64).alias("threshold"),
            pl.col("previous_drafts").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )
    )
    return out.select(
        [pl.col(name).cast(dtype) for name, dtype in DRAFT_SCHEMA.items()]
    ).sort("municipality", "draft_id")


def _signals_out(signals: pl.DataFrame, drafts: pl.DataFrame) -> pl.DataFrame:
    """The drafted children's signals in SIGNAL_SCHEMA with their draft id, sorted."""
    return (
        signals.join(drafts.select("child", "draft_id"), on="child", how="inner")
        .select([pl.col(name).cast(dtype) for name, dtype in SIGNAL_SCHEMA.items()])
        .sort("draft_id", "registered_week", "event_ref", "code", "person", "link", "role", "kind")
    )


def hub_search(
    *,
    signals: FrameLike,
    events: FrameLike,
    children: FrameLike,
    week: IsoWeek,
    history: History,
    draft_ids: DraftIds,
) -> SearchResult:
    """The part of the weekly rule that needs the ledger, over what the station already decided.

    The station ran :func:`weekly_search` with no history and shipped only the children it
    drafts, each with every (child, event, person) row that gives it a signal in the lookback
    window (its codes, roles and links sealed). Whether a child is eligible (an immediate
    category, or score ≥ threshold) does not depend on earlier drafts; whether it is drafted
    does: a signal is new when its (child, event_ref) pair is in no earlier draft, and a draft
    needs a new signal registered in W. So here, with Polars joins only:

    * ``new`` = the pair is not in ``history.drafted_pairs``;
    * a child is drafted when one of its rows is new and its event ``in_week``;
    * the draft holds its municipality, its persons (pseudonyms; their links are sealed), its
      earlier drafts and its draft id (``draft_ids``, as in :func:`weekly_search`).

    ``rule``, ``score``, ``threshold``, ``n_signals`` and ``n_new_signals`` are null: the station
    sealed what the rule computed for the municipality, which opens it (``socialsearch open``)
    together with every signal. ``signals`` (:data:`HUB_SIGNAL_SCHEMA`) are the drafted
    children's rows, sorted by (draft_id, event_ref, person).

    Parameters
    ----------
    signals
        ``child, event_ref, person`` (the hub extract's ``signals``).
    events
        ``event_ref, in_week`` (the hub extract's ``events``).
    children
        ``person, municipality`` (the hub extract's ``children``).
    """
    pairs = history.drafted_pairs.lazy().select("child", "event_ref").unique().with_columns(
        pl.lit(False).alias("new"))
    rows = (
        _lazy(signals).select("child", "event_ref", "person")
        .join(_lazy(events).select("event_ref", "in_week"), on="event_ref", how="left")
        .join(pairs, on=["child", "event_ref"], how="left")
        .with_columns(pl.col("new").fill_null(True), pl.col("in_week").fill_null(False))
        .collect()
    )
    per_child = rows.group_by("child").agg((pl.col("new") & pl.col("in_week")).any().alias("drafted"))
    drafted = per_child.filter("drafted").select("child").sort("child")
    where = _lazy(children).select(pl.col("person").alias("child"), "municipality").collect()
    drafts = _hub_drafts(drafted, rows, where, history, week, draft_ids)
    out = (
        rows.join(drafts.select("child", "draft_id"), on="child", how="inner")
        .select([pl.col(name).cast(dtype) for name, dtype in HUB_SIGNAL_SCHEMA.items()])
        .sort("draft_id", "event_ref", "person")
    )
    stats = {
        "events_in_week": int(_lazy(events).select(pl.col("in_week").sum()).collect().item() or 0),
        "signal_rows": rows.height,
        "children_with_signals": per_child.height,
        "children_with_new_signals_in_week": drafted.height,
        "children_eligible": per_child.height,
        "drafts": drafts.height,
        "drafts_follow_up": int((drafts["previous_drafts"].list.len() > 0).sum()),
        "municipalities_with_drafts": drafts["municipality"].n_unique(),
        "signals_in_drafts": out.height,
    }
    return SearchResult(signals=out, drafts=drafts, stats=stats)


def _hub_drafts(drafted: pl.DataFrame, rows: pl.DataFrame, children: pl.DataFrame, history: History,
                week: IsoWeek, draft_ids: DraftIds) -> pl.DataFrame:
    """One draft row per drafted child (:data:`DRAFT_SCHEMA`; what the station sealed is null)."""
    if drafted.height == 0:
        return pl.DataFrame(schema=DRAFT_SCHEMA)
    ids = _ids(drafted, week, draft_ids)
    base = drafted.with_columns(pl.Series("draft_id", ids, dtype=pl.String))
    persons = (
        rows.join(base.select("child"), on="child", how="semi")
        .select("child", "person").unique().sort("child", "person")
        .group_by("child", maintain_order=True)
        .agg(pl.struct(pl.col("person").alias("pseudonym"), pl.lit(None, pl.String).alias("link")).alias("persons"))
    )
    previous = _previous(history, base)
    out = (
        base.join(children, on="child", how="left")
        .join(persons, on="child", how="left")
        .join(previous, on="child", how="left")
        .with_columns(
            pl.lit(str(week)).alias("week"),
            pl.col("previous_drafts").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )
    )
    return out.select(
        [(pl.col(name) if name in out.columns else pl.lit(None)).cast(dtype).alias(name)
         for name, dtype in DRAFT_SCHEMA.items()]
    ).sort("municipality", "draft_id")
