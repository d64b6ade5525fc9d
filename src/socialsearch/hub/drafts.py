"""Underretning drafts: the JSON documents of the output contract and the caseworker's HTML page.

:func:`build_documents` turns a :class:`~socialsearch.hub.search.SearchResult`'s frames into one
list of draft documents per receiving municipality; :func:`render_html` renders such a list as
a self-contained Danish page (Jinja2, autoescaped, inline CSS and script, printable, usable
offline); :func:`write_municipality` writes both files atomically to ``OUT/<week>/<kommunekode>/``.

The page is written for the municipal caseworker: per child, why the draft was made (the
immediate category by name, or the score split into new points and points already seen in an
earlier draft), one row per police event with every person's relation and role merged into it,
each person once with all their relations, siblings whose drafts share events under one
household heading, and what to do next. Each draft has a small form (approve or dismiss, a
reason, the reviewer's initials); the page itself turns the answers into ``decisions.json``
(:data:`DECISIONS_FORMAT`) for download, without a server, for ``socialsearch review --import``.

Everything here is pseudonymised: children and adults appear as pseudonyms, events as keyed
event references. The output is deterministic (same frames, same bytes), so a re-run of a week
rewrites identical files.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import polars as pl

from .._atomic import json_text, write_files_atomic
from .._html import CSP_PLACEHOLDER, with_csp
from .._resources import templates
from ..contract import DECISIONS_SCHEMA, ROLES, TIME_ZONE
from ..geography import geography
from ..weeks import IsoWeek

__all__ = [
    "DECISIONS_FORMAT",
    "DECISION_DA",
    "KIND_DA",
    "LINK_DA",
    "ROLE_DA",
    "build_documents",
    "municipality_name_da",
    "render_html",
    "write_municipality",
]

_ISO = "%Y-%m-%dT%H:%M:%S%:z"
_TEMPLATE = "drafts.html.j2"

DECISIONS_FORMAT: str = DECISIONS_SCHEMA["properties"]["format"]["const"]
"""The ``format`` of the ``decisions.json`` the page produces (version 1)::

    {"format": "socialsearch-decisions", "version": 1, "week": "2026-W47", "municipality": "101",
     "decisions": [{"draft_id": "...", "decision": "approve" | "dismiss", "reason": "...",
                    "reviewer": "ABC"}]}
"""

LINK_DA: dict[str, str] = {
    "self": "barnet selv",
    "mother": "mor",
    "father": "far",
    "custodian": "forældremyndighedsindehaver",
    "household": "voksen i husstanden",
}
"""The person's tie to the child, as the caseworker reads it."""

ROLE_DA: dict[str, str] = {
    "suspect": "mistænkt",
    "victim": "forurettet",
    "witness": "vidne",
    "involved": "involveret",
}
KIND_DA: dict[str, str] = {"offence": "gerningskode", "incident": "hændelseskode"}
DECISION_DA: dict[str, str] = {"approve": "godkendt", "dismiss": "afvist"}
"""A recorded decision as the page names it; an earlier draft without one is "ikke afgjort"."""

# The order in which one person's ties are named ("far og forældremyndighedsindehaver") and
# the subject of the concern sentence, by the first of them.
_LINK_ORDER = ("self", "mother", "father", "custodian", "household")
_SUBJECT_DA: dict[str, str] = {
    "self": "Barnet selv",
    "mother": "Barnets mor",
    "father": "Barnets far",
    "custodian": "Barnets forældremyndighedsindehaver",
    "household": "En voksen i barnets husstand",
}
# Official names that are not "<name> Kommune".
_MUNICIPALITY_DA: dict[str, str] = {"101": "Københavns Kommune", "400": "Bornholms Regionskommune"}

_SIGNAL_FIELDS = (
    "event_ref", "registered_week", "registered_at", "occurred_at", "district", "municipality", "kind", "code",
    "label", "category", "category_label", "role", "link", "person", "weight", "new", "resolved_by",
    "match_probability",
)
_SIGNAL_ORDER = ("registered_week", "registered_at", "event_ref", "code", "person", "link", "role", "kind")
_PROBABILISTIC_ONLY = ("resolved_by", "match_probability")
_DRAFT_WEEK = re.compile(r"^D(\d{4}-W\d{2})-")
# What the page says of the exact values (the child's age, the events' times and places).
_EXACT_DA: dict[str, str] = {
    "opened": "vist (åbnet med kommunens nøgle)",
    "sealed": ("forseglet til kommunen: barnets alder og hændelsernes tidspunkter og gerningssted vises, når "
               "udkastene åbnes med kommunens nøgle (socialsearch open)"),
    "none": ("ikke med: kommunen har ingen nøgle hos politiet; barnets alder og hændelsernes tidspunkter og "
             "gerningssted fås fra den nøgleansvarlige, når udkastet er godkendt"),
    "sealed_all": ("forseglet til kommunen: hvorfor udkastet er lavet (regel, point), hændelsernes koder, "
                   "kategorier, politikreds, tidspunkter og gerningssted, personernes roller og tilknytning "
                   "til barnet samt barnets alder vises, når udkastene åbnes med kommunens nøgle "
                   "(socialsearch open)"),
    "none_all": ("ikke med: kommunen har ingen nøgle hos politiet, så udkastets indhold (regel, koder, roller, "
                 "tilknytning, tidspunkter og alder) fås fra den nøgleansvarlige"),
}
_CONCERNS_SEALED_DA = ("Hvad politiet har registreret (kategorier, koder, personernes roller og tilknytning "
                      "til barnet), er forseglet til kommunen og vises, når udkastene åbnes med kommunens nøgle "
                      "(socialsearch open).")
_WHY_SEALED_DA = ("Politiets station har fundet, at barnet opfylder reglen, og at mindst én hændelse er ny og "
                  "registreret i ugen. Hvilken regel og hvilke hændelser, koder og roller det drejer sig om, er "
                  "forseglet til kommunen og vises, når udkastene åbnes med kommunens nøgle.")


# --- documents ---------------------------------------------------------------------------------


def _iso_local(name: str, schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """A date-time column as ISO 8601 text with its offset, in Europe/Copenhagen."""
    col = pl.col(name)
    dtype = schema[name]
    if isinstance(dtype, pl.Datetime):
        col = (
            col.dt.convert_time_zone(TIME_ZONE) if dtype.time_zone else col.dt.replace_time_zone(TIME_ZONE)
        )
        return col.dt.to_string(_ISO).alias(name)
    return col.cast(pl.String).alias(name)


def build_documents(
    signals: pl.DataFrame,
    drafts: pl.DataFrame,
    *,
    generated_at: str | None = None,
    earlier: Mapping[str, Mapping[str, Any]] | None = None,
    immediate_categories: Collection[str] = (),
    sealed_keys: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The draft documents of the output contract (``docs/data-contract.md``), grouped by receiving municipality.

    Parameters
    ----------
    signals, drafts
        ``SearchResult.signals`` and ``SearchResult.drafts`` (:data:`~socialsearch.hub.search.SIGNAL_SCHEMA`,
        :data:`~socialsearch.hub.search.DRAFT_SCHEMA`).
    generated_at
        Optional time stamp copied into every draft as ``generated_at``; leave it out for
        byte-identical output on re-runs.
    earlier
        What the ledger knows of earlier drafts: draft id → ``{"week": "2026-W45",
        "decision": "approve" | "dismiss" | None}`` (None: no decision recorded yet). An
        earlier draft missing here gets the week from its id and no ``decision`` key (the page
        then says the decision is not known, rather than that there is none).
    immediate_categories
        The catalogue's immediate category ids; an immediate draft then names the categories
        that made it (``reason.immediate_categories``).
    sealed_keys
        The hub extract's ``municipal_keys`` (kommunekode → that week's data key sealed to the
        municipality). With it, and ``details`` columns (binary) in ``drafts`` and ``signals``,
        each draft gets ``sealed`` {``key``, ``child``} and each signal ``sealed``: the exact
        values only the municipality opens (``socialsearch open``); ``sealed`` is null for a
        municipality with no key at the station.

    Returns
    -------
    dict
        kommunekode → drafts sorted by ``draft_id``; keys in code order. Each draft holds
        ``draft_id``, ``week``, ``municipality``, ``child`` {pseudonym, municipality},
        ``persons`` [{pseudonym, link}], ``signals`` (sorted by registered_week, event_ref, code,
        person, link; ``resolved_by`` and ``match_probability`` only on signals whose person
        was found by probabilistic matching), ``reason`` {rule, score, threshold},
        ``previous_drafts`` [draft ids], and for the page: ``points`` {new, earlier} (the score
        from events in no earlier draft of the child, and from events that were),
        ``immediate_categories`` (the immediate categories among an immediate draft's signals),
        ``earlier_drafts`` [{draft_id, week, decision}] and ``siblings`` (the drafts in the same
        list with the same adult on the same event: brothers and sisters, as the page groups
        them). Date-times are ISO 8601 with offset in Europe/Copenhagen.

    Examples
    --------
    A father on two violence events (weight 2 each) in week 47: one threshold draft to 101.

    >>> from socialsearch.catalogue import load_catalogue
    >>> from socialsearch.hub.search import History, weekly_search
    >>> from socialsearch.weeks import IsoWeek
    >>> result = weekly_search(
    ...     incidents=pl.DataFrame({"event_ref": ["e1", "e2"], "district": ["KBH", "NJY"],
    ...                             "registered_week": ["2026-W47", "2026-W47"], "incident_code": [None, None],
    ...                             "offence_code": ["1100", "1100"]}),
    ...     persons=pl.DataFrame({"event_ref": ["e1", "e2"], "person": ["F", "F"], "role": ["suspect"] * 2}),
    ...     population=pl.DataFrame({"person": ["C"], "municipality": ["101"]}),
    ...     relations=pl.DataFrame({"child": ["C"], "adult": ["F"], "relation": ["father"]}),
    ...     catalogue=load_catalogue(None), week=IsoWeek.parse("2026-W47"), history=History.empty(),
    ...     draft_ids=lambda c, w: "D" + w + "-" + c)
    >>> docs = build_documents(result.signals, result.drafts)
    >>> docs["101"][0]["reason"], docs["101"][0]["points"]
    ({'rule': 'threshold', 'score': 4, 'threshold': 3}, {'new': 4, 'earlier': 0})
    >>> [(s["event_ref"], s["link"], s["new"]) for s in docs["101"][0]["signals"]]
    [('e1', 'father', True), ('e2', 'father', True)]
    """
    if drafts.height == 0:
        return {}
    sealed_rows = "role" not in signals.columns  # a hub extract's rows: what they hold is sealed
    per_draft = _sealed_signals(signals) if sealed_rows else _clear_signals(signals)
    documents = (
        drafts.select(
            "draft_id",
            "week",
            "municipality",
            pl.struct(
                pl.col("child").alias("pseudonym"), *(["age"] if "age" in drafts.columns else []),
                pl.col("municipality")
            ).alias("child"),
            "persons",
            pl.struct("rule", "score", "threshold").alias("reason"),
            "previous_drafts",
            (pl.col("details").bin.encode("base64") if "details" in drafts.columns
             else pl.lit(None, pl.String)).alias("_details"),
        )
        .join(per_draft, on="draft_id", how="left")
        .sort("municipality", "draft_id")
    )
    immediate = set(immediate_categories)
    out: dict[str, list[dict[str, Any]]] = {}
    # One dict per draft (hundreds a week): the output itself, not extract-sized work.
    for doc in documents.to_dicts():
        details = doc.pop("_details")
        if sealed_keys is not None:
            key = sealed_keys.get(doc["municipality"])
            doc["sealed"] = {"key": dict(key), "child": details} if key is not None and details else None
        doc["signals"] = [_trim_signal(s) for s in doc["signals"] or []]
        doc["persons"] = doc["persons"] or []
        doc["previous_drafts"] = doc["previous_drafts"] or []
        if doc["reason"]["rule"] is None:  # sealed for the municipality: `socialsearch open` shows it
            doc["reason"] = doc["points"] = doc["immediate_categories"] = None
        else:
            doc["points"] = _points(doc["signals"], doc["reason"]["score"])
            doc["immediate_categories"] = (
                sorted({s["category"] for s in doc["signals"] if s.get("category") in immediate})
                if doc["reason"]["rule"] == "immediate" else []
            )
        doc["earlier_drafts"] = [_earlier(d, earlier or {}) for d in doc["previous_drafts"]]
        if generated_at is not None:
            doc["generated_at"] = generated_at
        out.setdefault(doc["municipality"], []).append(doc)
    for docs in out.values():
        _mark_siblings(docs)
    return out


def _clear_signals(signals: pl.DataFrame) -> pl.DataFrame:
    """draft_id → its signals (every field in clear), sorted, one list per draft."""
    fields = [f for f in _SIGNAL_FIELDS if f in signals.columns]
    sealed = [pl.col("details").bin.encode("base64").alias("sealed")] if "details" in signals.columns else []
    return (
        signals.sort("draft_id", *(c for c in _SIGNAL_ORDER if c in signals.columns))
        .select(
            "draft_id",
            pl.struct(
                *(
                    _iso_local(f, signals.schema) if f in ("registered_at", "occurred_at") else pl.col(f)
                    for f in fields
                ),
                *sealed,
            ).alias("signal"),
        )
        .group_by("draft_id", maintain_order=True)
        .agg(pl.col("signal").alias("signals"))
    )


def _sealed_signals(signals: pl.DataFrame) -> pl.DataFrame:
    """draft_id → its (event, person) rows as the hub holds them: the pseudonyms, whether the
    pair is new and the event registered in the week, and ``sealed`` {``signal``, ``event``}:
    the row's and the event's values sealed for the municipality (null without its key)."""
    def b64(column: str, name: str) -> pl.Expr:
        return (pl.col(column).bin.encode("base64") if column in signals.columns
                else pl.lit(None, pl.String)).alias(name)

    sealed = pl.when(pl.col("signal").is_not_null() & pl.col("event").is_not_null()).then(
        pl.struct("signal", "event"))
    return (
        signals.sort("draft_id", "event_ref", "person")
        .with_columns(b64("details", "signal"), b64("event_details", "event"))
        .select("draft_id", pl.struct("event_ref", "person", "new", "in_week", sealed.alias("sealed")).alias("signal"))
        .group_by("draft_id", maintain_order=True)
        .agg(pl.col("signal").alias("signals"))
    )


def _trim_signal(signal: dict[str, Any]) -> dict[str, Any]:
    if signal.get("resolved_by") == "probabilistic":
        return signal
    return {k: v for k, v in signal.items() if k not in _PROBABILISTIC_ONLY}


def _event_weights(signals: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, bool]]:
    """event_ref → (its weight: the largest of its codes', whether it is in no earlier draft)."""
    events: dict[str, tuple[int, bool]] = {}
    for s in signals:
        weight, new = events.get(s["event_ref"], (0, False))
        events[s["event_ref"]] = (max(weight, int(s.get("weight") or 0)), new or bool(s.get("new")))
    return events


def _points(signals: list[dict[str, Any]], score: int) -> dict[str, int]:
    """The score split into points from new events and from events of earlier drafts."""
    if not signals:
        return {"new": int(score), "earlier": 0}
    events = _event_weights(signals).values()
    return {"new": sum(w for w, new in events if new), "earlier": sum(w for w, new in events if not new)}


def _earlier(draft_id: str, earlier: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    known = earlier.get(draft_id) or {}
    week = known.get("week")
    if week is None:
        m = _DRAFT_WEEK.match(draft_id)
        week = m.group(1) if m else None
    item: dict[str, Any] = {"draft_id": draft_id, "week": week}
    if draft_id in earlier:  # the ledger answered: a decision, or None while none is recorded
        item["decision"] = known.get("decision")
    return item


def _decision_da(earlier: Mapping[str, Any]) -> str:
    if "decision" not in earlier:
        return "beslutningen er ikke oplyst"
    return DECISION_DA.get(earlier["decision"] or "", "ikke afgjort endnu")


def _shared(doc: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(event, adult) pairs of a draft: what siblings' drafts have in common (the child itself,
    link ``self``, is the one person on its own draft who is not an adult)."""
    child = (doc.get("child") or {}).get("pseudonym")
    return {(s["event_ref"], s["person"]) for s in doc.get("signals") or []
            if s.get("link") != "self" and s["person"] != child}


def _sibling_map(docs: list[Mapping[str, Any]]) -> dict[str, list[str]]:
    """draft id → the other drafts connected to it through the same adult on the same event.

    Two children who are merely on the same event themselves (two victims of one incident)
    are not connected; children whose father is on the same event are.
    """
    by_pair: dict[tuple[str, str], list[int]] = {}
    for i, doc in enumerate(docs):
        for pair in _shared(doc):
            by_pair.setdefault(pair, []).append(i)
    parent = list(range(len(docs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for members in by_pair.values():
        for other in members[1:]:
            parent[root(other)] = root(members[0])
    groups: dict[int, list[str]] = {}
    for i, doc in enumerate(docs):
        groups.setdefault(root(i), []).append(doc["draft_id"])
    return {doc["draft_id"]: [d for d in groups[root(i)] if d != doc["draft_id"]] for i, doc in enumerate(docs)}


def _mark_siblings(docs: list[dict[str, Any]]) -> None:
    """Set each draft's ``siblings`` (see :func:`_sibling_map`)."""
    siblings = _sibling_map(list(docs))
    for doc in docs:
        doc["siblings"] = siblings[doc["draft_id"]]


# --- Danish text -------------------------------------------------------------------------------


def _name(lookup: Any, code: str | None) -> str:
    if code is None:
        return "ukendt"
    try:
        return str(lookup(code))
    except KeyError:
        return code


def municipality_name_da(code: str | None) -> str:
    """The municipality's name as a Dane writes it: ``"101"`` → ``"Københavns Kommune"``.

    Examples
    --------
    >>> municipality_name_da("101"), municipality_name_da("751"), municipality_name_da("400")
    ('Københavns Kommune', 'Aarhus Kommune', 'Bornholms Regionskommune')
    """
    if code in _MUNICIPALITY_DA:
        return _MUNICIPALITY_DA[code]
    name = _name(geography().municipality_name, code)
    return f"{name} Kommune" if code is not None and name != code else f"kommune {name}"


def _decimal_da(value: float, digits: int = 2) -> str:
    """0.98 → "0,98" (Danish decimal comma)."""
    return f"{value:.{digits}f}".replace(".", ",")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _join_da(items: list[str]) -> str:
    """["a", "b", "c"] → "a, b og c"; "samt" before the last when an item already holds "og".

    Examples
    --------
    >>> _join_da(["vold", "trusler", "narkotika"])
    'vold, trusler og narkotika'
    >>> _join_da(["selvmordsforsøg og selvmordstrusler", "vold"])
    'selvmordsforsøg og selvmordstrusler samt vold'
    """
    if len(items) <= 1:
        return "".join(items)
    last = " samt " if any(" og " in item for item in items) else " og "
    return ", ".join(items[:-1]) + last + items[-1]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _age_da(age: int | None) -> str:
    if age is None:
        return "alder ukendt"
    return "under 1 år" if age < 1 else f"{age} år"


def _when(text: str | None) -> tuple[str, str]:
    """ISO 8601 text → ("16.11.2026", "14:05")."""
    if not text:
        return ("", "")
    moment = datetime.fromisoformat(text)
    return (moment.strftime("%d.%m.%Y"), moment.strftime("%H:%M"))


def _week_da(week: str | None) -> str:
    if not week:
        return "ukendt uge"
    iso = IsoWeek.parse(week)
    return f"uge {iso.week}, {iso.year}"


def _span_weeks(signals: list[dict[str, Any]]) -> int:
    moments = [datetime.fromisoformat(s["registered_at"]) for s in signals if s.get("registered_at")]
    if not moments:
        return 1
    days = (max(moments) - min(moments)).days + 1
    return max(1, math.ceil(days / 7))


def _links_of(signals: Iterable[Mapping[str, Any]], persons: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """person pseudonym → its ties to the child, in :data:`_LINK_ORDER`; persons in draft order."""
    rank = {link: i for i, link in enumerate(_LINK_ORDER)}
    links: dict[str, set[str]] = {}
    for p in persons:
        links.setdefault(p["pseudonym"], set()).add(p["link"])
    for s in signals:
        links.setdefault(s["person"], set()).add(s["link"])
    return {person: sorted(ls, key=lambda k: (rank.get(k, len(rank)), k)) for person, ls in links.items()}


def _draft_links(draft: Mapping[str, Any]) -> dict[str, list[str]]:
    """person pseudonym → its ties to the child; of a sealed draft only the child's own is known
    (``self``), every other person's is ``sealed``."""
    if draft.get("reason") is not None:
        return _links_of(draft.get("signals") or [], draft.get("persons") or [])
    child = draft["child"]["pseudonym"]
    people = [p["pseudonym"] for p in draft.get("persons") or []] + [s["person"] for s in draft.get("signals") or []]
    return {p: ["self" if p == child else "sealed"] for p in dict.fromkeys(people)}


def _person_order(links: Mapping[str, list[str]]) -> list[str]:
    """The child first, then mother, father, custodians, household, each by pseudonym."""
    rank = {link: i for i, link in enumerate(_LINK_ORDER)}
    return sorted(links, key=lambda p: (rank.get(links[p][0], len(rank)), p))


def _relation_da(links: list[str]) -> str:
    return _join_da([LINK_DA.get(link, link) for link in links])


def _role_phrase(events_by_role: Mapping[str, frozenset[str]]) -> str:
    """How a person is registered: "som mistænkt i 2 hændelser og som forurettet i 1 hændelse".

    Roles held on exactly the same events share one part ("som mistænkt og forurettet i 1
    hændelse"); when the parts overlap, the number of distinct events follows ("i alt 2 hændelser").
    """
    rank = {role: i for i, role in enumerate(ROLES)}
    by_events: dict[frozenset[str], list[str]] = {}
    for role in sorted(events_by_role, key=lambda r: (rank.get(r, len(rank)), r)):
        by_events.setdefault(events_by_role[role], []).append(ROLE_DA.get(role, role))
    parts = [f"som {_join_da(roles)} i {_plural(len(events), 'hændelse', 'hændelser')}"
             for events, roles in by_events.items()]
    total = len(frozenset().union(*by_events))
    overlap = sum(len(events) for events in by_events) != total
    return _join_da(parts) + (f" (i alt {_plural(total, 'hændelse', 'hændelser')})" if overlap else "")


def _concerns(signals: list[dict[str, Any]], links: Mapping[str, list[str]], labels: Mapping[str, str],
              weeks: int) -> list[str]:
    """One sentence per person and role, e.g. "Barnets far er registreret som mistænkt i 3
    hændelser med vold ...".

    People registered in exactly the same roles on exactly the same events share one sentence
    ("Barnets mor og far er registreret som mistænkt i 1 hændelse ..."), so one event is never
    read as two; a suspect and a victim of the same event never share one.
    """
    by_person: dict[str, list[dict[str, Any]]] = {}
    for s in signals:
        by_person.setdefault(s["person"], []).append(s)
    subjects = {p: _SUBJECT_DA.get(links[p][0], "En person med tilknytning til barnet") for p in by_person}
    repeated = {s for s in subjects.values() if list(subjects.values()).count(s) > 1}
    groups: dict[frozenset[tuple[str, frozenset[str]]], list[str]] = {}
    roles_of: dict[frozenset[tuple[str, frozenset[str]]], dict[str, frozenset[str]]] = {}
    for person in _person_order({p: links[p] for p in by_person}):
        events_by_role: dict[str, set[str]] = {}
        for s in by_person[person]:
            events_by_role.setdefault(str(s.get("role") or ""), set()).add(s["event_ref"])
        frozen = {role: frozenset(events) for role, events in events_by_role.items()}
        key = frozenset(frozen.items())
        groups.setdefault(key, []).append(person)
        roles_of[key] = frozen
    sentences = []
    for key, people in groups.items():
        names = [subjects[p] + (f" ({labels[p]})" if subjects[p] in repeated else "") for p in people]
        if names[0].startswith("Barnets "):
            names = [names[0], *(n.removeprefix("Barnets ") for n in names[1:])]
        subject = _join_da([names[0], *map(_lower_first, names[1:])])
        sigs = [s for p in people for s in by_person[p]]
        districts = {s["district"] for s in sigs}
        categories: list[str] = []
        for s in sigs:
            label = _lower_first(s.get("category_label") or s.get("category") or "")
            if label and label not in categories:
                categories.append(label)
        sentences.append(
            f"{subject} er registreret {_role_phrase(roles_of[key])} med "
            f"{_join_da(categories)} i {_plural(len(districts), 'politikreds', 'politikredse')} "
            f"inden for {_plural(weeks, 'uge', 'uger')}."
        )
    return sentences


def _headline(draft: Mapping[str, Any], signals: list[dict[str, Any]]) -> tuple[str, str]:
    """Why the draft was made: (the short rule, the sentence that explains it)."""
    reason = draft["reason"]
    score, threshold = int(reason["score"]), int(reason["threshold"])
    points = draft.get("points") or _points(signals, score)
    new, old = int(points["new"]), int(points["earlier"])
    split = (
        f"alle {score} point er nye" if old == 0 else
        f"{_plural(new, 'nyt point', 'nye point')} og {_plural(old, 'point', 'point')} fra hændelser, "
        "der allerede har været med i et tidligere udkast"
    )
    if reason["rule"] == "immediate":
        labels: list[str] = []
        for category in draft.get("immediate_categories") or []:
            label = next((s.get("category_label") for s in signals if s.get("category") == category), None)
            text = f"»{label or category}«"
            if text not in labels:
                labels.append(text)
        if labels:
            which = (f"kategorien {labels[0]}" if len(labels) == 1 else f"kategorierne {_join_da(labels)}")
            sentence = (f"Der er registreret en hændelse i {which}, som altid udløser et udkast, "
                        "uanset antallet af point.")
        else:
            sentence = ("Mindst én hændelse hører til en kategori, der altid udløser et udkast, "
                        "uanset antallet af point.")
        return ("Straks-udkast", f"{sentence} Barnet har i alt {_plural(score, 'point', 'point')} "
                                 f"(tærskelværdien er {threshold}); {split}.")
    return ("Tærskel nået", f"{score} point mod en tærskelværdi på {threshold}: {split}.")


def _event_rows(signals: list[dict[str, Any]], links: Mapping[str, list[str]],
                labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per event: its codes, and each person on it once with every role they had."""
    geo = geography()
    weights = _event_weights(signals)
    by_event: dict[str, list[dict[str, Any]]] = {}
    for s in signals:
        by_event.setdefault(s["event_ref"], []).append(s)
    rows = []
    for ref, sigs in by_event.items():
        first = sigs[0]
        occurred_day, occurred_time = _when(first.get("occurred_at"))
        registered_day, _ = _when(first.get("registered_at"))
        if not occurred_day and first.get("registered_week"):  # the hub's grain: the week only
            occurred_day = "Registreret i " + _week_da(first.get("registered_week"))
        codes: list[dict[str, str]] = []
        categories: list[str] = []
        for s in sigs:
            code = {"kind": KIND_DA.get(s.get("kind", ""), s.get("kind", "")).capitalize(),
                    "code": s.get("code", ""), "label": s.get("label") or ""}
            if code not in codes:
                codes.append(code)
            category = s.get("category_label") or s.get("category") or ""
            if category and category not in categories:
                categories.append(category)
        people = []
        for person in _person_order({s["person"]: links[s["person"]] for s in sigs}):
            roles: list[str] = []
            note = None
            for s in sigs:
                if s["person"] != person:
                    continue
                role = ROLE_DA.get(s.get("role", ""), s.get("role", ""))
                if role not in roles:
                    roles.append(role)
                if s.get("resolved_by") == "probabilistic":
                    probability = s.get("match_probability")
                    note = ("fundet ved sandsynlighedsbaseret match, sandsynlighed "
                            + (_decimal_da(float(probability)) if probability is not None else "ukendt"))
            people.append({  # the first tie only: the persons table gives them all
                "label": labels[person],
                "relation": LINK_DA.get(links[person][0], links[person][0]),
                "roles": _join_da(roles),
                "note": note,
            })
        weight, new = weights[ref]
        rows.append({
            "event_ref": ref,
            "date": occurred_day,
            "time": occurred_time,
            "registered": registered_day,
            "categories": _join_da([categories[0], *map(_lower_first, categories[1:])]) if categories else "",
            "codes": codes,
            "people": people,
            "district": _name(geo.district_name, first.get("district")),
            "municipality": _name(geo.municipality_name, first["municipality"]) if first.get("municipality") else "",
            "weight": weight,
            "new": new,
        })
    return rows


def _household_labels(group: list[Mapping[str, Any]]) -> dict[str, str]:
    """Short labels P1, P2, ... shared by the drafts of one household, adults before children."""
    links: dict[str, list[str]] = {}
    for d in group:
        for person, ls in _draft_links(d).items():
            links[person] = sorted(set(links.get(person, [])) | set(ls),
                                   key=lambda k: (_LINK_ORDER.index(k) if k in _LINK_ORDER else 9, k))
    return {p: f"P{i}" for i, p in enumerate(_person_order(links), start=1)}


def _is_immediate(draft: Mapping[str, Any]) -> bool:
    return bool((draft.get("reason") or {}).get("rule") == "immediate")


_SEALED_DA = "forseglet"


def _sealed_view(draft: Mapping[str, Any], labels: Mapping[str, str], number: int) -> dict[str, Any]:
    """What the template shows of a draft whose content is sealed for the municipality: the
    pseudonyms, the events by reference (new or known, registered in the week or earlier) and
    which values need ``socialsearch open``."""
    signals = list(draft.get("signals") or [])
    child = draft["child"]
    people: dict[str, list[str]] = {}
    for s in signals:
        people.setdefault(s["event_ref"], [])
        if s["person"] not in people[s["event_ref"]]:
            people[s["event_ref"]].append(s["person"])
    new = {s["event_ref"] for s in signals if s.get("new")}
    in_week = {s["event_ref"] for s in signals if s.get("in_week")}
    rows = [{
        "event_ref": ref,
        "date": "Registreret i ugen" if ref in in_week else "Registreret i en tidligere uge i perioden",
        "time": None, "registered": None, "categories": _SEALED_DA, "codes": [],
        "people": [{"label": labels.get(p, "?"),
                    "relation": "barnet selv" if p == child["pseudonym"] else "tilknytning forseglet",
                    "roles": "rolle forseglet", "note": None} for p in persons],
        "district": _SEALED_DA, "municipality": "", "weight": _SEALED_DA, "new": ref in new,
    } for ref, persons in people.items()]
    persons = [{
        "label": labels.get(p["pseudonym"], "?"), "pseudonym": p["pseudonym"],
        "relation": "barnet selv" if p["pseudonym"] == child["pseudonym"] else "tilknytning forseglet",
        "events": _plural(sum(1 for r in people.values() if p["pseudonym"] in r), "hændelse", "hændelser"),
        "roles": "",
    } for p in draft.get("persons") or []]
    earlier = draft.get("earlier_drafts") or [_earlier(d, {}) for d in draft.get("previous_drafts") or []]
    return {
        "number": number,
        "draft_id": draft["draft_id"],
        "immediate": False,
        "child_pseudonym": child["pseudonym"],
        "age": "alder forseglet",
        "exact": _EXACT_DA["sealed_all" if draft.get("sealed") else "none_all"],
        "municipality": municipality_name_da(child.get("municipality")),
        "municipality_code": child.get("municipality"),
        "rule": "Forseglet",
        "why": _WHY_SEALED_DA,
        "concerns": [_CONCERNS_SEALED_DA],
        "n_events": len(people),
        "n_new_events": len(new),
        "n_districts": _SEALED_DA,
        "rows": rows,
        "persons": persons,
        "probabilistic": False,
        "earlier": [{"draft_id": e["draft_id"], "week": _week_da(e.get("week")), "decision": _decision_da(e)}
                    for e in earlier],
    }


def _view(draft: Mapping[str, Any], lookback_weeks: int | None, labels: Mapping[str, str],
          number: int) -> dict[str, Any]:
    """What the template shows for one draft (small: one child's signals)."""
    if draft.get("reason") is None:
        return _sealed_view(draft, labels, number)
    signals = list(draft.get("signals") or [])
    links = _links_of(signals, draft.get("persons") or [])
    weeks = lookback_weeks or _span_weeks(signals)
    rows = _event_rows(signals, links, labels)
    n_events = {s["event_ref"] for s in signals}
    persons = []
    for person in _person_order(links):
        events = {s["event_ref"] for s in signals if s["person"] == person}
        roles: list[str] = []
        for s in signals:
            role = ROLE_DA.get(s.get("role", ""), s.get("role", ""))
            if s["person"] == person and role not in roles:
                roles.append(role)
        persons.append({
            "label": labels.get(person, "?"),
            "pseudonym": person,
            "relation": _relation_da(links[person]),
            "events": _plural(len(events), "hændelse", "hændelser") if events else "ingen hændelser",
            "roles": _join_da(roles),
        })
    rule, why = _headline(draft, signals)
    earlier = draft.get("earlier_drafts") or [_earlier(d, {}) for d in draft.get("previous_drafts") or []]
    child = draft["child"]
    opened = child.get("age") is not None or any(s.get("occurred_at") for s in signals)
    return {
        "number": number,
        "draft_id": draft["draft_id"],
        "immediate": _is_immediate(draft),
        "child_pseudonym": child["pseudonym"],
        "age": _age_da(child.get("age")) if opened or not draft.get("sealed") else "alder forseglet",
        "exact": _EXACT_DA["opened" if opened else "sealed" if draft.get("sealed") else "none"],
        "municipality": municipality_name_da(child.get("municipality")),
        "municipality_code": child.get("municipality"),
        "rule": rule,
        "why": why,
        "concerns": _concerns(signals, links, labels, weeks),
        "n_events": len(n_events),
        "n_new_events": sum(1 for r in rows if r["new"]),
        "n_districts": len({s["district"] for s in signals}),
        "rows": rows,
        "persons": persons,
        "probabilistic": any(s.get("resolved_by") == "probabilistic" for s in signals),
        "earlier": [
            {"draft_id": e["draft_id"], "week": _week_da(e.get("week")),
             "decision": _decision_da(e)}
            for e in earlier
        ],
    }


def _households(drafts: list[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Drafts grouped by shared events; households with an immediate draft first."""
    by_id = {d["draft_id"]: d for d in drafts}
    computed = _sibling_map(drafts) if any("siblings" not in d for d in drafts) else {}
    seen: set[str] = set()
    groups: list[list[Mapping[str, Any]]] = []
    for d in drafts:
        if d["draft_id"] in seen:
            continue
        siblings = d["siblings"] if "siblings" in d else computed[d["draft_id"]]
        ids = [d["draft_id"], *(s for s in siblings if s in by_id)]
        members = [by_id[i] for i in dict.fromkeys(ids) if i not in seen]
        seen.update(m["draft_id"] for m in members)
        members.sort(key=lambda m: (not _is_immediate(m), m["draft_id"]))
        groups.append(members)
    groups.sort(key=lambda g: (not _is_immediate(g[0]), g[0]["draft_id"]))
    return groups


def render_html(
    municipality: str,
    drafts: Iterable[Mapping[str, Any]],
    *,
    week: str,
    lookback_weeks: int | None = None,
) -> str:
    """The caseworker's page (Danish) for one municipality's drafts of one week.

    Parameters
    ----------
    municipality
        The receiving kommunekode, e.g. ``"101"``.
    drafts
        That municipality's documents from :func:`build_documents`.
    week
        The ISO week, e.g. ``"2026-W47"`` (shown as "uge 47, 2026").
    lookback_weeks
        The catalogue's lookback, used in "inden for 26 uger"; default: the span of each
        child's signals.

    The page is self-contained (inline CSS and script, no external addresses), escapes every
    value, prints each draft from a new page, and produces ``decisions.json`` in the browser,
    checked with :data:`~socialsearch.contract.DECISIONS_SCHEMA` (carried in the page). Its
    Content-Security-Policy lets only its own script and style sheet run, by their sha256
    (:func:`socialsearch._html.with_csp`).
    """
    iso = IsoWeek.parse(week)
    name = municipality_name_da(municipality)
    households: list[dict[str, Any]] = []
    all_views: list[dict[str, Any]] = []
    number = 0
    for group in _households(list(drafts)):
        labels = _household_labels(group)
        views = []
        for d in group:
            number += 1
            views.append(_view(d, lookback_weeks, labels, number))
        all_views += views
        counts: dict[tuple[str, str], int] = {}
        for d in group:
            for pair in _shared(d):
                counts[pair] = counts.get(pair, 0) + 1
        shared = {ref for (ref, _), n in counts.items() if n > 1}
        households.append({"drafts": views, "shared_events": len(shared)})
    n_immediate = sum(1 for v in all_views if v["immediate"])
    item = DECISIONS_SCHEMA["properties"]["decisions"]["items"]["properties"]
    return with_csp(_page_template().render(
        csp=CSP_PLACEHOLDER,
        schema_json=_script_json(DECISIONS_SCHEMA),
        reason_max=item["reason"]["maxLength"],
        reviewer_max=item["reviewer"]["maxLength"],
        title=f"Underretningsudkast til {name} — uge {iso.week}, {iso.year}",
        municipality=municipality,
        municipality_name=name,
        week=str(iso),
        week_number=iso.week,
        year=iso.year,
        monday=iso.monday.strftime("%d.%m.%Y"),
        sunday=iso.sunday.strftime("%d.%m.%Y"),
        households=households,
        n_drafts=len(all_views),
        n_immediate=n_immediate,
        decisions_format=DECISIONS_FORMAT,
    ))


_TEMPLATE_LOCK = threading.Lock()


def _page_template() -> jinja2.Template:
    """The page's template, compiled once even when several threads render pages at the same
    time (without the lock each of them would compile it)."""
    with _TEMPLATE_LOCK:
        return templates().get_template(_TEMPLATE)


def _script_json(value: Any) -> markupsafe.Markup:
    """JSON for a ``<script type="application/json">`` block: nothing in it can end the element."""
    text = json.dumps(value, ensure_ascii=True, sort_keys=True)
    return markupsafe.Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def write_municipality(
    out_week_dir: str | Path,
    municipality: str,
    drafts: list[dict[str, Any]],
    *,
    week: str | None = None,
    lookback_weeks: int | None = None,
) -> Path:
    """Write ``<out_week_dir>/<municipality>/drafts.json`` and ``drafts.html`` atomically.

    ``drafts.json`` is the list of draft documents (UTF-8, indented, sorted keys);
    ``week`` defaults to the drafts' week, else the folder name. Returns the folder.
    Earlier drafts' weeks and decisions come from the documents (``build_documents(earlier=...)``).
    """
    folder = Path(out_week_dir) / municipality
    if week is None:
        week = str(drafts[0]["week"]) if drafts else Path(out_week_dir).name
    page = render_html(municipality, drafts, week=week, lookback_weeks=lookback_weeks)
    # the folder is fsync-ed once, after both renames
    write_files_atomic(folder, {"drafts.json": json_text(drafts, indent=2, sort_keys=True).encode("utf-8"),
                                "drafts.html": page.encode("utf-8")})
    return folder
