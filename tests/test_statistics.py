"""Council statistics: every figure of a hand-made ledger, small-cell suppression, files, CLI."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from datetime import timedelta
from fractions import Fraction
from html import unescape
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.cli import cli
from socialsearch.crypto import municipal
from socialsearch.crypto.keys import KeyStore, keys_export
from socialsearch.errors import AuditError, KeyStoreError, LedgerError, UsageError, VaultError
from socialsearch.ledger import Ledger
from socialsearch.statistics import SECONDARY, SUPPRESSED, Relation, StatsReport, stats, suppress
from socialsearch.weeks import IsoWeek

# --- the hand-made ledger ----------------------------------------------------------------------
#
# Children A* live in København (101, Københavns Politi KBH), age 3; B* in Aarhus (751, Østjyllands
# Politi OJY), age 13; C1 in Odense (461, Fyns Politi FYN), age 16; D1 in København, age 5.
# Every draft has two signals: an old one (category "violence", 20 days before the end of the
# draft week, in the child's own district) and the newest one (category "threats" for A/C/D,
# "drugs" for B), DAYS before the end of the draft week, in the district given.
#
# (week, child, rule, decisions in the order recorded, previous-draft weeks, DAYS, district)
LEDGER = [
    ("2026-W39", "A3", "threshold", [], [], 2, "KBH"),
    ("2026-W39", "C1", "threshold", [], [], 2, "FYN"),
    ("2026-W39", "B6", "threshold", [], [], 2, "OJY"),
    ("2026-W40", "A1", "threshold", ["approve"], [], 1, "KBH"),
    ("2026-W40", "A2", "threshold", ["approve"], [], 2, "MVS"),
    ("2026-W40", "A3", "threshold", ["approve"], ["2026-W39"], 3, "KBH"),
    ("2026-W40", "A4", "threshold", ["dismiss", "approve"], [], 4, "KBH"),
    ("2026-W40", "A5", "threshold", ["approve", "dismiss"], [], 5, "NSJ"),
    ("2026-W40", "A6", "immediate", ["dismiss"], [], 6, "KBH"),
    ("2026-W41", "A1", "threshold", [], ["2026-W40"], 0.5, "NSJ"),
    ("2026-W41", "B1", "threshold", ["approve"], [], 1, "SOJ"),
    ("2026-W41", "B2", "threshold", ["approve"], [], 1, "MVJ"),
    ("2026-W41", "B3", "threshold", ["approve"], [], 2, "NJY"),
    ("2026-W41", "B4", "threshold", ["approve"], [], 2, "OJY"),
    ("2026-W41", "B5", "threshold", ["dismiss"], [], 3, "OJY"),
    ("2026-W41", "C1", "immediate", ["dismiss"], ["2026-W39"], 7, "FYN"),
    ("2026-W42", "A2", "threshold", [], ["2026-W40"], 1.5, "KBH"),
    ("2026-W42", "B1", "threshold", [], ["2026-W41"], 2, "OJY"),
    ("2026-W42", "B6", "threshold", ["dismiss"], ["2026-W39"], 3, "OJY"),
    ("2026-W42", "B7", "threshold", [], [], 4, "KVE"),
    ("2026-W42", "B8", "threshold", [], [], 6, "OJY"),
    ("2026-W43", "D1", "threshold", ["approve"], [], 1, "KBH"),
]
HOME = {"A": ("101", "KBH", 3, "threats"), "B": ("751", "OJY", 13, "drugs"),
        "C": ("461", "FYN", 16, "threats"), "D": ("101", "KBH", 5, "threats")}


def child_id(child: str) -> str:
    """A pseudonym-looking value that cannot occur in a report by chance."""
    return f"kq7{child.lower()}z3pseud"


def draft_id(week: str, child: str) -> str:
    return f"D{week}-{child}-f00dcafe"


def _frames(week: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    drafts, signals = [], []
    end = IsoWeek.parse(week).end
    for w, child, rule, _, previous, days, district in LEDGER:
        if w != week:
            continue
        municipality, home, age, category = HOME[child[0]]
        did = draft_id(w, child)
        drafts.append({
            "draft_id": did, "week": w, "child": child_id(child), "municipality": municipality, "age": age,
            "rule": rule, "score": 3, "threshold": 3, "previous_drafts": [draft_id(p, child) for p in previous],
        })
        for ref, at, dist, cat, new in ((f"E-{did}-old", end - timedelta(days=20), home, "violence", False),
                                        (f"E-{did}-new", end - timedelta(days=days), district, category, True)):
            signals.append({
                "draft_id": did, "child": child_id(child), "event_ref": ref, "registered_at": at,
                "district": dist, "kind": "offence", "code": "1100", "category": cat, "role": "suspect",
                "link": "father", "person": "P-father", "weight": 2, "new": new,
            })
    return (
        pl.DataFrame(drafts, schema={"draft_id": pl.String, "week": pl.String, "child": pl.String,
                                     "municipality": pl.String, "age": pl.Int64, "rule": pl.String,
                                     "score": pl.Int64, "threshold": pl.Int64,
                                     "previous_drafts": pl.List(pl.String)}),
        pl.DataFrame(signals, schema_overrides={"registered_at": pl.Datetime("us", "Europe/Copenhagen")}),
    )


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("state")
    with Ledger.open(folder) as ledger:
        for week in sorted({row[0] for row in LEDGER}):
            ledger.runs.record(week, *_frames(week))
        for week, child, _, decisions, *_ in LEDGER:
            for decision in decisions:
                ledger.reviews.record(draft_id(week, child), decision, "begrundelse", "ABC")
    return folder


@pytest.fixture(scope="module")
def report(state: Path, tmp_path_factory: pytest.TempPathFactory) -> StatsReport:
    out = tmp_path_factory.mktemp("q4")
    return stats(state, from_week="2026-W40", to_week="2026-W42", out_dir=out,
                 by=("municipality", "district", "category", "age_band", "rule"))


def cells(report: StatsReport, name: str) -> dict[str, list[int | str]]:
    """A table as {row: [published cells in column order]}."""
    table = report.table(name)
    return {row: [table.shown(row, col) for col, _ in table.columns] for row, _ in table.rows}


# --- the figures, worked out by hand -----------------------------------------------------------


def test_main_figures(report: StatsReport) -> None:
    # In W40..W42: 6 + 7 + 5 = 18 drafts (W39's three and W43's one are outside the period) of
    # 15 children: A1..A6, B1..B8, C1.
    # Follow-ups (previous_drafts not empty): A3@40, A1@41, C1@41, A2@42, B1@42, B6@42 = 6;
    #   6 / 18 = 33.3 %.
    # Latest decision: approved A1..A4@40 (A4: dismiss then approve), B1..B4@41 = 8 -> 44.4 %;
    #   dismissed A5@40 (approve then dismiss), A6@40, B5@41, C1@41, B6@42 = 5 -> 27.8 %;
    #   undecided A1@41, A2@42, B1@42, B7@42, B8@42 = 5 -> 27.8 %.
    # Cross-district (a signal in another district than the child's): A2@40 (MVS), A5@40 (NSJ),
    #   A1@41 (NSJ), B1@41 (SOJ), B2@41 (MVJ), B3@41 (NJY), B7@42 (KVE) = 7 -> 38.9 %.
    # Days from the newest signal to the end of the draft week, sorted:
    #   0.5 1 1 1 1.5 2 2 2 2 | 3 3 3 4 4 5 6 6 7 -> median (2 + 3) / 2 = 2.5.
    assert dict(report.summary) == {
        "drafts": 18,
        "children": 15,
        "follow_up_pct": 33.3,
        "approved_pct": 44.4,
        "dismissed_pct": 27.8,
        "undecided_pct": 27.8,
        "cross_district_pct": 38.9,
        "median_days_to_week_end": 2.5,
    }


def test_one_column_tables(report: StatsReport) -> None:
    # One draft is one child in one week: W40 6, W41 7, W42 5 children, none below 5.
    assert cells(report, "week") == {"2026-W40": [6], "2026-W41": [7], "2026-W42": [5], "*": [18]}
    # First drafts: 18 - 6 = 12 (12 children); follow-ups 6 (A3, A1, C1, A2, B1, B6: 6 children).
    assert cells(report, "follow_up") == {"first": [12], "follow_up": [6], "*": [18]}
    assert cells(report, "decision") == {"approve": [8], "dismiss": [5], "undecided": [5], "*": [18]}
    # Same district: 18 - 7 = 11 (11 children); no draft lacks a district: 0 stays published.
    assert cells(report, "cross_district") == {"same": [11], "other": [7], "unknown": [0], "*": [18]}


def test_municipality_table_primary_and_secondary_suppression(report: StatsReport) -> None:
    # Columns: approved, dismissed, undecided, total.
    # 101: 4 (A1..A4) / 2 (A5, A6) / 2 (A1@41, A2@42) / 8 drafts of 6 children
    # 751: 4 (B1..B4) / 2 (B5, B6) / 3 (B1@42, B7, B8) / 9 drafts of 8 children
    # 461: 0 / 1 (C1) / 0 / 1
    # Primary: every cell of 1..4 children. The total column then holds one hidden cell (461's 1,
    # which would be 18 - 8 - 9): the smallest published part, 101's 8, is hidden too. Rows and
    # columns then hold 0 or >= 2 hidden cells, and the audit finds nothing determined.
    # 101's 8 is hidden for its partner, not for being small: it shows "(skjult)", never "<5".
    assert cells(report, "municipality") == {
        "101": [SUPPRESSED, SUPPRESSED, SUPPRESSED, SECONDARY],
        "461": [0, SUPPRESSED, 0, SUPPRESSED],
        "751": [SUPPRESSED, SUPPRESSED, SUPPRESSED, 9],
        "*": [8, 5, 5, 18],
    }
    assert dict(report.table("municipality").rows)["101"] == "København (101)"


def test_district_table_is_hidden_where_its_municipalities_are(report: StatsReport) -> None:
    # Each district here has one municipality, so KBH = 101, OJY = 751, FYN = 461 cell by cell:
    # KBH's total 8 must be hidden as 101's is, or 101's would be published through it.
    assert cells(report, "district") == {
        "FYN": [0, SUPPRESSED, 0, SUPPRESSED],
        "KBH": [SUPPRESSED, SUPPRESSED, SUPPRESSED, SECONDARY],
        "OJY": [SUPPRESSED, SUPPRESSED, SUPPRESSED, 9],
        "*": [8, 5, 5, 18],
    }


def test_age_bands(report: StatsReport) -> None:
    # A* are 3 (0-5), B* 13 (12-14), C1 16 (15-17): the same cells as the municipality table.
    assert cells(report, "age_band") == {
        "00-05": [SUPPRESSED, SUPPRESSED, SUPPRESSED, SECONDARY],
        "12-14": [SUPPRESSED, SUPPRESSED, SUPPRESSED, 9],
        "15-17": [0, SUPPRESSED, 0, SUPPRESSED],
        "*": [8, 5, 5, 18],
    }


def test_category_table_counts_draft_category_pairs(report: StatsReport) -> None:
    # Every draft has a violence signal: 8 / 5 / 5 / 18. The newest signal is drugs for B*
    # (as 751 above: 4 / 2 / 3 / 9) and threats for A* and C1 (4 / 2+1 / 2 / 9, 7 children).
    # The 2 x 3 block of hidden cells has published margins on all sides: nothing more to hide.
    assert cells(report, "category") == {
        "drugs": [SUPPRESSED, SUPPRESSED, SUPPRESSED, 9],
        "threats": [SUPPRESSED, SUPPRESSED, SUPPRESSED, 9],
        "violence": [8, 5, 5, 18],
        "*": [16, 10, 10, 36],
    }
    assert dict(report.table("category").rows)["violence"] == "Vold"


def test_rule_table_hides_a_part_before_a_shared_total(report: StatsReport) -> None:
    # immediate: A6@40 and C1@41, both dismissed: 0 / 2 / 0 / 2.
    # threshold: 8 / 3 (A5, B5, B6) / 5 / 16 (14 children).
    # Primary: immediate's 2 and 2, threshold's 3. The total column then has one hidden cell:
    # hide its smallest part, threshold's 16 (not the grand total 18, which every table shares).
    assert cells(report, "rule") == {
        "immediate": [0, SUPPRESSED, 0, SUPPRESSED],
        "threshold": [8, SUPPRESSED, 5, SECONDARY],
        "*": [8, 5, 5, 18],
    }


def test_a_small_week_and_its_partner_are_hidden(state: Path, tmp_path: Path) -> None:
    # W39..W42: 3 / 6 / 7 / 5 drafts, 21 in all. W39's 3 is primary; the week column would give
    # it away (21 - 6 - 7 - 5), so the smallest other week, W42's 5, is hidden too.
    # Children: W39's A3, C1, B6 are among the 15 already counted.
    result = stats(state, from_week=IsoWeek.parse("2026-W39"), to_week="2026-W42", out_dir=tmp_path)
    assert cells(result, "week") == {"2026-W39": [SUPPRESSED], "2026-W40": [6], "2026-W41": [7],
                                     "2026-W42": [SECONDARY], "*": [21]}
    assert result.summary["drafts"] == 21 and result.summary["children"] == 15


def test_empty_and_tiny_periods(state: Path, tmp_path: Path) -> None:
    empty = stats(state, from_week="2026-W01", to_week="2026-W02", out_dir=tmp_path / "e")
    assert empty.summary == {"drafts": 0, "children": 0, "follow_up_pct": None, "approved_pct": None,
                             "dismissed_pct": None, "undecided_pct": None, "cross_district_pct": None,
                             "median_days_to_week_end": None}
    # W43 holds one draft (D1, approved): every non-zero number is "<5", no share, no median.
    tiny = stats(state, from_week="2026-W43", to_week="2026-W43", out_dir=tmp_path / "t")
    assert tiny.summary["drafts"] == SUPPRESSED and tiny.summary["children"] == SUPPRESSED
    assert tiny.summary["approved_pct"] is None and tiny.summary["median_days_to_week_end"] is None
    assert cells(tiny, "municipality") == {"101": [SUPPRESSED, 0, 0, SUPPRESSED],
                                           "*": [SUPPRESSED, 0, 0, SUPPRESSED]}


# --- files --------------------------------------------------------------------------------------


def test_three_files_are_written(report: StatsReport) -> None:
    assert sorted(p.name for p in report.paths.values()) == ["stats.csv", "stats.html", "stats.json"]
    data = json.loads(report.paths["json"].read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["from_week"] == "2026-W40" and data["to_week"] == "2026-W42"
    assert data["summary"]["drafts"] == 18

    raw = report.paths["csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads UTF-8 (æ, ø, å)
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8")), delimiter=";"))
    assert rows[0] == ["tabel", "række", "rækkenavn", "kolonne", "kolonnenavn", "værdi"]
    assert ["summary", "follow_up_pct", rows[3][2], "", "", "33,3"] == rows[3]  # Danish decimal comma
    assert ["municipality", "101", "København (101)", "*", "i alt", SECONDARY] in rows
    assert ["municipality", "461", "Odense (461)", "*", "i alt", SUPPRESSED] in rows
    assert ["municipality", "751", "Aarhus (751)", "*", "i alt", "9"] in rows
    assert all(len(r) == 6 for r in rows)


def test_html_is_self_contained_printable_and_danish(report: StatsReport) -> None:
    html = report.paths["html"].read_text(encoding="utf-8")
    assert '<html lang="da">' in html and "@media print" in html
    assert html.count("<svg") >= 3  # weeks, decisions, and one chart per --by table
    assert "<script" not in html.lower() and "<link" not in html.lower() and "<img" not in html.lower()
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "Udkast pr. kommune" in html and "godkendt" in html and "København (101)" in html
    import xml.etree.ElementTree as ET

    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        ET.fromstring(svg)  # every chart is well-formed SVG


def test_reports_hold_only_aggregates(report: StatsReport) -> None:
    identifiers = [child_id(row[1]) for row in LEDGER] + [draft_id(row[0], row[1]) for row in LEDGER]
    identifiers += ["P-father", "E-D", "begrundelse"]
    for path in report.paths.values():
        text = path.read_text(encoding="utf-8-sig")
        leaked = [i for i in identifiers if i in text]
        assert not leaked, f"{path.name} holds {leaked}"


def test_every_published_count_is_zero_at_least_five_or_hidden(report: StatsReport) -> None:
    html = report.paths["html"].read_text(encoding="utf-8")
    published = [unescape(v) for v in re.findall(r'<td class="n[^"]*">([^<]*)</td>', html)]
    assert len(published) > 50
    for value in published:
        assert value in (SUPPRESSED, SECONDARY) or value == "0" or int(value) >= 5, value
    data = json.loads(report.paths["json"].read_text(encoding="utf-8"))
    for table in data["tables"]:
        for row in table["rows"]:
            for value in row["cells"].values():
                assert value in (SUPPRESSED, SECONDARY) or value == 0 or value >= 5


# --- reading the ledger -------------------------------------------------------------------------


def test_ledger_is_only_read(state: Path, tmp_path: Path) -> None:
    ledger = state / "ledger.sqlite"
    before = (ledger.read_bytes(), ledger.stat().st_mtime_ns, sorted(p.name for p in state.iterdir()))
    stats(state, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path)
    assert before == (ledger.read_bytes(), ledger.stat().st_mtime_ns, sorted(p.name for p in state.iterdir()))


def test_missing_ledger_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger at"):
        stats(tmp_path / "nowhere", from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out")
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "out").exists()


def test_bad_periods_and_dimensions_are_refused(state: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="first week 2026-W42 is after the last week 2026-W40"):
        stats(state, from_week="2026-W42", to_week="2026-W40", out_dir=tmp_path)
    with pytest.raises(UsageError, match="last week: week"):
        stats(state, from_week="2026-W42", to_week="2026-W99", out_dir=tmp_path)
    with pytest.raises(UsageError, match=r"dimension\(s\) kommune"):
        stats(state, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path, by=["kommune"])
    assert not any(tmp_path.iterdir())


def test_ledger_without_signal_districts_is_refused_as_audit_verify_refuses_it(state: Path, tmp_path: Path) -> None:
    # A ledger whose draft_signals lost the district column: the chain binds every signal row with
    # its district, so `audit verify` cannot vouch for it, and stats publishes nothing from it.
    from socialsearch import audit_verify

    old = tmp_path / "old"
    old.mkdir()
    conn = sqlite3.connect(old / "ledger.sqlite")
    sqlite3.connect(state / "ledger.sqlite").backup(conn)
    (old / "audit.head").write_bytes((state / "audit.head").read_bytes())
    conn.execute("ALTER TABLE draft_signals DROP COLUMN district")
    conn.commit()
    conn.close()
    with pytest.raises(AuditError):
        audit_verify(old)
    with pytest.raises((AuditError, LedgerError)):
        stats(old, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_decisions_come_from_the_audit_chain_not_the_reviews_table(state: Path, tmp_path: Path) -> None:
    """A dismissal turned into an approval with sqlite3 (triggers dropped) is refused, not counted."""
    forged = tmp_path / "forged"
    forged.mkdir()
    conn = sqlite3.connect(forged / "ledger.sqlite")
    sqlite3.connect(state / "ledger.sqlite").backup(conn)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("UPDATE reviews SET decision = 'approve' WHERE decision = 'dismiss'")
    conn.commit()
    conn.close()
    with pytest.raises(AuditError):
        stats(forged, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def forged_copy(state: Path, folder: Path, sql: str | None, *, anchor: bool = True) -> Path:
    """A copy of the ledger (and its anchor) changed behind the chain with ``sql``, triggers dropped."""
    folder.mkdir()
    conn = sqlite3.connect(folder / "ledger.sqlite")
    sqlite3.connect(state / "ledger.sqlite").backup(conn)
    if anchor:
        (folder / "audit.head").write_bytes((state / "audit.head").read_bytes())
    if sql is not None:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute(sql)
    conn.commit()
    conn.close()
    return folder


@pytest.mark.parametrize(("sql", "anchor"), [
    ("UPDATE drafts SET municipality = '461' WHERE municipality = '101'", True),  # a bound row changed
    ("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)", True),  # the last entry removed
    (None, False),  # the anchor deleted
])
def test_stats_refuses_a_ledger_that_audit_verify_rejects(state: Path, tmp_path: Path, sql: str | None,
                                                           anchor: bool) -> None:
    from socialsearch import audit_verify

    forged = forged_copy(state, tmp_path / "forged", sql, anchor=anchor)
    with pytest.raises(AuditError) as verify_error:
        audit_verify(forged)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["stats", "--state", str(forged), "--from", "2026-W40", "--to", "2026-W42",
                                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert str(verify_error.value) in result.output.replace("\n", " ") or "audit log" in result.output
    assert "audit verify" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_stats_refuses_a_ledger_with_an_empty_chain(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "state"):
        pass
    with pytest.raises(AuditError, match="empty"):
        stats(tmp_path / "state", from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


EVIL = ['=HYPERLINK("http://x.invalid","klik")', "@SUM(1+1)", "+1", "-3", "\tindrykket", "\rlinje"]


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory: pytest.TempPathFactory) -> StatsReport:
    """W40 of the hand-made ledger with each newest signal's category replaced by text that a
    spreadsheet would read as a formula (the ledger holds whatever the catalogue said)."""
    folder = tmp_path_factory.mktemp("evil")
    drafts, signals = _frames("2026-W40")
    signals = signals.with_columns(
        category=pl.when(pl.col("new")).then(pl.Series([EVIL[(i // 2) % len(EVIL)] for i in range(signals.height)]))
        .otherwise(pl.col("category")))
    with Ledger.open(folder / "state") as ledger:
        ledger.runs.record("2026-W40", drafts, signals)
    return stats(folder / "state", from_week="2026-W40", to_week="2026-W40", out_dir=folder / "out",
                 by=("category",))


def test_csv_cells_that_start_like_a_formula_are_neutralised(evil_report: StatsReport) -> None:
    raw = evil_report.paths["csv"].read_bytes()
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline=""), delimiter=";"))
    texts = [cell for row in rows for cell in row[:5]]
    for evil in EVIL:
        assert "'" + evil in texts, evil  # shown as the text it is
    assert not [c for c in texts if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    values = [row[5] for row in rows[1:]]
    assert all(v in (SUPPRESSED, SECONDARY, "–") or re.fullmatch(r"\d+(,\d)?", v) for v in values), values


def test_a_negative_number_stays_a_number_in_the_csv() -> None:
    from socialsearch.statistics import _csv_value

    assert _csv_value(-1.5) == "-1,5" and _csv_value(-3) == -3 and _csv_value(12) == 12
    assert _csv_value("-3") == "'-3" and _csv_value(None) == "–" and _csv_value(SECONDARY) == SECONDARY


def test_stats_html_has_a_csp_with_the_hash_of_its_style_and_no_script(report: StatsReport) -> None:
    from test_drafts import csp_of, sha256_source

    html = report.paths["html"].read_text(encoding="utf-8")
    policy = csp_of(html)
    [style] = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert policy["style-src"] == [sha256_source(style)] and policy["script-src"] == ["'none'"]
    assert policy["default-src"] == ["'none'"] and "'unsafe-inline'" not in html
    assert not re.search(r"\sstyle=|\son[a-z]+=", html)  # nothing the policy would block


def test_the_legend_explains_both_markers_and_draws_the_hatched_swatch(report: StatsReport) -> None:
    html = report.paths["html"].read_text(encoding="utf-8")
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    assert "<5 feltet bygger på 1–4 forskellige børn" in " ".join(text.split())
    assert "(skjult) feltet er skjult, for at et lille tal ikke kan regnes ud" in " ".join(text.split())
    swatches = re.findall(r'<g class="hatched-swatch">(.*?)</g>', html, re.DOTALL)
    assert swatches and all(s.count("<line") >= 3 and 'fill="#ddd"' in s for s in swatches)
    defined = set(re.findall(r'<pattern id="([^"]+)"', html))
    assert set(re.findall(r"url\(#([^)]+)\)", html)) <= defined  # every hatch refers to a drawn pattern


# --- the command --------------------------------------------------------------------------------


def test_cli_writes_the_files_and_prints_the_figures(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "q4"
    result = CliRunner().invoke(cli, ["stats", "--state", str(state), "--from", "2026-W40", "--to", "2026-W42",
                                      "--out", str(out), "--by", "district", "--by", "category"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"stats.json", "stats.csv", "stats.html"}
    assert "drafts" in result.output and "18" in result.output and "38.9" in result.output
    assert str(out / "stats.html") in result.output.replace("\n", "")
    assert json.loads((out / "stats.json").read_text(encoding="utf-8"))["by"] == ["district", "category"]


def test_cli_refuses_a_missing_ledger_and_a_reversed_period(state: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["stats", "--state", str(tmp_path / "none"), "--from", "2026-W40",
                                  "--to", "2026-W42", "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "no ledger at" in missing.output
    assert not (tmp_path / "none").exists()
    reversed_ = runner.invoke(cli, ["stats", "--state", str(state), "--from", "2026-W42", "--to", "2026-W40",
                                    "--out", str(tmp_path / "o")])
    assert reversed_.exit_code == 2 and "first week 2026-W42 is after the last week 2026-W40" in reversed_.output
    bad_by = runner.invoke(cli, ["stats", "--state", str(state), "--from", "2026-W40", "--to", "2026-W42",
                                 "--out", str(tmp_path / "o"), "--by", "kommune"])
    assert bad_by.exit_code == 2
    assert not (tmp_path / "o").exists()


# --- suppression, as a property -----------------------------------------------------------------


def two_way(table: list[list[int]]) -> tuple[dict[tuple[int, int], int], list[Relation[tuple[int, int]]]]:
    """A table with a total row and column (index -1) and its relations."""
    rows, cols = len(table), len(table[0])
    values = {(r, c): table[r][c] for r in range(rows) for c in range(cols)}
    for r in range(rows):
        values[(r, -1)] = sum(table[r])
    for c in range(cols):
        values[(-1, c)] = sum(table[r][c] for r in range(rows))
    values[(-1, -1)] = sum(values[(r, -1)] for r in range(rows))
    relations = [Relation((r, -1), tuple((r, c) for c in range(cols))) for r in [*range(rows), -1]]
    relations += [Relation((-1, c), tuple((r, c) for r in range(rows))) for c in [*range(cols), -1]]
    return values, relations


def subtract(published: dict, relations: list[Relation]) -> dict:
    """What an attacker derives by subtraction: any relation with one unknown gives it away;
    a derived value counts as published for the next round. Returns the derived cells."""
    known = {k: v for k, v in published.items() if v is not None}
    derived = {}
    changed = True
    while changed:
        changed = False
        for rel in relations:
            unknown = [m for m in rel.members if m not in known]
            if len(unknown) != 1:
                continue
            [m] = unknown
            parts = sum(known[p] for p in rel.parts if p != m)
            derived[m] = known[rel.total] - parts if m != rel.total else parts
            known[m] = derived[m]
            changed = True
    return derived


def solvable(published: dict, relations: list[Relation]) -> dict:
    """Gaussian elimination over the rationals: every hidden cell the relations pin down."""
    unknown = sorted(k for k, v in published.items() if v is None)
    index = {k: i for i, k in enumerate(unknown)}
    rows = []
    for rel in relations:
        row = [Fraction(0)] * (len(unknown) + 1)
        for m, sign in ((rel.total, -1), *((p, 1) for p in rel.parts)):
            if m in index:
                row[index[m]] += sign
            else:
                row[-1] -= sign * published[m]
        rows.append(row)
    pivots, r = [], 0
    for c in range(len(unknown)):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        rows[r] = [x / rows[r][c] for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                rows[i] = [a - rows[i][c] * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    found = {}
    for i, c in enumerate(pivots):
        if all(rows[i][j] == 0 for j in range(len(unknown)) if j != c):
            found[unknown[c]] = rows[i][-1]
    return found


small_counts = st.one_of(st.integers(0, 4), st.integers(0, 12), st.integers(0, 60))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6).flatmap(lambda cols: st.lists(st.lists(small_counts, min_size=cols, max_size=cols),
                                                       min_size=1, max_size=7)))
def test_no_hidden_cell_can_be_derived_from_the_published_table(table: list[list[int]]) -> None:
    values, relations = two_way(table)
    hidden = suppress(values, values, relations)
    published = {k: (None if k in hidden else v) for k, v in values.items()}
    # No published cell of 1 to 4 (here every cell counts children).
    assert not [v for v in published.values() if v is not None and 1 <= v <= 4]
    # Every row and column with its total holds 0 or >= 2 hidden cells ...
    for rel in relations:
        assert sum(m in hidden for m in rel.members) != 1
    # ... and an attacker who subtracts, round after round, learns no hidden non-zero cell;
    # nor does one who solves all the relations at once.
    assert not {k: v for k, v in subtract(published, relations).items() if v != 0}
    assert not {k: v for k, v in solvable(published, relations).items() if v != 0}
    # The derivation is real: hide one cell alone, and subtraction recovers it.
    nonzero = sorted(k for k in hidden if values[k])
    if nonzero:
        assert subtract({**values, nonzero[0]: None}, relations) == {nonzero[0]: values[nonzero[0]]}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.lists(small_counts, min_size=3, max_size=3), min_size=1, max_size=4),
                min_size=1, max_size=4))
def test_linked_tables_leak_nothing(districts: list[list[list[int]]]) -> None:
    # Municipalities (rows) x decisions, grouped in districts; the district table is published
    # too, and each district cell is the sum of its municipalities' cells.
    flat = [row for district in districts for row in district]
    values, relations = two_way(flat)
    values = {("m", *k): v for k, v in values.items()}
    relations = [Relation(("m", *rel.total), tuple(("m", *p) for p in rel.parts)) for rel in relations]
    sums = [[sum(col) for col in zip(*district, strict=True)] for district in districts]
    d_values, d_relations = two_way(sums)
    values |= {("d", *k): v for k, v in d_values.items() if k[0] != -1}
    relations += [Relation(("d" if rel.total[0] != -1 else "m", *rel.total),
                           tuple(("d" if p[0] != -1 else "m", *p) for p in rel.parts)) for rel in d_relations]
    first = 0
    for d, district in enumerate(districts):
        for c in [0, 1, 2, -1]:
            relations.append(Relation(("d", d, c), tuple(("m", first + i, c) for i in range(len(district)))))
        first += len(district)
    hidden = suppress(values, values, relations)
    published = {k: (None if k in hidden else v) for k, v in values.items()}
    assert not [v for v in published.values() if v is not None and 1 <= v <= 4]
    assert not {k: v for k, v in subtract(published, relations).items() if v != 0}
    assert not {k: v for k, v in solvable(published, relations).items() if v != 0}


def test_suppress_example_from_the_docs() -> None:
    values = {"a": 3, "b": 7, "c": 9, "t": 19}
    assert suppress(values, values, [Relation("t", ("a", "b", "c"))]) == {"a", "b"}
    # Children, not drafts, decide: 8 drafts of 2 children are hidden (and b with them).
    assert suppress({"a": 8, "b": 7, "t": 15}, {"a": 2, "b": 7, "t": 9},
                    [Relation("t", ("a", "b"))]) == {"a", "b"}


def test_the_audit_closes_what_the_row_and_column_rule_leaves_open() -> None:
    # Found by the property test with the audit switched off. After the row/column rule the
    # hidden cells below hold >= 2 per row and column, yet cell (0, 2) = 1 follows from them:
    # rows 0 and 1 give t0 + t1 = 29 - 15 = 14, column 1 gives x01 + x11 = 8, and
    # t0 + t1 = x01 + x02 + x11 + 5 = 13 + x02, so x02 = 1. The audit hides (1, 2) as well.
    values, relations = two_way([[0, 3, 1], [0, 5, 5], [1, 9, 5]])
    by_rule_alone = {(-1, 0), (-1, 2), (0, -1), (0, 1), (0, 2), (1, -1), (1, 1), (2, 0), (2, 2)}
    for rel in relations:
        assert sum(m in by_rule_alone for m in rel.members) != 1
    leaky = {k: (None if k in by_rule_alone else v) for k, v in values.items()}
    assert solvable(leaky, relations) == {(0, 2): 1}
    hidden = suppress(values, values, relations)
    assert hidden == by_rule_alone | {(1, 2)}
    assert solvable({k: (None if k in hidden else v) for k, v in values.items()}, relations) == {}


def test_cross_district_by_decision(state: Path, tmp_path: Path) -> None:
    # same:  approved A1@40 A3 A4 B4 = 4, dismissed A6 B5 C1 B6 = 4, undecided A2@42 B1@42 B8 = 3; 11
    # other: approved A2@40 B1@41 B2 B3 = 4, dismissed A5 = 1, undecided A1@41 B7 = 2; 7
    # Every decision cell is 1..4 children; the 2 x 3 block has published margins on all sides.
    result = stats(state, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path,
                   by=("cross_district", "decision"))
    assert [t.name for t in result.tables] == ["week", "follow_up", "decision", "cross_district"]
    assert cells(result, "cross_district") == {
        "same": [SUPPRESSED, SUPPRESSED, SUPPRESSED, 11],
        "other": [SUPPRESSED, SUPPRESSED, SUPPRESSED, 7],
        "unknown": [0, 0, 0, 0],
        "*": [8, 5, 5, 18],
    }
    assert result.summary["cross_district_pct"] == 38.9


# --- statistics sealed for the key custodian (what a run on a hub extract records) ---------------


def _sealed_frames(week: str, store: KeyStore, *, move: bool = False, flip: bool = False
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The week's drafts as a hub records them: rule, score, age and every signal column but the
    pseudonyms and ``new`` left out, and each draft's statistics values sealed as the station
    seals them (``move``: the values of the first two drafts swapped; ``flip``: a byte changed)."""
    drafts, signals = _frames(week)
    per_draft = signals.group_by("draft_id").agg(
        pl.col("category").unique().sort().alias("categories"), pl.col("district").unique().sort().alias("districts"),
        pl.col("registered_at").max().dt.to_string("%Y-%m-%dT%H:%M:%S%:z").alias("newest"))
    values = drafts.join(per_draft, on="draft_id", how="left").select(municipal.plaintext({
        "ref": pl.col("draft_id"), "age": pl.col("age"), "rule": pl.col("rule"), "categories": pl.col("categories"),
        "districts": pl.col("districts"), "newest": pl.col("newest")})).to_series()
    sealed = municipal.seal_statistics(values, store.subkey("vault", store.primary_key_id))
    if move:
        sealed = pl.concat([sealed[1:2], sealed[0:1], sealed[2:]])
    if flip:
        first = bytearray(sealed[0])
        first[20] ^= 1
        sealed = pl.concat([pl.Series([bytes(first)], dtype=pl.Binary), sealed[1:]])
    hub_drafts = drafts.select("draft_id", "week", "child", "municipality", "previous_drafts").with_columns(
        sealed.alias("statistics"))
    return hub_drafts, signals.select("draft_id", "child", "event_ref", "person", "new")


def _sealed_state(folder: Path, store: KeyStore, **tamper: bool) -> Path:
    with Ledger.open(folder) as ledger:
        for week in sorted({row[0] for row in LEDGER}):
            ledger.runs.record(week, *_sealed_frames(week, store, **(tamper if week == "2026-W40" else {})),
                               {"key_id": store.primary_key_id})
        for week, child, _, decisions, *_ in LEDGER:
            for decision in decisions:
                ledger.reviews.record(draft_id(week, child), decision, "begrundelse", "ABC")
    return folder


@pytest.fixture(scope="module")
def custodian(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return KeyStore.init(tmp_path_factory.mktemp("custodian") / "keys")


@pytest.fixture(scope="module")
def sealed_state(tmp_path_factory: pytest.TempPathFactory, custodian: KeyStore) -> Path:
    return _sealed_state(tmp_path_factory.mktemp("sealed"), custodian)


def test_stats_with_the_custodians_key_give_the_figures_of_the_clear_ledger(
        sealed_state: Path, custodian: KeyStore, report: StatsReport, tmp_path: Path) -> None:
    conn = sqlite3.connect(sealed_state / "ledger.sqlite")
    assert conn.execute("SELECT count(*) FROM drafts WHERE rule IS NOT NULL OR age IS NOT NULL").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM draft_signals WHERE district IS NOT NULL OR category IS NOT NULL "
                        "OR registered_at IS NOT NULL").fetchone() == (0,)
    conn.close()
    opened = stats(sealed_state, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out",
                   by=("municipality", "district", "category", "age_band", "rule"), keys_dir=custodian.directory)
    assert opened.summary == report.summary
    assert opened.to_dict() == report.to_dict()


def test_the_hub_alone_cannot_make_stats(sealed_state: Path, custodian: KeyStore, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="key custodian"):
        stats(sealed_state, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out")
    hub = keys_export(custodian.directory, tmp_path / "hub-keys", "hub")
    with pytest.raises(KeyStoreError):
        stats(sealed_state, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out", keys_dir=hub.directory)
    other = KeyStore.init(tmp_path / "other-keys")  # another custodian's keys: the values do not open
    with pytest.raises((KeyStoreError, VaultError)):
        stats(sealed_state, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out",
              keys_dir=other.directory)
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(cli, ["stats", "--state", str(sealed_state), "--from", "2026-W40", "--to",
                                      "2026-W42", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--keys" in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize("tamper", ["move", "flip"])
def test_a_changed_or_moved_statistics_value_is_refused(custodian: KeyStore, tmp_path: Path, tamper: str) -> None:
    """A value the hub moved to another draft, or changed, before recording it: the chain binds
    it as recorded, but it no longer opens as that draft's."""
    state = _sealed_state(tmp_path / "state", custodian, **{tamper: True})
    with pytest.raises(VaultError, match="another row" if tamper == "move" else "authenticate"):
        stats(state, from_week="2026-W40", to_week="2026-W42", out_dir=tmp_path / "out", keys_dir=custodian.directory)
    assert not (tmp_path / "out").exists()
