"""Shipping only what can make a draft changes no draft, whatever the hub's ledger holds.

The station cuts the hub frames to the children the weekly search drafts with no history and
the rows of their signals (``station.pipeline.draftable``). On random small worlds with a
random ledger history, the hub's search on the cut frames gives exactly the drafts and signals
of the search on everything (children's exact ages included, as version 2 shipped them).
"""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.catalogue import load_catalogue
from socialsearch.hub.search import History, weekly_search
from socialsearch.station.pipeline import draftable
from socialsearch.weeks import IsoWeek

CATALOGUE = load_catalogue(None)
CODES = CATALOGUE.codes_frame().select("kind", "code").unique().sort("kind", "code").rows()
WEEK = IsoWeek.parse("2026-W47")
WEEKS = [str(WEEK.shift(-i)) for i in range(CATALOGUE.lookback_weeks + 3)]  # some outside the lookback
PEOPLE = [f"P{i}" for i in range(10)]
ROLES = ["suspect", "victim", "witness", "involved"]


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, pl.DataFrame]:
    ages = {p: draw(st.one_of(st.integers(0, 20), st.integers(0, 60), st.none())) for p in PEOPLE}  # None: not
    # in the population
    population = pl.DataFrame(
        [(p, draw(st.sampled_from(["101", "461", "751"])), a) for p, a in ages.items() if a is not None],
        schema={"person": pl.String, "municipality": pl.String, "age": pl.Int64}, orient="row")
    relations = pl.DataFrame(
        draw(st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(PEOPLE),
                                st.sampled_from(["mother", "father", "custodian", "household"])),
                      max_size=16, unique=True)),
        schema={"child": pl.String, "adult": pl.String, "relation": pl.String}, orient="row")
    events, persons = [], []
    for i in range(draw(st.integers(0, 14))):
        kind, code = draw(st.sampled_from(CODES))
        week = draw(st.one_of(st.just(WEEKS[0]), st.sampled_from(WEEKS)))  # W itself half of the time
        events.append((f"e{i}", draw(st.sampled_from(["KBH", "FYN"])), week,
                       code if kind == "incident" else None, code if kind == "offence" else None))
        for person in draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3, unique=True)):
            persons.append((f"e{i}", person, draw(st.sampled_from(ROLES[:2]) | st.sampled_from(ROLES))))
    incidents = pl.DataFrame(events, schema={"event_ref": pl.String, "district": pl.String,
                                             "registered_week": pl.String, "incident_code": pl.String,
                                             "offence_code": pl.String}, orient="row")
    person_rows = pl.DataFrame(persons, schema={"event_ref": pl.String, "person": pl.String, "role": pl.String},
                               orient="row").with_columns(resolved_by=pl.lit("cpr"),
                                                          match_probability=pl.lit(None, pl.Float64))
    # the ledger: some (child, event) pairs of the signals a first search finds, and a few others
    first = weekly_search(incidents=incidents, persons=person_rows, population=population, relations=relations,
                          catalogue=CATALOGUE, week=WEEK, history=History.empty(),
                          draft_ids=lambda children, week: children)
    found = sorted(set(first.signals.select("child", "event_ref").rows()))
    pairs = draw(st.lists(st.sampled_from(found), unique=True)) if found else []
    pairs += draw(st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from([f"e{i}" for i in range(14)])),
                           max_size=4))
    drafted = pl.DataFrame(pairs, schema={"child": pl.String, "event_ref": pl.String}, orient="row").unique()
    previous = drafted.select("child").unique().with_columns(
        draft_id=pl.lit("D2026-W40-") + pl.col("child"), week=pl.lit("2026-W40"))
    return {"incidents": incidents, "persons": person_rows, "population": population, "relations": relations,
            "drafted": drafted, "previous": previous}


def _search(world: dict[str, pl.DataFrame], incidents: pl.DataFrame, persons: pl.DataFrame,
            population: pl.DataFrame, relations: pl.DataFrame) -> tuple[list[tuple], list[tuple]]:
    result = weekly_search(incidents=incidents, persons=persons, population=population, relations=relations,
                           catalogue=CATALOGUE, week=WEEK,
                           history=History(drafted_pairs=world["drafted"], previous_drafts=world["previous"]),
                           draft_ids=lambda children, week: "D" + week + "-" + children)
    drafts = result.drafts.select("draft_id", "child", "municipality", "rule", "score", "n_signals",
                                  "n_new_signals", "persons", "previous_drafts").sort("draft_id").rows()
    signals = result.signals.select("draft_id", "child", "event_ref", "person", "role", "link", "kind", "code",
                                    "weight", "new").sort(pl.all()).rows()
    return drafts, signals


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_the_cut_frames_give_the_drafts_of_everything(world: dict[str, pl.DataFrame]) -> None:
    everything = _search(world, world["incidents"], world["persons"], world["population"], world["relations"])
    children = world["population"].filter(pl.col("age").is_between(0, CATALOGUE.child_max_age))
    (incidents, persons, kids, relations), _, _ = draftable(
        world["incidents"], world["persons"], children.select("person", "municipality"), world["relations"],
        CATALOGUE, WEEK)
    assert _search(world, incidents, persons, kids, relations) == everything
