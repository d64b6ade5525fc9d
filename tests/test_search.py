"""Tests for socialsearch.hub.search: tiny hand-made frames, answers worked out by hand.

The week under test is 2026-W47: Monday 16 to Sunday 22 November 2026 (CET, +01:00). With
``lookback_weeks = 26`` its window starts on Monday 25 May 2026 00:00 CEST (+02:00), i.e.
2026-05-24T22:00Z. The catalogue (threshold 3, child_max_age 17):

====== ======== ========= ====== ================================ =========
kind   code     category  weight roles                            immediate
====== ======== ========= ====== ================================ =========
offence  1100   violence  2      suspect, victim                  no
offence  1200   violence  1      suspect                          no
offence  4100   traffic   1      suspect                          no
incident H10    domestic  1      suspect, victim, involved        no
incident H20    psych     1      involved                         no
incident H99    severe    1      victim, involved                 yes
====== ======== ========= ====== ================================ =========
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.catalogue import Catalogue, Category, Code
from socialsearch.contract import age_on, iso_week
from socialsearch.hub.search import (
    DRAFT_SCHEMA,
    SIGNAL_SCHEMA,
    History,
    SearchResult,
    hub_search,
    weekly_search,
)
from socialsearch.weeks import TZ, IsoWeek

CAT = Catalogue(
    schema_version=1,
    lookback_weeks=26,
    threshold=3,
    child_max_age=17,
    categories=(
        Category("violence", "Vold"),
        Category("traffic", "Færdsel"),
        Category("domestic", "Husspektakler"),
        Category("psych", "Psykiatri"),
        Category("severe", "Alvorlig bekymring", immediate=True),
    ),
    codes=(
        Code("offence", "1100", "Vold § 244", "violence", 2, ("suspect", "victim")),
        Code("offence", "1200", "Trusler § 266", "violence", 1, ("suspect",)),
        Code("offence", "4100", "Spirituskørsel", "traffic", 1, ("suspect",)),
        Code("incident", "H10", "Husspektakler", "domestic", 1, ("suspect", "victim", "involved")),
        Code("incident", "H20", "Psykiatrisk udrykning", "psych", 1, ("involved",)),
        Code("incident", "H99", "Barn i akut fare", "severe", 1, ("victim", "involved")),
    ),
)

W47 = IsoWeek.parse("2026-W47")
IN_WEEK = datetime(2026, 11, 18, 10, 0, tzinfo=TZ)  # Wednesday of W47
EARLIER = datetime(2026, 9, 2, 14, 30, tzinfo=TZ)  # inside the lookback, before W47


def local(*args: int) -> datetime:
    """A Copenhagen wall-clock date-time."""
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


def ids(children: pl.Series, week: str) -> pl.Series:
    """Deterministic stand-in for the keyed draft ids: ``<week>/<child>``."""
    return children.to_frame().select(pl.concat_str(pl.lit(f"{week}/"), pl.first())).to_series()


@dataclass
class World:
    """A tiny hub: add events, people, residents and relations, then :meth:`search`.

    Residents by default: child C1 (born 2015-03-01, lives in 101), mother M1 and father F1
    (adults in 101), with relations C1–M1 mother and C1–F1 father.
    """

    events: list[dict[str, object]] = field(default_factory=list)
    persons: list[dict[str, object]] = field(default_factory=list)
    population: dict[str, tuple[str, date]] = field(
        default_factory=lambda: {
            "C1": ("101", date(2015, 3, 1)),
            "M1": ("101", date(1985, 1, 1)),
            "F1": ("101", date(1983, 6, 6)),
        }
    )
    relations: list[tuple[str, str, str]] = field(
        default_factory=lambda: [("C1", "M1", "mother"), ("C1", "F1", "father")]
    )

    def event(
        self,
        ref: str,
        registered_at: datetime,
        *,
        incident: str = "X00",
        offence: str | None = None,
        district: str = "1",
        municipality: str = "101",
        people: tuple[tuple[str, str], ...] = (),
    ) -> World:
        """Add an event with (person, role) pairs on it."""
        self.events.append(
            {
                "district": district,
                "event_ref": ref,
                "occurred_at": registered_at - timedelta(hours=2),
                "registered_at": registered_at,
                "municipality": municipality,
                "incident_code": incident,
                "offence_code": offence,
            }
        )
        for person, role in people:
            self.person(ref, person, role)
        return self

    def person(
        self,
        ref: str,
        person: str | None,
        role: str,
        resolved_by: str = "cpr",
        probability: float | None = None,
    ) -> World:
        self.persons.append(
            {
                "event_ref": ref,
                "person": person,
                "role": role,
                "resolved_by": resolved_by,
                "match_probability": probability,
            }
        )
        return self

    def frames(self) -> dict[str, pl.DataFrame]:
        dt = pl.Datetime("us", "Europe/Copenhagen")
        incidents = pl.DataFrame(
            self.events,
            schema={
                "district": pl.String,
                "event_ref": pl.String,
                "occurred_at": dt,
                "registered_at": dt,
                "municipality": pl.String,
                "incident_code": pl.String,
                "offence_code": pl.String,
            },
        )
        persons = pl.DataFrame(
            self.persons,
            schema={
                "event_ref": pl.String,
                "person": pl.String,
                "role": pl.String,
                "resolved_by": pl.String,
                "match_probability": pl.Float64,
            },
        )
        population = pl.DataFrame(
            [(p, m, b) for p, (m, b) in self.population.items()],
            schema={"person": pl.String, "municipality": pl.String, "birth_date": pl.Date},
            orient="row",
        )
        relations = pl.DataFrame(
            self.relations,
            schema={"child": pl.String, "adult": pl.String, "relation": pl.String},
            orient="row",
        )
        return {
            "incidents": incidents,
            "persons": persons,
            "population": population,
            "relations": relations,
        }

    def search(
        self,
        week: IsoWeek = W47,
        history: History | None = None,
        catalogue: Catalogue = CAT,
    ) -> SearchResult:
        return weekly_search(
            **self.frames(),
            catalogue=catalogue,
            week=week,
            history=history or History.empty(),
            draft_ids=ids,
        )


def one_draft(result: SearchResult) -> dict[str, object]:
    assert result.drafts.height == 1, result.drafts
    return result.drafts.row(0, named=True)


def refs(result: SearchResult) -> list[str]:
    return sorted(set(result.signals["event_ref"].to_list()))


# --- the rule ----------------------------------------------------------------------------


def test_three_districts_add_up_to_the_threshold() -> None:
    world = (
        World()
        .event("E1", local(2026, 6, 10, 22, 15), incident="H10", district="1",
               people=(("M1", "involved"),))
        .event("E2", EARLIER, incident="T01", offence="4100", district="3", municipality="461",
               people=(("F1", "suspect"),))
        .event("E3", IN_WEEK, incident="H20", district="7", municipality="751",
               people=(("M1", "involved"),))
    )
    result = world.search()
    draft = one_draft(result)
    assert draft["draft_id"] == "2026-W47/C1"
    assert draft["week"] == "2026-W47"
    assert draft["child"] == "C1"
    assert draft["municipality"] == "101"
    assert "age" not in draft  # the hub holds no age: the station decided who is a child
    assert (draft["rule"], draft["score"], draft["threshold"]) == ("threshold", 3, 3)
    assert (draft["n_signals"], draft["n_new_signals"]) == (3, 3)
    assert draft["persons"] == [
        {"pseudonym": "F1", "link": "father"},
        {"pseudonym": "M1", "link": "mother"},
    ]
    assert draft["previous_drafts"] == []
    sig = result.signals
    assert sig["event_ref"].to_list() == ["E1", "E2", "E3"]  # by registered_at
    assert sig["district"].to_list() == ["1", "3", "7"]
    assert sig["registered_week"].to_list() == ["2026-W24", str(IsoWeek.of(EARLIER.date())), "2026-W47"]
    assert "municipality" not in sig.columns and "occurred_at" not in sig.columns  # sealed, not searched
    assert sig["kind"].to_list() == ["incident", "offence", "incident"]
    assert sig["code"].to_list() == ["H10", "4100", "H20"]
    assert sig["category"].to_list() == ["domestic", "traffic", "psych"]
    assert sig["label"].to_list() == ["Husspektakler", "Spirituskørsel", "Psykiatrisk udrykning"]
    assert sig["category_label"].to_list() == ["Husspektakler", "Færdsel", "Psykiatri"]
    assert sig["link"].to_list() == ["mother", "father", "mother"]
    assert sig["new"].to_list() == [True, True, True]
    assert result.stats["drafts"] == 1
    assert result.stats["drafts_threshold"] == 1
    assert result.stats["catalogue_events"] == 3
    assert result.stats["catalogue_events_in_week"] == 1


def test_threshold_just_below_gives_no_draft() -> None:
    world = (
        World()
        .event("E1", EARLIER, incident="H10", people=(("M1", "involved"),))
        .event("E3", IN_WEEK, incident="H20", people=(("M1", "involved"),))
    )
    result = world.search()
    assert result.drafts.height == 0
    assert result.signals.height == 0
    assert result.stats["children_with_signals"] == 1
    assert result.stats["children_with_new_signals_in_week"] == 1
    assert result.stats["children_eligible"] == 0
    assert result.stats["signals_in_lookback"] == 2


def test_immediate_category_alone_drafts() -> None:
    result = World().event("E1", IN_WEEK, incident="H99", people=(("M1", "involved"),)).search()
    draft = one_draft(result)
    assert (draft["rule"], draft["score"]) == ("immediate", 1)
    assert result.stats["drafts_immediate"] == 1


def test_immediate_takes_precedence_over_threshold() -> None:
    world = (
        World()
        .event("E1", EARLIER, offence="1100", people=(("F1", "suspect"),))
        .event("E2", IN_WEEK, incident="H99", people=(("M1", "involved"),))
    )
    draft = one_draft(world.search())
    assert (draft["rule"], draft["score"]) == ("immediate", 3)


def test_old_immediate_signal_fires_with_any_new_signal_in_week() -> None:
    # DESIGN §5: "some signal's category is immediate" — any signal in the lookback.
    world = (
        World()
        .event("E1", EARLIER, incident="H99", people=(("M1", "involved"),))
        .event("E2", IN_WEEK, incident="H20", people=(("M1", "involved"),))
    )
    history = History(
        drafted_pairs=pl.DataFrame({"child": ["C1"], "event_ref": ["E1"]}),
        previous_drafts=pl.DataFrame({"child": ["C1"], "draft_id": ["old"], "week": ["2026-W36"]}),
    )
    draft = one_draft(world.search(history=history))
    assert (draft["rule"], draft["score"], draft["n_new_signals"]) == ("immediate", 2, 1)
    assert draft["previous_drafts"] == ["old"]


def test_no_new_signal_in_week_gives_no_draft() -> None:
    world = (
        World()
        .event("E1", EARLIER, offence="1100", people=(("M1", "victim"),))
        .event("E2", local(2026, 11, 9, 12, 0), incident="H99", people=(("M1", "involved"),))
    )
    result = world.search()
    assert result.drafts.height == 0
    assert result.stats["children_eligible"] == 1
    assert result.stats["new_signals"] == 2
    assert result.stats["new_signals_in_week"] == 0


def test_signal_in_week_already_drafted_is_not_new() -> None:
    # A re-run of W47 is given history of weeks *before* W47, but a pair drafted earlier
    # (e.g. by a late re-registration) does not make a new draft.
    world = World().event("E1", IN_WEEK, incident="H99", people=(("M1", "involved"),))
    history = History(
        drafted_pairs=pl.DataFrame({"child": ["C1"], "event_ref": ["E1"]}),
        previous_drafts=pl.DataFrame(schema={"child": pl.String, "draft_id": pl.String,
                                             "week": pl.String}),
    )
    assert world.search(history=history).drafts.height == 0


def test_earlier_drafted_pairs_are_not_new_and_previous_drafts_listed() -> None:
    world = (
        World()
        .event("E1", local(2026, 7, 1, 9, 0), offence="1100", people=(("F1", "suspect"),))
        .event("E2", EARLIER, incident="H10", people=(("M1", "victim"),))
        .event("E3", IN_WEEK, incident="H20", people=(("M1", "involved"),))
    )
    history = History(
        drafted_pairs=pl.DataFrame(
            {"child": ["C1", "C1", "C9", "C1"], "event_ref": ["E1", "E2", "E3", "E1"]}
        ),
        previous_drafts=pl.DataFrame(
            {
                "child": ["C1", "C9", "C1"],
                "draft_id": ["D-later", "D-other", "D-first"],
                "week": ["2026-W36", "2026-W30", "2026-W27"],
            }
        ),
    )
    result = world.search(history=history)
    draft = one_draft(result)
    assert draft["previous_drafts"] == ["D-first", "D-later"]  # oldest first
    assert (draft["score"], draft["n_signals"], draft["n_new_signals"]) == (4, 3, 1)
    assert dict(zip(result.signals["event_ref"], result.signals["new"], strict=True)) == {
        "E1": False,
        "E2": False,
        "E3": True,
    }
    assert result.stats["drafts_follow_up"] == 1


# --- the window ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registered", "counted"),
    [
        (local(2026, 5, 25, 0, 0), True),  # first instant of the first lookback week (CEST)
        (local(2026, 5, 24, 23, 59, 59, 999999), False),  # one microsecond before
        (local(2026, 5, 25, 0, 0) - timedelta(hours=1), False),  # 00:00 CET would be wrong
    ],
)
def test_lookback_edge(registered: datetime, counted: bool) -> None:
    world = (
        World()
        .event("EDGE", registered, offence="1100", people=(("M1", "victim"),))
        .event("NOW", IN_WEEK, incident="H99", people=(("M1", "involved"),))
    )
    result = world.search()
    assert refs(result) == (["EDGE", "NOW"] if counted else ["NOW"])
    assert one_draft(result)["score"] == (3 if counted else 1)


def test_lookback_edge_alone_decides_threshold() -> None:
    world = (
        World()
        .event("EDGE", local(2026, 5, 25, 0, 0), offence="1100", people=(("M1", "victim"),))
        .event("NOW", IN_WEEK, incident="H20", people=(("M1", "involved"),))
    )
    assert one_draft(world.search())["rule"] == "threshold"
    world.events[0]["registered_at"] = local(2026, 5, 24, 23, 59, 59, 999999)
    assert world.search().drafts.height == 0


@pytest.mark.parametrize(
    ("registered", "drafted"),
    [
        (local(2026, 11, 16, 0, 0), True),  # Monday 00:00 of W47
        (local(2026, 11, 22, 23, 59), True),  # Sunday 23:59
        (local(2026, 11, 22, 23, 59, 59, 999999), True),
        (local(2026, 11, 23, 0, 0), False),  # Monday 00:00 of W48: after the window
        (local(2026, 11, 15, 23, 59, 59, 999999), False),  # Sunday of W46: not new in W
    ],
)
def test_week_boundaries(registered: datetime, drafted: bool) -> None:
    result = World().event("E", registered, incident="H99", people=(("M1", "involved"),)).search()
    assert result.drafts.height == int(drafted)


@pytest.mark.parametrize(
    ("registered", "in_week"),
    [
        # W43 2026 is 19–25 October; summer time ends Sunday 25 October 03:00 → 02:00.
        (local(2026, 10, 19, 0, 0), True),  # Monday 00:00 CEST
        (local(2026, 10, 18, 23, 59, 59, 999999), False),
        (local(2026, 10, 25, 23, 59, 59), True),  # Sunday 23:59:59 CET
        (local(2026, 10, 26, 0, 0), False),  # the week is 169 hours long
        (datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=TZ), True),  # the repeated hour, CET
    ],
)
def test_week_with_the_dst_change(registered: datetime, in_week: bool) -> None:
    result = (
        World()
        .event("E", registered, incident="H99", people=(("M1", "involved"),))
        .search(week=IsoWeek.parse("2026-W43"))
    )
    assert result.drafts.height == int(in_week)


def test_utc_registration_is_compared_as_an_instant() -> None:
    world = World().event("E", local(2026, 11, 23, 0, 0), incident="H99",
                          people=(("M1", "involved"),))
    frames = world.frames()
    # 2026-11-22T23:30Z is Monday 00:30 local: outside W47 even though it is Sunday in UTC.
    frames["incidents"] = frames["incidents"].with_columns(
        pl.lit(datetime(2026, 11, 22, 23, 30)).dt.replace_time_zone("UTC").alias("registered_at")
    )
    result = weekly_search(**frames, catalogue=CAT, week=W47, history=History.empty(),
                           draft_ids=ids)
    assert result.drafts.height == 0


# --- who is a child ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "age"),
    [
        (date(2008, 11, 22), None),  # 18 on Sunday 22 Nov: not a child
        (date(2008, 11, 16), None),  # 18 on Monday of the week
        (date(2008, 11, 23), 17),  # 18 on Monday of the next week: still a child
        (date(2026, 11, 22), 0),  # born on the Sunday
        (date(2026, 11, 23), None),  # not born by the Sunday
    ],
)
def test_child_age_on_sunday(birth: date, age: int | None) -> None:
    world = World()
    world.population["C1"] = ("101", birth)
    result = world.event("E", IN_WEEK, incident="H99", people=(("M1", "involved"),)).search()
    if age is None:
        assert result.drafts.height == 0
        assert result.stats["related_not_of_child_age"] == 1
    else:
        assert one_draft(result)["child"] == "C1"


def test_age_on_leap_day_birthday() -> None:
    frame = pl.DataFrame({"b": [date(2008, 2, 29)] * 3})
    days = [date(2026, 2, 28), date(2026, 3, 1), date(2028, 2, 29)]
    assert [frame.select(age_on(pl.col("b"), d)).item(0, 0) for d in days] == [17, 18, 20]


def test_child_not_in_population_is_ignored_and_counted() -> None:
    world = World()
    world.relations.append(("C7", "M1", "mother"))
    result = world.event("E", IN_WEEK, incident="H99", people=(("M1", "involved"),)).search()
    assert result.drafts["child"].to_list() == ["C1"]
    assert result.stats["children_not_in_population"] == 1


def test_person_not_in_population_has_no_self_signal() -> None:
    world = World(relations=[]).event("E", IN_WEEK, incident="H99", people=(("Z9", "victim"),))
    result = world.search()
    assert result.drafts.height == 0
    assert result.stats["persons_not_in_population"] == 1


# --- codes and roles ----------------------------------------------------------------------


def test_two_codes_on_one_event_count_once_with_the_max_weight() -> None:
    # H10 (1) and 1100 (2) on the same event: weight 2, not 3.
    world = World().event("E1", IN_WEEK, incident="H10", offence="1100",
                          people=(("M1", "suspect"),))
    result = world.search()
    assert result.drafts.height == 0
    assert result.stats["signals_in_lookback"] == 2

    world.event("E2", EARLIER, incident="H20", people=(("M1", "involved"),))
    result = world.search()
    draft = one_draft(result)
    assert (draft["score"], draft["n_signals"]) == (3, 3)
    e1 = result.signals.filter(pl.col("event_ref") == "E1")
    assert e1.select("kind", "code", "weight").rows() == [("offence", "1100", 2), ("incident", "H10", 1)]


def test_role_the_code_does_not_list_gives_no_signal() -> None:
    world = (
        World()
        .event("E1", IN_WEEK, offence="1100", people=(("M1", "witness"),))
        .event("E2", IN_WEEK, offence="1200", people=(("F1", "victim"),))
    )
    result = world.search()
    assert result.stats["role_matches"] == 0
    assert result.stats["signals_in_lookback"] == 0
    # on an event carrying H10 and 1200, a victim matches only H10
    world.event("E3", IN_WEEK, incident="H10", offence="1200", people=(("M1", "victim"),))
    world.event("E4", IN_WEEK, incident="H99", people=(("M1", "involved"),))
    result = world.search()
    assert result.signals.filter(pl.col("event_ref") == "E3")["code"].to_list() == ["H10"]


def test_event_outside_catalogue_is_ignored() -> None:
    result = World().event("E", IN_WEEK, incident="Z77", offence="9999",
                           people=(("M1", "suspect"),)).search()
    assert result.stats["events_in_window"] == 1
    assert result.stats["catalogue_events"] == 0
    assert result.drafts.height == 0


# --- links ---------------------------------------------------------------------------------


def test_child_in_another_municipality_than_the_parent() -> None:
    world = World()
    world.population["C1"] = ("751", date(2015, 3, 1))
    result = world.event("E", IN_WEEK, incident="H99", municipality="461",
                         people=(("M1", "involved"),)).search()
    assert one_draft(result)["municipality"] == "751"
    assert "municipality" not in result.signals.columns  # where it happened is sealed, not searched


def test_household_and_custodian_links() -> None:
    world = World(relations=[("C1", "H1", "household"), ("C1", "K1", "custodian")])
    world.population |= {"H1": ("101", date(1990, 1, 1)), "K1": ("101", date(1970, 1, 1))}
    world.event("E1", EARLIER, offence="1100", people=(("H1", "suspect"),))
    world.event("E2", IN_WEEK, incident="H10", people=(("K1", "involved"),))
    result = world.search()
    draft = one_draft(result)
    assert draft["persons"] == [
        {"pseudonym": "H1", "link": "household"},
        {"pseudonym": "K1", "link": "custodian"},
    ]
    assert result.signals["link"].to_list() == ["household", "custodian"]


def test_the_child_as_the_person() -> None:
    world = World(relations=[]).event("E", IN_WEEK, offence="1100", incident="H99",
                                      people=(("C1", "victim"),))
    result = world.search()
    draft = one_draft(result)
    assert draft["persons"] == [{"pseudonym": "C1", "link": "self"}]
    assert (draft["rule"], draft["score"]) == ("immediate", 2)
    assert set(result.signals["link"]) == {"self"}
    assert set(result.signals["person"]) == {"C1"}


def test_adult_who_is_also_a_child_gets_self_and_parent_signals() -> None:
    # A 16-year-old mother: her event is a signal for her and for her baby.
    world = World(relations=[("B1", "C1", "mother")])
    world.population["B1"] = ("147", date(2026, 1, 5))
    result = world.event("E", IN_WEEK, incident="H99", people=(("C1", "involved"),)).search()
    assert result.drafts.select("child", "municipality").rows() == [("C1", "101"), ("B1", "147")]


def test_same_adult_as_mother_and_custodian() -> None:
    world = World(relations=[("C1", "M1", "mother"), ("C1", "M1", "custodian")])
    world.event("E1", EARLIER, offence="1100", people=(("M1", "suspect"),))
    world.event("E2", IN_WEEK, incident="H20", people=(("M1", "involved"),))
    result = world.search()
    draft = one_draft(result)
    assert (draft["score"], draft["n_signals"]) == (3, 4)  # one signal per link, events once
    assert draft["persons"] == [
        {"pseudonym": "M1", "link": "custodian"},
        {"pseudonym": "M1", "link": "mother"},
    ]
    assert result.signals.select("event_ref", "link").rows() == [
        ("E1", "custodian"), ("E1", "mother"), ("E2", "custodian"), ("E2", "mother"),
    ]


def test_both_parents_on_one_event_count_it_once() -> None:
    world = World().event("E", IN_WEEK, offence="1100", people=(("M1", "victim"), ("F1", "suspect")))
    result = world.search()
    assert result.drafts.height == 0  # score 2, not 4
    assert result.stats["signals_in_lookback"] == 2


def test_several_children_of_one_parent() -> None:
    world = World()
    world.population["C2"] = ("253", date(2012, 8, 8))
    world.relations.append(("C2", "M1", "mother"))
    result = world.event("E", IN_WEEK, incident="H99", people=(("M1", "involved"),)).search()
    assert result.drafts.select("municipality", "child").rows() == [("101", "C1"), ("253", "C2")]
    assert result.signals["draft_id"].to_list() == ["2026-W47/C1", "2026-W47/C2"]


# --- resolution and contract ---------------------------------------------------------------


def test_probabilistic_resolution_fields_pass_through() -> None:
    world = World().event("E1", IN_WEEK, incident="H99")
    world.person("E1", "M1", "involved", resolved_by="probabilistic", probability=0.93)
    world.person("E1", None, "involved", resolved_by="probabilistic", probability=0.2)
    result = world.search()
    row = result.signals.row(0, named=True)
    assert (row["resolved_by"], row["match_probability"]) == ("probabilistic", 0.93)
    assert result.signals.height == 1


def test_persons_without_resolution_columns_default_to_cpr() -> None:
    frames = World().event("E1", IN_WEEK, incident="H99", people=(("M1", "involved"),)).frames()
    frames["persons"] = frames["persons"].drop("resolved_by", "match_probability")
    result = weekly_search(**frames, catalogue=CAT, week=W47, history=History.empty(),
                           draft_ids=ids)
    assert result.signals.select("resolved_by", "match_probability").row(0) == ("cpr", None)


def test_empty_result_has_the_contract_schema() -> None:
    result = World().search()
    assert result.drafts.schema == pl.Schema(DRAFT_SCHEMA)
    assert result.signals.schema == pl.Schema(SIGNAL_SCHEMA)
    assert result.stats["drafts"] == 0


def test_result_has_the_contract_schema_and_lazy_inputs_work() -> None:
    world = World().event("E", IN_WEEK, incident="H99", people=(("M1", "involved"),))
    frames = {k: v.lazy() for k, v in world.frames().items()}
    result = weekly_search(**frames, catalogue=CAT, week=W47, history=History.empty(),
                           draft_ids=ids)
    assert result.drafts.schema == pl.Schema(DRAFT_SCHEMA)
    assert result.signals.schema == pl.Schema(SIGNAL_SCHEMA)
    assert all(isinstance(v, int) for v in result.stats.values())


def test_draft_ids_called_once_with_the_drafted_children() -> None:
    calls: list[tuple[list[str], str]] = []

    def spy(children: pl.Series, week: str) -> pl.Series:
        calls.append((children.to_list(), week))
        return ids(children, week)

    world = World()
    world.population["C2"] = ("101", date(2012, 8, 8))
    world.relations.append(("C2", "M1", "mother"))
    world.event("E", IN_WEEK, incident="H99", people=(("M1", "involved"),))
    weekly_search(**world.frames(), catalogue=CAT, week=W47, history=History.empty(),
                  draft_ids=spy)
    assert calls == [(["C1", "C2"], "2026-W47")]


def test_history_empty() -> None:
    history = History.empty()
    assert history.drafted_pairs.columns == ["child", "event_ref"]
    assert history.previous_drafts.columns == ["child", "draft_id", "week"]


def _busy_world() -> World:
    world = World()
    world.population |= {"C2": ("253", date(2012, 8, 8)), "C3": ("751", date(2010, 1, 1))}
    world.relations += [("C2", "M1", "mother"), ("C3", "F1", "custodian"),
                        ("C3", "F1", "household")]
    world.event("E1", EARLIER, offence="1100", people=(("M1", "suspect"), ("F1", "victim")))
    world.event("E2", IN_WEEK, incident="H10", offence="1200",
                people=(("F1", "suspect"), ("C3", "involved")))
    world.event("E3", IN_WEEK, incident="H99", people=(("C2", "victim"),))
    world.event("E4", local(2026, 8, 1, 1, 0), incident="H20", people=(("M1", "involved"),))
    return world


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_row_order_of_inputs_does_not_change_the_result(rnd: random.Random) -> None:
    world = _busy_world()
    expected = world.search()
    assert expected.drafts.height == 3
    frames = world.frames()
    shuffled = {
        k: v.sample(fraction=1.0, shuffle=True, seed=rnd.randrange(2**32))
        for k, v in frames.items()
    }
    got = weekly_search(**shuffled, catalogue=CAT, week=W47, history=History.empty(),
                        draft_ids=ids)
    assert got.drafts.equals(expected.drafts)
    assert got.signals.equals(expected.signals)
    assert got.stats == expected.stats


def test_busy_world_by_hand() -> None:
    result = _busy_world().search()
    rows = result.drafts.select("child", "municipality", "rule", "score", "n_signals").rows()
    # C1: E1 (mother suspect 1100=2, father victim 1100=2 → 2), E2 (father: H10=1, 1200=1 → 1),
    #     E4 (mother H20=1) → 4.  C2: E1 (mother, 2), E3 self H99 immediate, E4 (1) → 4.
    # C3: E1 father victim as custodian+household (2), E2 self H10 + father H10/1200 (1) → 3.
    assert rows == [
        ("C1", "101", "threshold", 4, 5),
        ("C2", "253", "immediate", 4, 3),
        ("C3", "751", "threshold", 3, 7),
    ]
    assert result.stats["children_with_signals"] == 3


def test_person_listed_twice_keeps_one_signal_with_the_best_resolution() -> None:
    world = World().event("E1", IN_WEEK, incident="H99")
    world.person("E1", "M1", "involved", resolved_by="probabilistic", probability=0.81)
    world.person("E1", "M1", "involved", resolved_by="probabilistic", probability=0.97)
    world.person("E1", "F1", "involved", resolved_by="probabilistic", probability=0.9)
    world.person("E1", "F1", "involved")
    result = world.search()
    got = result.signals.select("person", "resolved_by", "match_probability").rows()
    assert got == [("F1", "cpr", None), ("M1", "probabilistic", 0.97)]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_hubs_history_step_over_the_stations_rows_gives_the_full_search(data: st.DataObject) -> None:
    """The station runs the rule with no history and ships, per drafted child, its (child, event,
    person) rows, whether each event is of the week, and the child's municipality. With any
    history, ``hub_search`` over those gives the drafts ``weekly_search`` gives on everything:
    the same children, ids, municipalities, persons, earlier drafts and (child, event, person,
    new) rows."""
    frames = _busy_world().frames()
    station = weekly_search(**frames, catalogue=CAT, week=W47, history=History.empty(), draft_ids=ids)
    pairs = station.signals.select("child", "event_ref").unique().sort("child", "event_ref")
    drafted = [p for p in pairs.rows() if data.draw(st.booleans())]
    weeks = {child: data.draw(st.sampled_from(["2026-W44", "2026-W45", "2026-W46"])) for child, _ in drafted}
    history = History(
        drafted_pairs=pl.DataFrame(drafted, schema={"child": pl.String, "event_ref": pl.String}, orient="row"),
        previous_drafts=pl.DataFrame([(c, f"D{w}/{c}", w) for c, w in weeks.items()],
                                     schema={"child": pl.String, "draft_id": pl.String, "week": pl.String},
                                     orient="row"),
    )
    full = weekly_search(**frames, catalogue=CAT, week=W47, history=history, draft_ids=ids)
    events = frames["incidents"].select(
        "event_ref", (iso_week(pl.col("registered_at")) == str(W47)).alias("in_week"))
    hub = hub_search(
        signals=station.signals.select("child", "event_ref", "person").unique(),
        events=events,
        children=station.drafts.select(pl.col("child").alias("person"), "municipality"),
        week=W47, history=history, draft_ids=ids,
    )
    same = ["draft_id", "week", "child", "municipality", "previous_drafts"]
    assert hub.drafts.select(same).equals(full.drafts.select(same))
    people = pl.col("persons").list.eval(pl.element().struct.field("pseudonym")).list.unique().list.sort()
    assert hub.drafts.select(people).equals(full.drafts.select(people))
    rows = ["draft_id", "child", "event_ref", "person", "new"]
    assert hub.signals.select(rows).equals(full.signals.select(rows).unique().sort("draft_id", "event_ref", "person"))
    assert hub.drafts.select("rule", "score", "threshold", "n_signals", "n_new_signals").null_count().row(0) == (
        hub.drafts.height,) * 5
