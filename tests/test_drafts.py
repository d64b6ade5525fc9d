"""Draft documents and the caseworker's HTML page, from a hand-made SearchResult."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from socialsearch.drafts import build_documents, render_html, write_municipality

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
        "previous_drafts": ["D-old"],
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


def page(lookback: int | None = 26) -> str:
    docs = build_documents(signals_frame(), drafts_frame())
    return render_html("101", docs["101"], week="2026-W47", lookback_weeks=lookback)


def test_html_is_danish_and_explains_itself() -> None:
    html = page()
    assert '<html lang="da">' in html
    assert "<title>Underretningsudkast — København — uge 47, 2026</title>" in html
    for text in (
        "politiets ugentlige søgning", "pseudonym", "socialsearch review", "--decision approve",
        "--decision dismiss", "Bekymring", "Tidslinje", "Tidligere udkast", "<code>D-old</code>",
        "11 år", "Bopælskommune</dt><dd>København (101)",
        "Barnets far er registreret i 3 hændelser med vold og spirituskørsel i 3 politikredse inden for 26 uger.",
        "Tærskel nået: 5 point (tærskel 3)",
        "personen er fundet ved sandsynlighedsbaseret match, sandsynlighed 0,98",
        "Nordjyllands Politi", "Østjyllands Politi", "Københavns Politi", "Aalborg", "Aarhus",
        "Gerningskode 1100 – Vold, straffeloven § 244", "mistænkt", "far (P1)",
        '<span class="new">ny</span>', "kendt", "31.05.2026 kl. 22:00", "registreret 01.06.2026",
    ):
        assert text in html, text


def test_html_immediate_rule_and_self_link() -> None:
    docs = build_documents(signals_frame(), drafts_frame())
    html = render_html("461", docs["461"], week="2026-W47")
    assert "Underretningsudkast — Odense — uge 47, 2026" in html
    assert "Straks-kategori" in html
    assert "Barnet selv er registreret i 1 hændelse med barn i fare i 1 politikreds inden for 1 uge." in html
    assert "barnet selv (P1)" in html and "forurettet" in html and "Fyns Politi" in html
    assert "Ingen tidligere udkast om barnet." in html


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
    html = render_html("101", build_documents(signals_frame(rows), drafts)["101"], week="2026-W47")
    for text in ("mor (P1)", "forældremyndighedsindehaver (P2)", "voksen i husstanden (P3)",
                 "voksen i husstanden (P4)", "Barnets mor er registreret", "En voksen i barnets husstand (P3)",
                 "En voksen i barnets husstand (P4)", "Barnets forældremyndighedsindehaver er registreret"):
        assert text in html, text


def test_html_escapes_values() -> None:
    rows = [list(SIGNALS[3])]
    rows[0][9] = '<script>alert("x")</script>'
    drafts = drafts_frame().with_columns(child=pl.when(pl.col("draft_id") == "DB").then(pl.lit("<b>CB</b>"))
                                         .otherwise(pl.col("child")))
    signals = signals_frame([tuple(rows[0])]).with_columns(child=pl.lit("<b>CB</b>"))
    html = render_html("461", build_documents(signals, drafts)["461"], week="2026-W47")
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<b>CB</b>" not in html and "&lt;b&gt;CB&lt;/b&gt;" in html


def test_html_is_self_contained_and_printable() -> None:
    html = page()
    assert not re.search(r"https?:|//[a-z]|<link|<script|src=|@import|url\(", html, re.IGNORECASE)
    assert "@media print" in html and "page-break-before: always" in html


def test_html_without_lookback_uses_the_span_of_the_signals() -> None:
    assert "inden for 25 uger" in page(None)  # 1 June to 17 November: 170 days


def test_html_for_no_drafts() -> None:
    html = render_html("101", [], week="2026-W47")
    assert "Ingen udkast til København i denne uge." in html


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
