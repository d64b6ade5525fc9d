"""End-to-end through the CLI on the hand-made scenario in ``tests/data/scenario``.

The right answer, worked out by hand for week 2026-W47 (Mon 16 – Sun 22 November 2026,
lookback 26 weeks from Monday 25 May 2026, threshold 3, test catalogue in tests/data):

* child A (born 10 Mar 2015, lives in 101 København). Father F lives in 851 Aalborg:
  NJY 1100 violence as suspect, registered Tue 17 Nov (weight 2, new in W47);
  KBH 2100 drunk driving registered 1 Oct (weight 1); OJY 2100 registered 1 Sep (weight 1);
  NJY code 9999 is outside the catalogue. Mother M (also custodian) is on an SSJ 1100 event
  registered 19 Nov without a CPR number, as "Mete Hansen" born 20 Feb 1987 — resolved by fuzzy
  matching (a namesake Mette Hansen born 1960 must not match) — weight 2, linked twice
  (mother, custodian). Score 2+1+1+2 = 6 >= 3: a threshold draft to 101 with 5 signals
  from 4 districts.
* child D (born 7 Jul 2019, 461 Odense): victim on FYN 5600 "child found alone" registered
  Sunday 22 Nov 23:59 — an immediate category: a draft to 461, score 3.
* child B (461): mother on FYN 2100 (weight 1, score 1 < 3) and as a *witness* on FYN 1100
  (a role the code does not list): no draft.
* child C turns 18 on Wed 18 Nov: not a child, although the father's events score 4.
* "John Smith" with CPR "99999" is in no register: unresolved.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from socialsearch.cli import cli

WEEK = "2026-W47"
RAW_CPRS = ["1003154123", "0106851234", "2002872468", "0101601122", "0501124002", "1505901122",
            "0707194555", "1811084321", "0101701357", "010685-1234"]
RAW_NAMES = ["Aksel", "Nielsen", "Mette", "Mete", "Hansen", "Sofie", "Larsen", "Louise", "Emil",
             "Jensen", "Oliver", "Madsen", "John", "Smith"]
JOURNALS = ["5100-80001-00001-26", "0100-80001-00001-26", "3700-80001-00001-26",
            "2300-80001-00001-26", "4200-80001-00001-26", "80001"]


def invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    code, out = invoke("keys", "init", "--keys", tmp_path / "keys")
    assert code == 0, out
    return tmp_path / "keys"


def run(extract: Path, root: Path, keys: Path, catalogue: Path, week: str = WEEK) -> tuple[int, str]:
    return invoke("run", "--input", extract, "--week", week, "--out", root / "out",
                  "--state", root / "state", "--keys", keys, "--catalogue", catalogue)


def add_week48_drunk_driving_of_the_father(scenario: Path) -> None:
    """One more event for week 48: the father (F) drunk-driving, registered Tue 24 Nov."""
    with (scenario / "incidents" / "NJY.csv").open("a", encoding="utf-8") as f:
        f.write("NJY,5100-80001-00003-26,2026-11-24T01:00:00,2026-11-24T10:00:00,851,,2100\n")
    with (scenario / "incident_persons" / "NJY.csv").open("a", encoding="utf-8") as f:
        f.write("NJY,5100-80001-00003-26,0106851234,suspect,,,\n")


def drafts_of(root: Path, week: str = WEEK) -> dict[str, list[dict]]:
    folder = root / "out" / week
    return {
        p.parent.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(folder.glob("*/drafts.json"))
    }


def test_weekly_run_finds_exactly_the_hand_worked_drafts(scenario, tmp_path, keys, catalogue_file):
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 0, out
    drafts = drafts_of(tmp_path)
    assert sorted(drafts) == ["101", "461"]
    [a] = drafts["101"]
    [d] = drafts["461"]

    assert a["municipality"] == "101" and a["child"]["municipality"] == "101"
    assert a["child"]["age"] == 11
    assert a["reason"] == {"rule": "threshold", "score": 6, "threshold": 3}
    assert len(a["signals"]) == 5
    assert all(s["new"] for s in a["signals"])
    assert sorted({s["district"] for s in a["signals"]}) == ["KBH", "NJY", "OJY", "SSJ"]
    assert sorted(s["link"] for s in a["signals"]) == ["custodian", "father", "father", "father", "mother"]
    assert sorted(p["link"] for p in a["persons"]) == ["custodian", "father", "mother"]
    fuzzy = [s for s in a["signals"] if s["district"] == "SSJ"]
    assert len(fuzzy) == 2
    assert all(s["resolved_by"] == "probabilistic" and 0.5 < s["match_probability"] <= 1 for s in fuzzy)
    assert a["previous_drafts"] == []

    assert d["reason"]["rule"] == "immediate" and d["reason"]["score"] == 3
    assert d["child"]["age"] == 7
    [sig] = d["signals"]
    assert (sig["link"], sig["role"], sig["code"], sig["kind"]) == ("self", "victim", "5600", "incident")

    summary = json.loads((tmp_path / "out" / WEEK / "summary.json").read_text(encoding="utf-8"))
    assert summary["drafts"]["per_municipality"] == {"101": 1, "461": 1}
    assert summary["persons"] == {"without_valid_cpr": 2, "resolved_probabilistically": 1, "unresolved": 1}
    assert (tmp_path / "out" / WEEK / "101" / "drafts.html").is_file()


def test_no_raw_identifier_in_any_output_ledger_vault_or_message(scenario, tmp_path, keys, catalogue_file):
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 0
    pseudo = tmp_path / "pseudo"
    code2, out2 = invoke("pseudonymise", "--input", scenario, "--out", pseudo, "--keys", keys,
                         "--week", WEEK, "--catalogue", catalogue_file)
    assert code2 == 0
    needles = [s.encode() for s in RAW_CPRS + RAW_NAMES + JOURNALS]
    files = [p for base in (tmp_path / "out", tmp_path / "state", pseudo) for p in base.rglob("*") if p.is_file()]
    assert len(files) >= 8
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} found in {path}"
    for text in (out, out2):
        for needle in needles:
            assert needle.decode() not in text


def test_hub_run_on_pseudonymised_extracts_equals_single_site_run(scenario, tmp_path, keys, catalogue_file):
    single, hub = tmp_path / "single", tmp_path / "hub"
    assert run(scenario, single, keys, catalogue_file)[0] == 0
    assert invoke("pseudonymise", "--input", scenario, "--out", tmp_path / "pseudo", "--keys", keys,
                  "--week", WEEK, "--catalogue", catalogue_file)[0] == 0
    assert invoke("keys", "export", "--keys", keys, "--role", "hub", "--out", tmp_path / "hub-keys")[0] == 0
    code, out = run(tmp_path / "pseudo", hub, tmp_path / "hub-keys", catalogue_file)
    assert code == 0, out
    assert drafts_of(single) == drafts_of(hub)
    # A hub keystore cannot pseudonymise raw input.
    code, out = run(scenario, tmp_path / "other", tmp_path / "hub-keys", catalogue_file)
    assert code == 2 and "secret" in out


def test_rerun_is_idempotent_and_follow_up_lists_previous_draft(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    first = drafts_of(tmp_path)
    html = (tmp_path / "out" / WEEK / "101" / "drafts.html").read_bytes()
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    assert drafts_of(tmp_path) == first
    assert (tmp_path / "out" / WEEK / "101" / "drafts.html").read_bytes() == html

    add_week48_drunk_driving_of_the_father(scenario)
    code, out = run(scenario, tmp_path, keys, catalogue_file, week="2026-W48")
    assert code == 0, out
    follow = drafts_of(tmp_path, "2026-W48")
    assert sorted(follow) == ["101"]  # D's immediate event was already notified: no new signal
    [a2] = follow["101"]
    [a1] = first["101"]
    assert a2["previous_drafts"] == [a1["draft_id"]]
    assert a2["draft_id"] != a1["draft_id"]
    assert a2["reason"]["score"] == 7
    assert [s["new"] for s in a2["signals"]].count(True) == 1

    # A new week earlier than the latest one is refused, and the ledger is untouched.
    code, out = run(scenario, tmp_path, keys, catalogue_file, week="2026-W46")
    assert code == 2 and "2026-W48" in out


def test_review_reidentify_and_audit(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    [a] = drafts_of(tmp_path)["101"]
    state = tmp_path / "state"
    # Not approved yet: the custodian may not re-identify.
    code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", a["draft_id"])
    assert code == 2 and "not approved" in out
    code, out = invoke("review", "--state", state, "--draft", a["draft_id"], "--decision", "approve",
                       "--reason", "Relevant")
    assert code == 0, out
    code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", a["draft_id"])
    assert code == 0, out
    opened = json.loads(out)
    assert opened["child"]["cpr"] == "1003154123"
    assert sorted(p["cpr"] for p in opened["persons"]) == ["0106851234", "2002872468"]
    assert sorted((e["district"], e["journal_number"]) for e in opened["events"]) == [
        ("KBH", "0100-80001-00001-26"), ("NJY", "5100-80001-00001-26"),
        ("OJY", "3700-80001-00001-26"), ("SSJ", "4200-80001-00001-26"),
    ]
    code, out = invoke("audit", "verify", "--state", state)
    assert code == 0 and "3 entries" in out  # run, review, reidentify
    code, out = invoke("review", "--state", state, "--draft", "D-unknown", "--decision", "dismiss",
                       "--reason", "x")
    assert code == 2


def test_hub_keystore_cannot_reidentify(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    [a] = drafts_of(tmp_path)["101"]
    assert invoke("review", "--state", tmp_path / "state", "--draft", a["draft_id"],
                  "--decision", "approve", "--reason", "ok")[0] == 0
    assert invoke("keys", "export", "--keys", keys, "--role", "hub", "--out", tmp_path / "hub-keys")[0] == 0
    code, out = invoke("reidentify", "--state", tmp_path / "state", "--keys", tmp_path / "hub-keys",
                       "--draft", a["draft_id"])
    assert code == 2
    assert "1003154123" not in out


def test_bad_input_names_file_row_column_and_leaves_ledger_untouched(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    ledger = (tmp_path / "state" / "ledger.sqlite").read_bytes()
    path = scenario / "incidents" / "FYN.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace(",461,", ",999,")  # data row 2: no such kommunekode
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 2
    assert "FYN.csv" in out and "row 2" in out and "municipality" in out
    assert (tmp_path / "state" / "ledger.sqlite").read_bytes() == ledger


def test_second_run_on_locked_state_is_refused(scenario, tmp_path, keys, catalogue_file):
    from socialsearch.ledger import lock_state

    (tmp_path / "state").mkdir()
    with lock_state(tmp_path / "state"):
        code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 2 and "locked" in out


KILL_POINTS = ["after-read", "after-search", "mid-outputs", "after-outputs", "after-vault", "after-ledger"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_run_killed_with_sigkill_then_rerun_ends_as_uninterrupted(point, scenario, tmp_path, keys, catalogue_file):
    clean = tmp_path / "clean"
    assert run(scenario, clean, keys, catalogue_file)[0] == 0

    crashed = tmp_path / "crashed"
    args = [sys.executable, "-m", "socialsearch", "run", "--input", str(scenario), "--week", WEEK,
            "--out", str(crashed / "out"), "--state", str(crashed / "state"), "--keys", str(keys),
            "--catalogue", str(catalogue_file)]
    env = {**os.environ, "SOCIALSEARCH_KILL_AT": point}
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    assert drafts_of(crashed) == drafts_of(clean)
    from socialsearch.ledger import Ledger
    from socialsearch.weeks import IsoWeek

    with Ledger.open(clean / "state") as a, Ledger.open(crashed / "state") as b:
        pa, da = a.history(IsoWeek.parse("2026-W48"))
        pb, db = b.history(IsoWeek.parse("2026-W48"))
    assert pa.sort(pa.columns).equals(pb.sort(pb.columns))
    assert da.sort(da.columns).equals(db.sort(db.columns))
    assert invoke("audit", "verify", "--state", crashed / "state")[0] == 0
    leftovers = [p for p in (crashed / "out").rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_demo_runs_the_whole_pipeline(tmp_path):
    code, out = invoke("demo", "--dir", tmp_path / "demo", "--week", "2026-W46")
    assert code == 0, out
    assert "drafts.html" in out
    assert list((tmp_path / "demo" / "out").glob("*/summary.json"))
    # Running it again replaces the earlier demo; a foreign folder is refused.
    assert invoke("demo", "--dir", tmp_path / "demo", "--scale", "0.002", "--seed", "3")[0] == 0
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "precious.txt").write_text("keep", encoding="utf-8")
    code, out = invoke("demo", "--dir", tmp_path / "foreign")
    assert code == 2 and (tmp_path / "foreign" / "precious.txt").exists()
    shutil.rmtree(tmp_path / "demo")


def test_verbose_log_of_a_run_carries_no_raw_identifier(scenario, tmp_path, keys, catalogue_file):
    proc = subprocess.run(
        [sys.executable, "-m", "socialsearch", "-vv", "run", "--input", str(scenario), "--week", WEEK,
         "--out", str(tmp_path / "out"), "--state", str(tmp_path / "state"), "--keys", str(keys),
         "--catalogue", str(catalogue_file)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stage search took" in proc.stderr  # the log is really on
    for needle in RAW_CPRS + RAW_NAMES + JOURNALS:
        assert needle not in proc.stderr and needle not in proc.stdout


def test_key_rotation_with_rekey_notifies_nothing_twice(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    [a1] = drafts_of(tmp_path)["101"]
    [d1] = drafts_of(tmp_path)["461"]
    state = tmp_path / "state"
    assert invoke("review", "--state", state, "--draft", a1["draft_id"], "--decision", "approve",
                  "--reason", "ok")[0] == 0
    old_primary = json.loads(invoke("keys", "show", "--keys", keys)[1])["primary"]
    assert invoke("keys", "rotate", "--keys", keys)[0] == 0
    shown = json.loads(invoke("keys", "show", "--keys", keys)[1])
    new = next(k["id"] for k in shown["keys"] if k["id"] != old_primary)
    assert invoke("keys", "rotate", "--keys", keys, "--promote", new)[0] == 0
    # Without re-keying, a run under the new key would re-notify everything: it is refused.
    code, out = run(scenario, tmp_path, keys, catalogue_file, week="2026-W48")
    assert code == 2 and "keys rekey" in out
    assert not (tmp_path / "out" / "2026-W48").exists()
    code, out = invoke("keys", "rekey", "--keys", keys, "--state", state)
    assert code == 0, out
    report = json.loads(out)
    assert report["to_key_id"] == new and report["ledger"]["drafts"] == 2
    # Re-keying twice changes nothing more.
    assert json.loads(invoke("keys", "rekey", "--keys", keys, "--state", state)[1])["ledger"]["drafts"] == 0

    add_week48_drunk_driving_of_the_father(scenario)
    code, out = run(scenario, tmp_path, keys, catalogue_file, week="2026-W48")
    assert code == 0, out
    follow = drafts_of(tmp_path, "2026-W48")
    assert sorted(follow) == ["101"]  # D's event is known under the new key too: not notified again
    [a2] = follow["101"]
    # Drafts carry pseudonyms scoped to their municipality; a new key gives new ones.
    assert a2["child"]["pseudonym"].startswith("101.") and a2["child"]["pseudonym"] != a1["child"]["pseudonym"]
    assert a2["previous_drafts"] == [a1["draft_id"]]
    assert [s["new"] for s in a2["signals"]].count(True) == 1
    assert d1["draft_id"] not in json.dumps(follow)
    # The custodian can still re-identify the old draft, now under its new pseudonyms.
    code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", a1["draft_id"])
    assert code == 0, out
    assert json.loads(out)["child"]["cpr"] == "1003154123"
    assert invoke("audit", "verify", "--state", state)[0] == 0
