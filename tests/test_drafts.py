"""Draft documents and the caseworker's HTML page, from a hand-made SearchResult."""

from __future__ import annotations

import json
import re
from datetime import datetime
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from socialsearch.hub.drafts import build_documents, municipality_name_da, render_html, write_municipality

TZ = ZoneInfo("Europe/Copenhagen")
DT = pl.Datetime("us", "Europe/Copenhagen")
PERSONS = pl.List(pl.Struct({"pseudonym": pl.String, "link": pl.String}))
SIGNAL_COLUMNS = [
    "draft_id", "child", "event_ref", "registered_at", "occurred_at", "district", "municipality", "kind",
    "code", "label", "category", "category_label", "role", "link", "person", "weight", "new",
    "resolved_by", "match_probability",
]


def t(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=TZ)


# Child A (Copenhagen, 101): the father in three districts (violence, drunk driving, violence),
# one event found by probabilistic matching; score 2 + 1 + 2 = 5 >= 3 -> threshold.
# Child B (Odense, 461): itself victim of an immediate-category incident.
SIGNALS = [
    ("DA", "CA", "E1", t(6, 1, 9), t(5, 31, 22), "NJY", "851", "offence", "1100", "Vold, straffeloven § 244",
     "violence", "Vold", "suspect", "father", "PF", 2, False, "cpr", None),
    ("DA", "CA", "E2", t(9, 10, 8), t(9, 9, 23), "OJY", "751", "offence", "4100", "Spirituskørsel",
     "drunk", "Spirituskørsel", "suspect", "father", "PF", 1, False, "probabilistic", 0.98),
    ("DA", "CA", "E3", t(11, 17, 10), t(11, 16, 21), "KBH", "101", "offence", "1100",
     "Vold, straffeloven § 244", "violence", "Vold", "suspect", "father", "PF", 2, True, "cpr", None),
    ("DB", "CB", "E9", t(11, 18, 12), t(11, 18, 11), "FYN", "461", "incident", "5600", "Barn i fare",
     "child_at_risk", "Barn i fare", "victim", "self", "CB", 3, True, "cpr", None),
]


def signals_frame(rows: list[tuple] = SIGNALS) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=SIGNAL_COLUMNS, orient="row",
        schema_overrides={"registered_at": DT, "occurred_at": DT, "weight": pl.Int64,
                          "match_probability": pl.Float64},
    )


def drafts_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "draft_id": ["DA", "DB"],
            "week": ["2026-W47", "2026-W47"],
            "child": ["CA", "CB"],
            "municipality": ["101", "461"],
            "age": [11, 7],
            "rule": ["threshold", "immediate"],
            "score": [5, 3],
            "threshold": [3, 3],
            "n_signals": [3, 1],
            "n_new_signals": [1, 1],
            "persons": [[{"pseudonym": "PF", "link": "father"}], [{"pseudonym": "CB", "link": "self"}]],
            "previous_drafts": [["D-old"], []],
        },
        schema_overrides={"persons": PERSONS, "previous_drafts": pl.List(pl.String)},
    )


def test_build_documents_every_field() -> None:
    docs = build_documents(signals_frame().reverse(), drafts_frame().reverse())
    assert list(docs) == ["101", "461"]
    [a] = docs["101"]
    assert a == {
        "draft_id": "DA",
        "week": "2026-W47",
        "municipality": "101",
        "child": {"pseudonym": "CA", "age": 11, "municipality": "101"},
        "persons": [{"pseudonym": "PF", "link": "father"}],
        "reason": {"rule": "threshold", "score": 5, "threshold": 3},
        "points": {"new": 2, "earlier": 3},
        "immediate_categories": [],
        "previous_drafts": ["D-old"],
        "earlier_drafts": [{"draft_id": "D-old", "week": None}],  # the ledger was not asked
        "siblings": [],
        "signals": [
            {
                "event_ref": "E1", "registered_at": "2026-06-01T09:00:00+02:00",
                "occurred_at": "2026-05-31T22:00:00+02:00", "district": "NJY", "municipality": "851",
                "kind": "offence", "code": "1100", "label": "Vold, straffeloven § 244", "category": "violence",
                "category_label": "Vold", "role": "suspect", "link": "father", "person": "PF", "weight": 2,
                "new": False,
            },
            {
                "event_ref": "E2", "registered_at": "2026-09-10T08:00:00+02:00",
                "occurred_at": "2026-09-09T23:00:00+02:00", "district": "OJY", "municipality": "751",
                "kind": "offence", "code": "4100", "label": "Spirituskørsel", "category": "drunk",
                "category_label": "Spirituskørsel", "role": "suspect", "link": "father", "person": "PF",
                "weight": 1, "new": False, "resolved_by": "probabilistic", "match_probability": 0.98,
            },
            {
                "event_ref": "E3", "registered_at": "2026-11-17T10:00:00+01:00",
                "occurred_at": "2026-11-16T21:00:00+01:00", "district": "KBH", "municipality": "101",
                "kind": "offence", "code": "1100", "label": "Vold, straffeloven § 244", "category": "violence",
                "category_label": "Vold", "role": "suspect", "link": "father", "person": "PF", "weight": 2,
                "new": True,
            },
        ],
    }
    [b] = docs["461"]
    assert b["reason"] == {"rule": "immediate", "score": 3, "threshold": 3}
    assert b["points"] == {"new": 3, "earlier": 0} and b["immediate_categories"] == []
    assert b["child"] == {"pseudonym": "CB", "age": 7, "municipality": "461"}
    assert [(s["link"], s["role"], s["kind"], s["code"], s["new"]) for s in b["signals"]] == [
        ("self", "victim", "incident", "5600", True)
    ]
    assert b["previous_drafts"] == [] and "generated_at" not in b
    json.dumps(docs)  # plain JSON types only


def test_build_documents_generated_at_and_empty() -> None:
    docs = build_documents(signals_frame(), drafts_frame(), generated_at="2026-11-23T06:00:00+00:00")
    assert {d["generated_at"] for ds in docs.values() for d in ds} == {"2026-11-23T06:00:00+00:00"}
    assert build_documents(signals_frame().clear(), drafts_frame().clear()) == {}


def test_build_documents_converts_other_time_zones_to_copenhagen() -> None:
    utc = signals_frame().with_columns(pl.col("registered_at", "occurred_at").dt.convert_time_zone("UTC"))
    assert build_documents(utc, drafts_frame()) == build_documents(signals_frame(), drafts_frame())


def test_draft_without_signals_gets_an_empty_list() -> None:
    docs = build_documents(signals_frame().filter(pl.col("draft_id") == "DA"), drafts_frame())
    assert docs["461"][0]["signals"] == []


def test_build_documents_earlier_drafts_immediate_categories_and_siblings() -> None:
    earlier = {"D-old": {"week": "2026-W40", "decision": "dismiss"}}
    docs = build_documents(signals_frame(), drafts_frame(), earlier=earlier, immediate_categories={"child_at_risk"})
    assert docs["101"][0]["earlier_drafts"] == [{"draft_id": "D-old", "week": "2026-W40", "decision": "dismiss"}]
    assert docs["461"][0]["immediate_categories"] == ["child_at_risk"]
    assert docs["101"][0]["immediate_categories"] == []  # a threshold draft names none
    # Without the ledger's answer, the week comes from the draft id's shape.
    docs = build_documents(signals_frame(), drafts_frame().with_columns(
        previous_drafts=pl.lit(["D2026-W45-k0a1b2c3d-00ff"], dtype=pl.List(pl.String))))
    assert docs["101"][0]["earlier_drafts"] == [{"draft_id": "D2026-W45-k0a1b2c3d-00ff", "week": "2026-W45"}]
    household = household_docs()
    assert {d["draft_id"]: d["siblings"] for d in household} == {
        "DS1": ["DS2", "DS3"], "DS2": ["DS1", "DS3"], "DS3": ["DS1", "DS2"], "DZ": []}


# --- the caseworker's page -----------------------------------------------------------------------


def text_of(html: str) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def page(lookback: int | None = 26, **kwargs: object) -> str:
    docs = build_documents(signals_frame(), drafts_frame(), **kwargs)  # type: ignore[arg-type]
    return render_html("101", docs["101"], week="2026-W47", lookback_weeks=lookback)


def signal(draft: str, child: str, event: str, person: str, link: str, role: str = "suspect", *,
           code: str = "1100", category: str = "violence", label: str = "Vold", weight: int = 2,
           new: bool = True, day: int = 17) -> tuple:
    return (draft, child, event, t(11, day, 10), t(11, day, 9), "KBH", "101", "offence", code,
            f"{label}, kode {code}", category, label, role, link, person, weight, new, "cpr", None)


def household_docs() -> list[dict]:
    """Three siblings (DS1-DS3) with the same parents and two shared events, and one unrelated child (DZ).

    The mother is also the custodian (two relations, one person); on event E1 both parents are
    registered, the father also as a victim of another code of the same event.
    """
    rows = []
    for draft, child in (("DS1", "C1"), ("DS2", "C2"), ("DS3", "C3")):
        rows += [
            signal(draft, child, "E1", "PM", "mother", day=10, new=False),
            signal(draft, child, "E1", "PM", "custodian", day=10, new=False),
            signal(draft, child, "E1", "PF", "father", day=10, new=False),
            signal(draft, child, "E1", "PF", "father", "victim", code="1200", label="Trusler", category="threats",
                   weight=1, day=10, new=False),
            signal(draft, child, "E2", "PF", "father", code="4100", label="Spirituskørsel", category="drunk",
                   weight=1, day=17),
        ]
    rows.append(signal("DZ", "CZ", "E9", "CZ", "self", "victim", code="5600", label="Barn i fare",
                       category="child_at_risk", weight=3, day=18))
    persons = [{"pseudonym": "PF", "link": "father"}, {"pseudonym": "PM", "link": "custodian"},
               {"pseudonym": "PM", "link": "mother"}]
    drafts = pl.DataFrame(
        {
            "draft_id": ["DS1", "DS2", "DS3", "DZ"], "week": ["2026-W47"] * 4, "child": ["C1", "C2", "C3", "CZ"],
            "municipality": ["101"] * 4, "age": [0, 4, 9, 15], "rule": ["threshold"] * 3 + ["immediate"],
            "score": [3, 3, 3, 3], "threshold": [3] * 4, "n_signals": [5, 5, 5, 1], "n_new_signals": [1, 1, 1, 1],
            "persons": [persons] * 3 + [[{"pseudonym": "CZ", "link": "self"}]],
            "previous_drafts": [["D2026-W46-k0a1b2c3d-0001"], [], [], []],
        },
        schema_overrides={"persons": PERSONS, "previous_drafts": pl.List(pl.String)},
    )
    earlier = {"D2026-W46-k0a1b2c3d-0001": {"week": "2026-W46", "decision": "approve"}}
    return build_documents(signals_frame(rows), drafts, earlier=earlier,
                           immediate_categories=["child_at_risk"])["101"]


def household_page() -> str:
    return render_html("101", household_docs(), week="2026-W47", lookback_weeks=26)


def test_html_is_danish_and_explains_itself() -> None:
    html = page()
    seen = text_of(html)
    assert '<html lang="da">' in html
    assert "<title>Underretningsudkast til Københavns Kommune — uge 47, 2026</title>" in html
    for text in (
        "Underretningsudkast til Københavns Kommune", "Uge 47, 2026 (16.11.2026–22.11.2026)",
        "Politiets ugentlige søgning (Socialsøg)", "pseudonymer", "vurderingspligten i barnets lov",
        "får kommunen barnets og de voksnes identitet fra den nøgleansvarlige",
        "Bekymring", "Hændelser", "Tidligere udkast om barnet", "11 år", "Bopælskommune Københavns Kommune",
        "Barnets far er registreret som mistænkt i 3 hændelser med vold og spirituskørsel i 3 politikredse inden for "
        "26 uger.",
        "Tærskel nået 5 point mod en tærskelværdi på 3: 2 nye point og 3 point fra hændelser, "
        "der allerede har været med i et tidligere udkast.",
        "fundet ved sandsynlighedsbaseret match, sandsynlighed 0,98",
        "Nordjyllands Politi", "Østjyllands Politi", "Københavns Politi", "Aalborg", "Aarhus",
        "Gerningskode 1100 – Vold, straffeloven § 244", "Far (P1): mistænkt", "ny", "kendt",
        "31.05.2026 kl. 22:00", "registreret 01.06.2026", "Næste skridt:",
        "Skriv ikke navne eller CPR-numre i begrundelsen",
    ):
        assert text in seen, text
    for wrong in ("Kommune København", "Alder 0 år", " og vold og "):
        assert wrong not in seen, wrong


def test_html_names_the_earlier_drafts_week_and_decision() -> None:
    seen = text_of(page(earlier={"D-old": {"week": "2026-W40", "decision": "approve"}}))
    assert "Uge 40, 2026: godkendt (udkast D-old )" in seen
    assert "Dette udkast er en opfølgning." in seen
    seen = text_of(page(earlier={"D-old": {"week": "2026-W44", "decision": None}}))
    assert "Uge 44, 2026: ikke afgjort endnu (udkast D-old )" in seen
    seen = text_of(page())
    assert "Ukendt uge: beslutningen er ikke oplyst (udkast D-old )" in seen


def test_html_immediate_headline_names_the_category() -> None:
    docs = build_documents(signals_frame(), drafts_frame(), immediate_categories=["child_at_risk"])
    seen = text_of(render_html("461", docs["461"], week="2026-W47"))
    assert "Underretningsudkast til Odense Kommune" in seen
    assert ("Straks-udkast Der er registreret en hændelse i kategorien »Barn i fare«, som altid udløser et udkast, "
            "uanset antallet af point. Barnet har i alt 3 point (tærskelværdien er 3); alle 3 point er nye.") in seen
    assert ("Barnet selv er registreret som forurettet i 1 hændelse med barn i fare i 1 politikreds inden for "
            "1 uge.") in seen
    assert "Barnet selv (P1): forurettet" in seen and "Fyns Politi" in seen
    assert "Ingen tidligere udkast om barnet." in seen
    # Without the catalogue's immediate categories the headline stays true, without a name.
    docs = build_documents(signals_frame(), drafts_frame())
    seen = text_of(render_html("461", docs["461"], week="2026-W47"))
    assert "Mindst én hændelse hører til en kategori, der altid udløser et udkast" in seen


def test_html_one_row_per_event_with_every_person_and_role() -> None:
    html = household_page()
    first = html.split('id="udkast-2"')[1].split('id="udkast-3"')[0]  # DS1: the household's first draft
    events = first.split('<table class="events">')[1].split("</table>")[0]
    assert events.count("<tr>") == 1 + 2  # header + one row per event (E1 with 4 signals, E2)
    row = text_of(events.split("<tr>")[2])
    assert "Vold og trusler" in row
    assert "Gerningskode 1100 – Vold, kode 1100" in row and "Gerningskode 1200 – Trusler, kode 1200" in row
    assert "Mor (P1): mistænkt" in row  # her second tie is in the persons table
    assert "Far (P2): mistænkt og forurettet" in row
    assert row.count("(P1)") == 1 and row.count("(P2)") == 1


def test_html_each_person_once_with_all_relations() -> None:
    first = household_page().split('id="udkast-2"')[1].split('id="udkast-3"')[0]
    persons = first.split('<table class="persons">')[1].split("</table>")[0]
    assert persons.count("<tr>") == 1 + 2
    seen = text_of(persons)
    assert "P1 Mor og forældremyndighedsindehaver · 1 hændelse: mistænkt PM" in seen
    assert "P2 Far · 2 hændelser: mistænkt og forurettet PF" in seen
    assert "Barnets mor er registreret som mistænkt i 1 hændelse med vold" in text_of(first)
    # the father was a suspect on two events and a victim on one of them: two events, not three
    assert ("Barnets far er registreret som mistænkt i 2 hændelser og som forurettet i 1 hændelse (i alt 2 "
            "hændelser) med vold") in text_of(first)


def test_html_groups_siblings_and_puts_immediate_drafts_first() -> None:
    html = household_page()
    seen = text_of(html)
    assert "4 udkast, heraf 1 straks-udkast" in seen
    # The immediate draft first, then the household under one heading, its drafts in id order.
    order = re.findall(r'data-draft-id="(D\w+)" data-number', html)
    assert order == ["DZ", "DS1", "DS2", "DS3"]
    assert html.count('<section class="household') == 1
    assert "Søskende: 3 børn med fælles hændelser" in seen
    assert "Udkastene om barn 2, barn 3 og barn 4 har 2 hændelser til fælles." in seen
    assert seen.index("Barn 1 · 15 år · straks-udkast") < seen.index("Søskende") < seen.index("Barn 2 · under 1 år")
    assert "Alder under 1 år" in seen and "0 år" not in seen
    assert "Uge 46, 2026: godkendt" in seen
    # The same person has the same label in every sibling's draft.
    assert seen.count("Far (P2): mistænkt og forurettet") == 3


def test_html_print_breaks_before_every_draft_but_the_first() -> None:
    html = household_page()
    opening = re.findall(r'<(?:article|section) class="([^"]*)"', html)
    # DZ (first: no break), the household heading (break), DS1 (follows its heading), DS2, DS3 (break).
    assert opening == ["draft immediate", "household new-page", "draft", "draft new-page", "draft new-page"]
    assert ".new-page { break-before: page; page-break-before: always; }" in html


def test_html_has_a_decision_form_per_draft() -> None:
    html = household_page()
    for number, draft_id in enumerate(["DZ", "DS1", "DS2", "DS3"], start=1):
        assert f'<fieldset class="decision" data-draft-id="{draft_id}" data-number="{number}">' in html
        assert f'name="decision-{number}" value="approve"' in html
        assert f'name="decision-{number}" value="dismiss"' in html
        assert f'name="reason-{number}"' in html and f'name="reviewer-{number}"' in html
    assert 'data-format="socialsearch-decisions" data-week="2026-W47" data-municipality="101"' in html
    assert 'download="decisions.json"' in html and "new Blob(" in html


def test_html_translates_every_link_and_names_repeated_subjects() -> None:
    rows = [
        ("DX", "CX", f"E{i}", t(11, 17, 10), t(11, 17, 9), "KBH", "101", "offence", "1100", "Vold",
         "violence", "Vold", "suspect", link, person, 2, True, "cpr", None)
        for i, (link, person) in enumerate(
            [("mother", "PM"), ("custodian", "PC"), ("household", "PH1"), ("household", "PH2")]
        )
    ]
    drafts = drafts_frame().head(1).with_columns(
        draft_id=pl.lit("DX"), child=pl.lit("CX"),
        persons=pl.lit([{"pseudonym": "PM", "link": "mother"}], dtype=PERSONS),
    )
    seen = text_of(render_html("101", build_documents(signals_frame(rows), drafts)["101"], week="2026-W47"))
    for text in ("Mor (P1)", "Forældremyndighedsindehaver (P2)", "Voksen i husstanden (P3)",
                 "Voksen i husstanden (P4)", "Barnets mor er registreret", "En voksen i barnets husstand (P3)",
                 "En voksen i barnets husstand (P4)", "Barnets forældremyndighedsindehaver er registreret"):
        assert text in seen, text


def test_html_escapes_values() -> None:
    rows = [list(SIGNALS[3])]
    rows[0][9] = '<script>alert("x")</script>'
    drafts = drafts_frame().with_columns(child=pl.when(pl.col("draft_id") == "DB").then(pl.lit("<b>CB</b>"))
                                         .otherwise(pl.col("child")))
    signals = signals_frame([tuple(rows[0])]).with_columns(child=pl.lit("<b>CB</b>"))
    html = render_html("461", build_documents(signals, drafts)["461"], week="2026-W47")
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<b>CB</b>" not in html and "&lt;b&gt;CB&lt;/b&gt;" in html


def test_html_is_self_contained_and_printable() -> None:
    html = page()
    assert not re.search(r"https?:|//[a-z]|<link|src=|@import", html, re.IGNORECASE)
    assert "url(" not in html  # CSS that could load something
    # one inline script, and the decisions schema as data (never executed); nothing loaded
    assert re.findall(r"<script[^>]*>", html) == ['<script type="application/json" id="decisions-schema">', "<script>"]
    assert "default-src 'none'" in html  # the browser itself refuses anything from outside
    assert "@media print" in html
    assert ".toolbar, fieldset.decision, noscript, .screen-only { display: none !important; }" in html


def csp_of(html: str) -> dict[str, list[str]]:
    """The page's Content-Security-Policy, directive → sources, read with an HTML parser."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Meta(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
                found.append(a.get("content") or "")

    Meta().feed(html)
    assert len(found) == 1, found
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in found[0].split(";")) if d}


def sha256_source(text: str) -> str:
    import base64
    import hashlib

    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@pytest.mark.parametrize("empty", [False, True])
def test_the_csp_allows_exactly_the_pages_own_script_and_style_by_hash(empty: bool) -> None:
    html = render_html("101", [], week="2026-W47") if empty else page()
    policy = csp_of(html)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert len(styles) == 1 and len(scripts) == (0 if empty else 1)
    assert policy["script-src"] == ([sha256_source(scripts[0])] if scripts else ["'none'"])
    assert policy["style-src"] == [sha256_source(styles[0])]
    assert policy["default-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in html and "'unsafe-eval'" not in html
    assert not re.search(r"\son[a-z]+=|\sstyle=", html)  # no handler or style attribute the policy would block


def test_the_page_carries_the_librarys_decisions_schema() -> None:
    import json

    from socialsearch.contract import DECISIONS_SCHEMA

    [text] = re.findall(r'<script type="application/json" id="decisions-schema">(.*?)</script>', page(), re.DOTALL)
    assert json.loads(text) == DECISIONS_SCHEMA
    assert 'maxlength="2000"' in page() and 'maxlength="6"' in page()


def test_html_without_lookback_uses_the_span_of_the_signals() -> None:
    assert "inden for 25 uger" in page(None)  # 1 June to 17 November: 170 days


def test_html_for_no_drafts() -> None:
    html = render_html("101", [], week="2026-W47")
    assert "Ingen udkast til Københavns Kommune i denne uge." in text_of(html)
    assert "<script>" not in html and "<fieldset" not in html


@pytest.mark.parametrize(("code", "name"), [("101", "Københavns Kommune"), ("147", "Frederiksberg Kommune"),
                                            ("400", "Bornholms Regionskommune"), ("999", "kommune 999")])
def test_municipality_names_as_danes_write_them(code: str, name: str) -> None:
    assert municipality_name_da(code) == name


def test_write_municipality_writes_both_files_atomically(tmp_path: Path) -> None:
    docs = build_documents(signals_frame(), drafts_frame())
    week_dir = tmp_path / "out" / "2026-W47"
    folder = write_municipality(week_dir, "101", docs["101"], week="2026-W47")
    assert folder == week_dir / "101"
    assert sorted(p.name for p in folder.iterdir()) == ["drafts.html", "drafts.json"]
    text = (folder / "drafts.json").read_text(encoding="utf-8")
    assert json.loads(text) == docs["101"]
    assert "§ 244" in text and text.endswith("\n")  # ensure_ascii=False
    html = (folder / "drafts.html").read_bytes()
    assert html.decode("utf-8") == render_html("101", docs["101"], week="2026-W47")
    write_municipality(week_dir, "101", docs["101"])  # week taken from the drafts
    assert (folder / "drafts.html").read_bytes() == html
    assert (folder / "drafts.json").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("code", ["101", "461"])
def test_documents_contain_only_pseudonyms(code: str) -> None:
    docs = build_documents(signals_frame().with_columns(cpr=pl.lit("0101901234")), drafts_frame())
    text = json.dumps(docs[code], ensure_ascii=False) + render_html(code, docs[code], week="2026-W47")
    assert "0101901234" not in text


def test_html_parents_in_the_same_role_on_the_same_event_share_one_sentence() -> None:
    rows = [signal("DX", "CX", "E1", "PM", "mother"), signal("DX", "CX", "E1", "PF", "father"),
            signal("DX", "CX", "E1", "PH", "household")]
    drafts = drafts_frame().head(1).with_columns(draft_id=pl.lit("DX"), child=pl.lit("CX"))
    seen = text_of(render_html("101", build_documents(signals_frame(rows), drafts)["101"], week="2026-W47",
                               lookback_weeks=26))
    assert ("Barnets mor, far og en voksen i barnets husstand er registreret som mistænkt i 1 hændelse med vold i 1 "
            "politikreds inden for 26 uger.") in seen
    assert seen.count("er registreret som") == 1


def test_html_the_summary_sentence_tells_the_suspect_from_the_victim() -> None:
    """The mother suspected, the father the victim, an adult of the household a witness of one event:
    never "mor og far er registreret i 1 hændelse med vold" as if they stood on the same side."""
    rows = [signal("DX", "CX", "E1", "PM", "mother"), signal("DX", "CX", "E1", "PF", "father", "victim"),
            signal("DX", "CX", "E1", "PH", "household", "witness")]
    drafts = drafts_frame().head(1).with_columns(draft_id=pl.lit("DX"), child=pl.lit("CX"))
    seen = text_of(render_html("101", build_documents(signals_frame(rows), drafts)["101"], week="2026-W47",
                               lookback_weeks=26))
    for sentence in ("Barnets mor er registreret som mistænkt i 1 hændelse med vold",
                     "Barnets far er registreret som forurettet i 1 hændelse med vold",
                     "En voksen i barnets husstand er registreret som vidne i 1 hændelse med vold"):
        assert sentence in seen, sentence
    assert "Barnets mor og far" not in seen and "Barnets mor, far" not in seen


def test_children_who_are_only_on_the_same_event_are_not_siblings() -> None:
    rows = [signal("DV1", "CV1", "E5", "CV1", "self", "victim"), signal("DV2", "CV2", "E5", "CV2", "self", "victim"),
            signal("DV1", "CV1", "E6", "CV1", "self", "victim")]
    drafts = pl.concat([drafts_frame().head(1).with_columns(draft_id=pl.lit(d), child=pl.lit(c))
                        for d, c in (("DV1", "CV1"), ("DV2", "CV2"))])
    docs = build_documents(signals_frame(rows), drafts)["101"]
    assert [d["siblings"] for d in docs] == [[], []]
    html = render_html("101", docs, week="2026-W47")
    assert "Søskende" not in text_of(html)
    # A page from documents without the field groups the same way.
    for d in docs:
        del d["siblings"]
    assert "Søskende" not in text_of(render_html("101", docs, week="2026-W47"))
    assert "Søskende: 3 børn" in text_of(render_html("101", [{k: v for k, v in d.items() if k != "siblings"}
                                                            for d in household_docs()], week="2026-W47"))
