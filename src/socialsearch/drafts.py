"""Underretning drafts: the JSON documents of DESIGN.md §6 and the caseworker's HTML page.

:func:`build_documents` turns a :class:`~socialsearch.search.SearchResult`'s frames into one
list of draft documents per receiving municipality; :func:`render_html` renders such a list as
a self-contained Danish page (Jinja2, autoescaped, inline CSS, printable);
:func:`write_municipality` writes both files atomically to ``OUT/<week>/<kommunekode>/``.

Everything here is pseudonymised: children and adults appear as pseudonyms, events as keyed
event references. The output is deterministic (same frames, same bytes), so a re-run of a week
rewrites identical files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from .atomic import write_json_atomic, write_text_atomic
from .contract import TIME_ZONE
from .geography import geography
from .resources import template_dir
from .weeks import IsoWeek

__all__ = [
    "KIND_DA",
    "LINK_DA",
    "ROLE_DA",
    "build_documents",
    "render_html",
    "write_municipality",
]

_ISO = "%Y-%m-%dT%H:%M:%S%:z"
TEMPLATE = "drafts.html.j2"

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

# The subject of the concern sentence, by link; the order is the priority when one person has
# several ties to the child (a mother who is also custodian is "Barnets mor").
_SUBJECT_DA: dict[str, str] = {
    "self": "Barnet selv",
    "mother": "Barnets mor",
    "father": "Barnets far",
    "custodian": "Barnets forældremyndighedsindehaver",
    "household": "En voksen i barnets husstand",
}

_SIGNAL_FIELDS = (
    "event_ref", "registered_at", "occurred_at", "district", "municipality", "kind", "code", "label",
    "category", "category_label", "role", "link", "person", "weight", "new", "resolved_by",
    "match_probability",
)
_SIGNAL_ORDER = ("registered_at", "event_ref", "code", "person", "link", "role", "kind")
_PROBABILISTIC_ONLY = ("resolved_by", "match_probability")


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
    signals: pl.DataFrame, drafts: pl.DataFrame, *, generated_at: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The draft documents of DESIGN.md §6, grouped by receiving municipality.

    Parameters
    ----------
    signals, drafts
        ``SearchResult.signals`` and ``SearchResult.drafts`` (``notes/result_schema.md``).
    generated_at
        Optional time stamp copied into every draft as ``generated_at``; leave it out for
        byte-identical output on re-runs.

    Returns
    -------
    dict
        kommunekode → drafts sorted by ``draft_id``; keys in code order. Each draft holds
        ``draft_id``, ``week``, ``municipality``, ``child`` {pseudonym, age, municipality},
        ``persons`` [{pseudonym, link}], ``signals`` (sorted by registered_at, event_ref, code,
        person, link; ``resolved_by`` and ``match_probability`` only on signals whose person
        was found by probabilistic matching), ``reason`` {rule, score, threshold},
        ``previous_drafts``. Date-times are ISO 8601 with offset in Europe/Copenhagen.

    Examples
    --------
    >>> docs = build_documents(result.signals, result.drafts)  # doctest: +SKIP
    >>> docs["101"][0]["reason"]  # doctest: +SKIP
    {'rule': 'threshold', 'score': 4, 'threshold': 3}
    """
    if drafts.height == 0:
        return {}
    fields = [f for f in _SIGNAL_FIELDS if f in signals.columns]
    per_draft = (
        signals.sort("draft_id", *(c for c in _SIGNAL_ORDER if c in signals.columns))
        .select(
            "draft_id",
            pl.struct(
                *(
                    _iso_local(f, signals.schema) if f in ("registered_at", "occurred_at") else pl.col(f)
                    for f in fields
                )
            ).alias("signal"),
        )
        .group_by("draft_id", maintain_order=True)
        .agg(pl.col("signal").alias("signals"))
    )
    documents = (
        drafts.select(
            "draft_id",
            "week",
            "municipality",
            pl.struct(
                pl.col("child").alias("pseudonym"), pl.col("age"), pl.col("municipality")
            ).alias("child"),
            "persons",
            pl.struct("rule", "score", "threshold").alias("reason"),
            "previous_drafts",
        )
        .join(per_draft, on="draft_id", how="left")
        .sort("municipality", "draft_id")
    )
    out: dict[str, list[dict[str, Any]]] = {}
    # One dict per draft (hundreds a week): the output itself, not extract-sized work.
    for doc in documents.to_dicts():
        doc["signals"] = [_trim_signal(s) for s in doc["signals"] or []]
        doc["persons"] = doc["persons"] or []
        doc["previous_drafts"] = doc["previous_drafts"] or []
        if generated_at is not None:
            doc["generated_at"] = generated_at
        out.setdefault(doc["municipality"], []).append(doc)
    return out


def _trim_signal(signal: dict[str, Any]) -> dict[str, Any]:
    if signal.get("resolved_by") == "probabilistic":
        return signal
    return {k: v for k, v in signal.items() if k not in _PROBABILISTIC_ONLY}


# --- HTML --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _name(lookup: Any, code: str | None) -> str:
    if code is None:
        return "ukendt"
    try:
        return str(lookup(code))
    except KeyError:
        return code


def _decimal_da(value: float, digits: int = 2) -> str:
    """0.98 → "0,98" (Danish decimal comma)."""
    return f"{value:.{digits}f}".replace(".", ",")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _join_da(items: list[str]) -> str:
    """["a", "b", "c"] → "a, b og c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " og " + items[-1]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _when(text: str | None) -> tuple[str, str]:
    """ISO 8601 text → ("16.11.2026", "14:05")."""
    if not text:
        return ("", "")
    moment = datetime.fromisoformat(text)
    return (moment.strftime("%d.%m.%Y"), moment.strftime("%H:%M"))


def _span_weeks(signals: list[dict[str, Any]]) -> int:
    moments = [datetime.fromisoformat(s["registered_at"]) for s in signals if s.get("registered_at")]
    if not moments:
        return 1
    days = (max(moments) - min(moments)).days + 1
    return max(1, math.ceil(days / 7))


def _person_labels(draft: Mapping[str, Any]) -> dict[str, str]:
    """Short labels P1, P2, ... for the persons, in the order of the persons list."""
    order: list[str] = []
    for p in draft.get("persons") or []:
        if p["pseudonym"] not in order:
            order.append(p["pseudonym"])
    for s in draft.get("signals") or []:
        if s["person"] not in order:
            order.append(s["person"])
    return {pseudonym: f"P{i}" for i, pseudonym in enumerate(order, start=1)}


def _concerns(draft: Mapping[str, Any], labels: Mapping[str, str], weeks: int) -> list[str]:
    """One sentence per person, e.g. "Barnets far er registreret i 3 hændelser med vold ..."."""
    by_person: dict[str, list[dict[str, Any]]] = {}
    for s in draft.get("signals") or []:
        by_person.setdefault(s["person"], []).append(s)
    rank = {link: i for i, link in enumerate(_SUBJECT_DA)}
    subjects: dict[str, str] = {}
    for person, sigs in by_person.items():
        link = min((s["link"] for s in sigs), key=lambda k: rank.get(k, len(rank)))
        subjects[person] = _SUBJECT_DA.get(link, "En person med tilknytning til barnet")
    counts: dict[str, int] = {}
    for subject in subjects.values():
        counts[subject] = counts.get(subject, 0) + 1
    sentences = []
    for person, sigs in by_person.items():
        subject = subjects[person]
        if counts[subject] > 1:
            subject += f" ({labels[person]})"
        events = {s["event_ref"] for s in sigs}
        districts = {s["district"] for s in sigs}
        categories: list[str] = []
        for s in sigs:
            label = _lower_first(s.get("category_label") or s.get("category") or "")
            if label and label not in categories:
                categories.append(label)
        sentences.append(
            f"{subject} er registreret i {_plural(len(events), 'hændelse', 'hændelser')} med "
            f"{_join_da(categories)} i {_plural(len(districts), 'politikreds', 'politikredse')} "
            f"inden for {_plural(weeks, 'uge', 'uger')}."
        )
    return sentences


def _rule_text(reason: Mapping[str, Any]) -> str:
    if reason["rule"] == "immediate":
        return (
            "Straks-kategori: mindst én hændelse hører til en kategori, der altid udløser et udkast "
            f"({reason['score']} point, tærskel {reason['threshold']})"
        )
    return f"Tærskel nået: {reason['score']} point (tærskel {reason['threshold']})"


def _view(draft: Mapping[str, Any], lookback_weeks: int | None) -> dict[str, Any]:
    """What the template shows for one draft (small: one child's signals)."""
    geo = geography()
    signals = list(draft.get("signals") or [])
    labels = _person_labels(draft)
    weeks = lookback_weeks or _span_weeks(signals)
    rows = []
    for s in signals:
        occurred_day, occurred_time = _when(s.get("occurred_at"))
        registered_day, _ = _when(s.get("registered_at"))
        probability = s.get("match_probability")
        probabilistic = s.get("resolved_by") == "probabilistic"
        rows.append({
            "date": occurred_day,
            "time": occurred_time,
            "registered": registered_day,
            "category": s.get("category_label") or s.get("category") or "",
            "kind": KIND_DA.get(s.get("kind", ""), s.get("kind", "")).capitalize(),
            "code": s.get("code", ""),
            "label": s.get("label") or "",
            "role": ROLE_DA.get(s.get("role", ""), s.get("role", "")),
            "link": LINK_DA.get(s["link"], s["link"]),
            "person": labels[s["person"]],
            "district": _name(geo.district_name, s.get("district")),
            "municipality": _name(geo.municipality_name, s.get("municipality")),
            "new": bool(s.get("new")),
            "weight": s.get("weight"),
            "event_ref": s.get("event_ref", ""),
            "probabilistic_note": (
                "personen er fundet ved sandsynlighedsbaseret match, sandsynlighed "
                + (_decimal_da(float(probability)) if probability is not None else "ukendt")
            ) if probabilistic else None,
        })
    persons = []
    seen: set[str] = set()
    for p in list(draft.get("persons") or []) + [
        {"pseudonym": s["person"], "link": s["link"]} for s in signals
    ]:
        key = p["pseudonym"] + "\0" + p["link"]
        if key in seen:
            continue
        seen.add(key)
        persons.append({"label": labels[p["pseudonym"]], "pseudonym": p["pseudonym"],
                        "link": LINK_DA.get(p["link"], p["link"])})
    probabilistic = sorted({f"{r['person']} ({r['link']})" for r in rows if r["probabilistic_note"]})
    child = draft["child"]
    return {
        "draft_id": draft["draft_id"],
        "child_pseudonym": child["pseudonym"],
        "age": child.get("age"),
        "municipality": _name(geo.municipality_name, child.get("municipality")),
        "municipality_code": child.get("municipality"),
        "concerns": _concerns(draft, labels, weeks),
        "n_events": len({s["event_ref"] for s in signals}),
        "n_new_events": len({s["event_ref"] for s in signals if s.get("new")}),
        "n_districts": len({s["district"] for s in signals}),
        "rule": _rule_text(draft["reason"]),
        "rows": rows,
        "persons": persons,
        "probabilistic_persons": probabilistic,
        "previous_drafts": list(draft.get("previous_drafts") or []),
    }


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

    The page is self-contained (inline CSS, no scripts, no external addresses), escapes every
    value, and prints one child per page.
    """
    iso = IsoWeek.parse(week)
    name = _name(geography().municipality_name, municipality)
    views = [_view(d, lookback_weeks) for d in drafts]
    return _environment().get_template(TEMPLATE).render(
        title=f"Underretningsudkast — {name} — uge {iso.week}, {iso.year}",
        municipality=municipality,
        municipality_name=name,
        week=str(iso),
        week_number=iso.week,
        year=iso.year,
        monday=iso.monday.strftime("%d.%m.%Y"),
        sunday=iso.sunday.strftime("%d.%m.%Y"),
        drafts=views,
    )


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
    """
    folder = Path(out_week_dir) / municipality
    if week is None:
        week = str(drafts[0]["week"]) if drafts else Path(out_week_dir).name
    write_json_atomic(folder / "drafts.json", drafts, indent=2, sort_keys=True)
    write_text_atomic(folder / "drafts.html", render_html(municipality, drafts, week=week,
                                                          lookback_weeks=lookback_weeks))
    return folder
