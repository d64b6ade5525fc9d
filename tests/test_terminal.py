"""What reaches the terminal: control and bidirectional characters escaped in every line printed;
`drafts list` that fits 80 columns; -q that is quiet."""

from __future__ import annotations

import io
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from test_ledger import make_drafts, make_signals, week47

from socialsearch import progress
from socialsearch._terminal import UNSAFE, PrintableFormatter, has_unsafe, printable
from socialsearch.cli import cli, drafts_table
from socialsearch.ledger import Ledger

OSC = "\x1b]0;owned\x07"  # sets the terminal's window title
PACKAGED = Path(__file__).resolve().parents[1] / "configs" / "event_codes.toml"


def assert_clean(text: str) -> None:
    """Nothing a terminal would obey: no ESC, BEL, CR, C1 control or bidi override."""
    assert not [c for c in text if c != "\n" and UNSAFE.match(c)], repr(text)


@given(st.text())
def test_printable_leaves_nothing_a_terminal_obeys(text: str) -> None:
    shown = printable(text)
    assert not has_unsafe(shown)
    assert shown == text or has_unsafe(text)  # safe text is shown as it is


@pytest.mark.parametrize(("raw", "shown"), [
    (f"a{OSC}b", "a\\x1b]0;owned\\x07b"), ("x\u202eexe.txt", "x\\u202eexe.txt"), ("\u2066i\u2069", "\\u2066i\\u2069"),
    ("c1 \x9b2J", "c1 \\u009b2J"), ("cr\rover", "cr\\rover"), ("Ærø Kommune", "Ærø Kommune"),
])
def test_printable_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_a_json_document_stays_valid_json_through_printable() -> None:
    import json

    document = {"name": f"fil{OSC}\u202e\x85æøå"}
    text = printable(json.dumps(document, indent=2, ensure_ascii=False), keep_newlines=True)
    assert_clean(text)
    assert json.loads(text) == document


def test_a_file_name_with_an_escape_sequence_is_shown_escaped(tmp_path: Path) -> None:
    path = tmp_path / f"catalogue{OSC}.toml"
    path.write_text(PACKAGED.read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["catalogue", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert_clean(result.output)
    assert "catalogue\\x1b]0;owned\\x07.toml: ok" in result.output
    path.write_text("schema_version = 1\nthreshold = 'x'\n", encoding="utf-8")  # an error naming the file
    result = CliRunner().invoke(cli, ["catalogue", "check", str(path)])
    assert result.exit_code == 2
    assert_clean(result.output)
    assert "catalogue\\x1b]0;owned\\x07.toml" in result.output


def test_a_category_id_with_an_escape_sequence_is_shown_escaped(tmp_path: Path) -> None:
    text = PACKAGED.read_text(encoding="utf-8").replace('"violence"', '"vio\\u001b]0;owned\\u0007lence"')
    text = text.replace("immediate = false", "immediate = true", 1)  # violence is immediate: its id is printed
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["catalogue", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert_clean(result.output)
    assert "vio\\x1b]0;owned\\x07lence" in result.output


def test_a_ledger_value_with_an_escape_sequence_is_shown_escaped(tmp_path: Path) -> None:
    drafts, signals = week47()
    with Ledger.open(tmp_path) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    evil = f"D47-a{OSC}\u202e"
    conn.execute("UPDATE drafts SET draft_id = ? WHERE draft_id = 'D47-a'", (evil,))
    conn.execute("UPDATE draft_signals SET draft_id = ? WHERE draft_id = 'D47-a'", (evil,))
    conn.commit()
    conn.close()
    for extra, shown in (([], "D47-a\\x1b]0;owned\\x07\\u202e"), (["--json"], "D47-a\\u001b]0;owned\\u0007\\u202e")):
        result = CliRunner().invoke(cli, ["drafts", "list", "--state", str(tmp_path), *extra])
        assert_clean(result.output)
        assert result.exit_code == 0, result.output
        assert shown in result.output


def test_an_error_message_is_shown_escaped(tmp_path: Path) -> None:
    state = tmp_path / f"state{OSC}"
    result = CliRunner().invoke(cli, ["drafts", "list", "--state", str(state)])
    assert result.exit_code == 2
    assert_clean(result.output)
    assert "state\\x1b]0;owned\\x07" in result.output


def test_log_lines_and_progress_are_shown_escaped() -> None:
    record = logging.LogRecord("socialsearch", logging.WARNING, __file__, 1, "file %s", (f"x{OSC}",), None)
    assert PrintableFormatter("%(message)s").format(record) == "file x\\x1b]0;owned\\x07"
    buffer = io.StringIO()
    progress.configure(enabled=True, console=Console(file=buffer, force_terminal=True, width=100))
    try:
        with progress.stage(f"reading [bold]{OSC}"):
            pass
    finally:
        progress.configure(enabled=None, console=None)
    shown = buffer.getvalue()
    assert "]0;owned" not in shown.replace("\\x1b]0;owned", "")  # only the escaped form
    assert "reading [bold]\\x1b]0;owned\\x07" in shown  # no markup taken from the text either


# --- drafts list at 80 columns ---------------------------------------------------------------------


def real_looking_ledger(state: Path) -> None:
    ids = [f"D2026-W47-k1a2b3c4d-{i:016x}" for i in (0x0123456789ABCDEF, 0xFEDCBA9876543210, 7)]
    drafts = make_drafts("2026-W47", [
        {"draft_id": ids[0], "child": "C1", "rule": "immediate", "score": 12, "age": 17},
        {"draft_id": ids[1], "child": "C2", "municipality": "860", "age": 3},
        {"draft_id": ids[2], "child": "C3", "municipality": "147", "age": None},
    ])
    signals = make_signals([(i, c, f"E{c}", "P-father", True) for i, c in zip(ids, ("C1", "C2", "C3"), strict=True)])
    with Ledger.open(state) as ledger:
        ledger.runs.record("2026-W47", drafts, signals)
        ledger.reviews.record(ids[0], "approve", "Relevant", "ÆØÅBCD")
        ledger.reviews.record(ids[1], "dismiss", "Kendt", "KB")


def test_drafts_list_fits_80_columns_without_cutting_anything(tmp_path: Path, monkeypatch: Any) -> None:
    real_looking_ledger(tmp_path)
    from socialsearch.municipality import drafts_list

    rows = drafts_list(tmp_path)
    buffer = io.StringIO()
    Console(file=buffer, width=80, highlight=False).print(drafts_table(rows, f"{len(rows)} draft(s) in STATE", 80))
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80, lines
    assert "…" not in buffer.getvalue()
    body = [line.split() for line in lines[2:]]  # after the title and the header
    assert [cells[0] for cells in body] == [r["draft_id"] for r in rows]  # every id whole, on one line
    assert body[0][1:] == ["101", "imm", "12", "17", "approve", "ÆØÅBCD", body[0][-1]]
    assert all(len(cells[-1]) >= 7 for cells in body)  # no column cut to one character
    # the CLI lays the table out for the COLUMNS it is given
    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(cli, ["drafts", "list", "--state", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert all(r["draft_id"] in result.output for r in rows)


# --- -q ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quiet_synth_and_pseudonymise_print_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["synth", "--out", str(tmp_path / "x"), "--scale", "0.001", "--week", "2026-W47",
                                 "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    loud = runner.invoke(cli, ["synth", "--out", str(tmp_path / "y"), "--scale", "0.001", "--week", "2026-W47"])
    assert loud.exit_code == 0 and loud.output.startswith("{")
    assert runner.invoke(cli, ["keys", "init", "--keys", str(tmp_path / "k")]).exit_code == 0
    result = runner.invoke(cli, ["-q", "pseudonymise", "--input", str(tmp_path / "x"), "--out", str(tmp_path / "p"),
                                 "--keys", str(tmp_path / "k"), "--week", "2026-W47"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
