"""End-to-end through the CLI on the hand-made scenario in ``tests/data/scenario``.

The right answer, worked out by hand for week 2026-W47 (Mon 16 – Sun 22 November 2026,
lookback 26 weeks from Monday 25 May 2026, threshold 3, test catalogue in tests/data):

* child A (born 10 Mar 2015, lives in 101 København). Father F lives in 851 Aalborg:
  NJY 1100 violence as suspect, registered Tue 17 Nov (weight 2, new in W47);
  KBH 2100 drunk driving registered 1 Oct (weight 1); OJY 2100 registered 1 Sep (weight 1);
  NJY code 9999 is outside the catalogue. Mother M (also custodian) is on an SSJ 1100 event
  registered 19 Nov as "Mete Hansen" born 20 Feb 1987 with her CPR number written with a digit
  missing ("200287246", not a valid number) — resolved at the station by probabilistic matching:
  in this nine-person register names and birth date alone weigh 10.53 bits (0.9993, below the
  threshold), the written number is one edit from hers (+log2(0.6198 / 0.000715) = +9.76 bits),
  and the event is in 561, where she does not live (+log2(0.338 / (8/9)) = −1.40 bits, the
  register's share of 561 at its floor 1/9): 18.90 bits, P = 0.999998 (a namesake Mette Hansen
  born 1960 is no candidate) — weight 2, linked twice (mother, custodian). Score 2+1+1+2 = 6
  >= 3: a threshold draft to 101 with 5 signals from 4 districts.
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
from conftest import invoke, tamper

WEEK = "2026-W47"
RAW_CPRS = ["1003154123", "0106851234", "2002872468", "0101601122", "0501124002", "1505901122",
            "0707194555", "1811084321", "0101701357", "010685-1234", "200287246"]
RAW_NAMES = ["Aksel", "Nielsen", "Mette", "Mete", "Hansen", "Sofie", "Larsen", "Louise", "Emil",
             "Jensen", "Oliver", "Madsen", "John", "Smith"]
JOURNALS = ["5100-80001-00001-26", "0100-80001-00001-26", "3700-80001-00001-26",
            "2300-80001-00001-26", "4200-80001-00001-26", "80001"]




def run(extract: Path, root: Path, keys: Path, catalogue: Path, week: str = WEEK) -> tuple[int, str]:
    first = [] if (root / "state" / "ledger.sqlite").exists() else ["--new-state"]  # the first week of a ledger
    return invoke("run", "--input", extract, "--week", week, "--out", root / "out",
                  "--state", root / "state", "--keys", keys, "--catalogue", catalogue, *first)


def add_week48_drunk_driving_of_the_father(scenario: Path) -> None:
    """One more event for week 48: the father (F) drunk-driving, registered Tue 24 Nov."""
    with (scenario / "incidents" / "NJY.csv").open("a", encoding="utf-8") as f:
        f.write("NJY,5100-80001-00003-26,2026-11-24T01:00:00,2026-11-24T10:00:00,851,,2100\n")
    with (scenario / "incident_persons" / "NJY.csv").open("a", encoding="utf-8") as f:
        f.write("NJY,5100-80001-00003-26,0106851234,suspect,,,\n")


def with_municipal_keys(keys: Path, root: Path) -> None:
    """Key pairs of 101 and 461 (the scenario's receiving municipalities), their public keys at the station."""
    for code in ("101", "461"):
        assert invoke("keys", "municipality", "init", "--municipality", code, "--keys", root / f"m{code}")[0] == 0
        assert invoke("keys", "municipality", "add", "--keys", keys, "--public",
                      root / f"m{code}" / "municipality.pub")[0] == 0


def opened_of(root: Path, week: str = WEEK) -> dict[str, list[dict]]:
    """Each municipality opens its drafts of ``week`` with its key pair (``with_municipal_keys``)."""
    out = {}
    for folder in sorted(p for p in (root / "out" / week).iterdir() if p.is_dir()):
        target = root / "opened" / week / folder.name
        code, text = invoke("open", "--drafts", folder, "--keys", root / f"m{folder.name}", "--out", target)
        assert code == 0, text
        out[folder.name] = json.loads((target / "drafts.opened.json").read_text(encoding="utf-8"))
    return out


def _without_sealed(drafts: dict[str, list[dict]]) -> dict[str, list[dict]]:
    for docs in drafts.values():
        for doc in docs:
            doc.pop("sealed")
            for row in doc["signals"]:
                row.pop("sealed")
    return drafts


def drafts_of(root: Path, week: str = WEEK) -> dict[str, list[dict]]:
    folder = root / "out" / week
    return {
        p.parent.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(folder.glob("*/drafts.json"))
    }


def test_weekly_run_finds_exactly_the_hand_worked_drafts(scenario, tmp_path, keys, catalogue_file):
    with_municipal_keys(keys, tmp_path)
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 0, out
    drafts = drafts_of(tmp_path)
    assert sorted(drafts) == ["101", "461"]
    [a] = drafts["101"]
    # What the hub holds in clear: pseudonyms, new or known, of the week or earlier; the rest sealed.
    assert a["municipality"] == "101" and a["child"]["municipality"] == "101"
    assert "age" not in a["child"] and a["reason"] is None and a["sealed"]["child"]
    assert len(a["signals"]) == 4  # F on KBH-1, NJY-1, OJY-1; M on SSJ-1 (mother and custodian: one row)
    assert all(set(s) == {"event_ref", "person", "new", "in_week", "sealed"} for s in a["signals"])
    assert [p["link"] for p in a["persons"]] == [None, None]

    opened = opened_of(tmp_path)
    [a] = opened["101"]
    [d] = opened["461"]
    assert a["child"]["age"] == 11 and d["child"]["age"] == 7
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
    with_municipal_keys(keys, tmp_path)
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    first = drafts_of(tmp_path)
    html = (tmp_path / "out" / WEEK / "101" / "drafts.html").read_bytes()
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    # The same drafts; their sealed values are sealed afresh (a new data key per run), nothing else moves.
    assert _without_sealed(drafts_of(tmp_path)) == _without_sealed(first)
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
    assert [s["new"] for s in a2["signals"]].count(True) == 1  # one row: F on the new event
    [a2] = opened_of(tmp_path, "2026-W48")["101"]
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
                       "--reason", "Relevant", "--reviewer", "ABC")
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
                       "--reason", "x", "--reviewer", "ABC")
    assert code == 2


def test_hub_keystore_cannot_reidentify(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    [a] = drafts_of(tmp_path)["101"]
    assert invoke("review", "--state", tmp_path / "state", "--draft", a["draft_id"],
                  "--decision", "approve", "--reason", "ok", "--reviewer", "ABC")[0] == 0
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
    lines[2] = lines[2].replace(",461,", ",999,")  # line 3 of the file: no such kommunekode
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 2
    assert "FYN.csv, line 3, column 'municipality'" in out  # the line as an editor numbers it
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
            "--catalogue", str(catalogue_file), "--new-state"]
    env = {**os.environ, "SOCIALSEARCH_KILL_AT": point}
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    assert drafts_of(crashed) == drafts_of(clean)
    from socialsearch.ledger import Ledger
    from socialsearch.weeks import IsoWeek

    with Ledger.open(clean / "state") as a, Ledger.open(crashed / "state") as b:
        pa, da = a.runs.history(IsoWeek.parse("2026-W48"))
        pb, db = b.runs.history(IsoWeek.parse("2026-W48"))
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
         "--catalogue", str(catalogue_file), "--new-state"],
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
                  "--reason", "ok", "--reviewer", "ABC")[0] == 0
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


# --------------------------------------------------------------------------- decide, then write

def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder under ``roots``: what a refused run must not change."""
    return {
        str(p): (p.read_bytes() if p.is_file() else None)
        for root in roots if root.exists() for p in sorted(root.rglob("*"))
    }


def recode(scenario: Path, district: str, journal: str, code: str) -> None:
    """Give one incident another offence code (9999 is outside the catalogue)."""
    path = scenario / "incidents" / f"{district}.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [",".join([*ln.split(",")[:-1], code]) if f",{journal}," in ln else ln for ln in lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def approve(state: Path, draft_id: str) -> None:
    code, out = invoke("review", "--state", state, "--draft", draft_id, "--decision", "approve",
                       "--reason", "Relevant", "--reviewer", "ABC")
    assert code == 0, out


def test_refused_new_earlier_week_changes_no_byte(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    add_week48_drunk_driving_of_the_father(scenario)
    assert run(scenario, tmp_path, keys, catalogue_file, week="2026-W48")[0] == 0
    before = snapshot(tmp_path / "out", tmp_path / "state")
    code, out = run(scenario, tmp_path, keys, catalogue_file, week="2026-W46")
    assert code == 2 and "earlier than the latest week in the ledger (2026-W48)" in out
    assert snapshot(tmp_path / "out", tmp_path / "state") == before


def test_refused_week_that_has_not_ended_creates_and_changes_nothing(scenario, tmp_path, keys, catalogue_file):
    code, out = run(scenario, tmp_path, keys, catalogue_file, week="2030-W01")
    assert code == 2 and "week 2030-W01 has not ended yet" in out
    assert not (tmp_path / "state").exists() and not (tmp_path / "out").exists()
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    before = snapshot(tmp_path / "out", tmp_path / "state")
    code, out = run(scenario, tmp_path, keys, catalogue_file, week="2030-W01")
    assert code == 2 and "typo" in out
    assert snapshot(tmp_path / "out", tmp_path / "state") == before
    # The typo did not block the real weeks.
    add_week48_drunk_driving_of_the_father(scenario)
    assert run(scenario, tmp_path, keys, catalogue_file, week="2026-W48")[0] == 0


def test_refused_changed_past_week_changes_no_byte(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    add_week48_drunk_driving_of_the_father(scenario)
    assert run(scenario, tmp_path, keys, catalogue_file, week="2026-W48")[0] == 0
    recode(scenario, "NJY", "5100-80001-00001-26", "9999")
    before = snapshot(tmp_path / "out", tmp_path / "state")
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 2 and "re-running week 2026-W47 gave different drafts than recorded" in out
    assert snapshot(tmp_path / "out", tmp_path / "state") == before


def test_refused_run_that_drops_a_reviewed_draft_changes_no_byte(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    [a] = drafts_of(tmp_path)["101"]
    approve(tmp_path / "state", a["draft_id"])
    # A late extract without A's two new events: A would get no draft in W47.
    recode(scenario, "NJY", "5100-80001-00001-26", "9999")
    recode(scenario, "SSJ", "4200-80001-00001-26", "9999")
    before = snapshot(tmp_path / "out", tmp_path / "state")
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 2 and "would drop 1 draft(s) that were already reviewed" in out
    assert snapshot(tmp_path / "out", tmp_path / "state") == before
    code, out = invoke("reidentify", "--state", tmp_path / "state", "--keys", keys, "--draft", a["draft_id"])
    assert code == 0, out  # the approved draft can still be re-identified
    assert invoke("audit", "verify", "--state", tmp_path / "state")[0] == 0


def test_refused_run_that_changes_a_reviewed_draft_changes_no_byte(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    [a] = drafts_of(tmp_path)["101"]
    approve(tmp_path / "state", a["draft_id"])
    # A late event of the father in W47 itself: A's draft would change after the decision.
    with (scenario / "incidents" / "NJY.csv").open("a", encoding="utf-8") as f:
        f.write("NJY,5100-80001-00009-26,2026-11-20T01:00:00,2026-11-20T10:00:00,851,,2100\n")
    with (scenario / "incident_persons" / "NJY.csv").open("a", encoding="utf-8") as f:
        f.write("NJY,5100-80001-00009-26,0106851234,suspect,,,\n")
    before = snapshot(tmp_path / "out", tmp_path / "state")
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 2 and "would change 1 draft(s) that were already reviewed" in out
    assert snapshot(tmp_path / "out", tmp_path / "state") == before


def test_refused_run_under_another_key_changes_no_byte(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    old_primary = json.loads(invoke("keys", "show", "--keys", keys)[1])["primary"]
    assert invoke("keys", "rotate", "--keys", keys)[0] == 0
    shown = json.loads(invoke("keys", "show", "--keys", keys)[1])
    new = next(k["id"] for k in shown["keys"] if k["id"] != old_primary)
    assert invoke("keys", "rotate", "--keys", keys, "--promote", new)[0] == 0
    before = snapshot(tmp_path / "out", tmp_path / "state")
    code, out = run(scenario, tmp_path, keys, catalogue_file)  # a late extract of W47, new key, no rekey
    assert code == 2 and "keys rekey" in out
    assert snapshot(tmp_path / "out", tmp_path / "state") == before


def test_week_without_registrations_warns_in_the_summary(scenario, tmp_path, keys, catalogue_file):
    code, out = run(scenario, tmp_path, keys, catalogue_file, week="2026-W46")
    assert code == 0, out
    assert "warning: no event in the extracts was registered in week 2026-W46" in out
    summary = json.loads((tmp_path / "out" / "2026-W46" / "summary.json").read_text(encoding="utf-8"))
    assert len(summary["warnings"]) == 1
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    summary = json.loads((tmp_path / "out" / WEEK / "summary.json").read_text(encoding="utf-8"))
    assert summary["warnings"] == []


def test_late_extract_after_rotation_and_rekey_keeps_draft_ids(scenario, tmp_path, keys, catalogue_file):
    from socialsearch.ledger import Ledger

    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    first = drafts_of(tmp_path)
    [a1] = first["101"]
    state = tmp_path / "state"
    approve(state, a1["draft_id"])
    late = tmp_path / "late-extract-w47"
    shutil.copytree(scenario, late)
    add_week48_drunk_driving_of_the_father(scenario)
    assert run(scenario, tmp_path, keys, catalogue_file, week="2026-W48")[0] == 0
    old_primary = json.loads(invoke("keys", "show", "--keys", keys)[1])["primary"]
    assert invoke("keys", "rotate", "--keys", keys)[0] == 0
    shown = json.loads(invoke("keys", "show", "--keys", keys)[1])
    new = next(k["id"] for k in shown["keys"] if k["id"] != old_primary)
    assert invoke("keys", "rotate", "--keys", keys, "--promote", new)[0] == 0
    assert invoke("keys", "rekey", "--keys", keys, "--state", state)[0] == 0

    # A late extract for the reviewed, earlier week W47, pseudonymised with the new key.
    code, out = run(late, tmp_path, keys, catalogue_file)
    assert code == 0, out
    again = drafts_of(tmp_path)
    assert {m: [d["draft_id"] for d in ds] for m, ds in again.items()} == {
        m: [d["draft_id"] for d in ds] for m, ds in first.items()
    }
    with Ledger.open(state, readonly=True) as ledger:
        assert ledger.runs.recorded()[-1]["status"] == "replayed"
        assert ledger.drafts.get(a1["draft_id"])["child"].startswith(new + ".")  # the ledger's own pseudonym
    # And the latest week too.
    assert run(scenario, tmp_path, keys, catalogue_file, week="2026-W48")[0] == 0
    assert invoke("audit", "verify", "--state", state)[0] == 0
    code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", a1["draft_id"])
    assert code == 0 and json.loads(out)["child"]["cpr"] == "1003154123"


# --------------------------------------------------------------------------- tampering

TAMPERING = {
    "review decision dismiss->approve": (
        "461", ["UPDATE reviews SET decision = 'approve' WHERE draft_id = '{D}'"], "ledger table reviews"),
    "review reason": ("101", ["UPDATE reviews SET reason = 'anden grund' WHERE draft_id = '{A}'"],
                      "ledger table reviews"),
    "review deleted": ("101", ["DELETE FROM reviews WHERE draft_id = '{A}'"], "missing (deleted"),
    "review inserted": ("461", ["INSERT INTO reviews (draft_id, decision, reason, reviewer, decided_at) "
                                "VALUES ('{D}', 'approve', 'ok', 'ABC', '2026-11-30T10:00:00+00:00')"],
                        "has no audit entry"),
    "draft municipality": ("101", ["UPDATE drafts SET municipality = '147' WHERE draft_id = '{A}'"],
                           "drafts or signals of week 2026-W47 differ"),
    "signal deleted": ("101", ["DELETE FROM draft_signals WHERE rowid = (SELECT min(rowid) FROM draft_signals "
                               "WHERE draft_id = '{A}')"], "drafts or signals of week 2026-W47 differ"),
    "signal inserted": ("101", ["INSERT INTO draft_signals (draft_id, child, event_ref, person, role, link, kind, "
                                "code, weight, new) SELECT draft_id, child, 'E-forged', person, role, link, kind, "
                                "code, weight, new FROM draft_signals WHERE draft_id = '{A}' LIMIT 1"],
                        "drafts or signals of week 2026-W47 differ"),
    "run changed": ("101", ["UPDATE runs SET key_id = 'kforged'"], "ledger table runs"),
    "run deleted": ("101", ["DELETE FROM runs"], "ledger table runs"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_with_any_table_is_found_and_blocks_reidentify(case, scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    drafts = drafts_of(tmp_path)
    ids = {"A": drafts["101"][0]["draft_id"], "D": drafts["461"][0]["draft_id"]}
    state = tmp_path / "state"
    approve(state, ids["A"])
    assert invoke("review", "--state", state, "--draft", ids["D"], "--decision", "dismiss",
                  "--reason", "Kendt af forvaltningen", "--reviewer", "XY")[0] == 0
    assert invoke("audit", "verify", "--state", state)[0] == 0
    target, statements, expected = TAMPERING[case]
    tamper(state, *(s.format(**ids) for s in statements))
    code, out = invoke("audit", "verify", "--state", state)
    assert code == 2 and expected in out, out
    draft = ids["A"] if target == "101" else ids["D"]
    code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", draft)
    assert code == 2, out
    for needle in RAW_CPRS + JOURNALS:
        assert needle not in out
    assert "reidentify" not in {e for e in out.split()}


# --------------------------------------------------------------------------- folders, drafts list, import

@pytest.mark.parametrize("command", [
    ["review", "--draft", "D2026-W47-k1a2b3c4d-0123456789abcdef", "--decision", "approve", "--reason", "ok",
     "--reviewer", "ABC"],
    ["review", "--import", "DECISIONS"],
    ["drafts", "list"],
    ["audit", "verify"],
    ["reidentify", "--keys", "KEYS", "--draft", "D2026-W47-k1a2b3c4d-0123456789abcdef"],
    ["keys", "rekey", "--keys", "KEYS"],
], ids=lambda c: " ".join(c[:2]))
def test_state_commands_never_create_a_state_folder(command, tmp_path, keys):
    decisions = tmp_path / "decisions.json"
    decisions.write_text("{}", encoding="utf-8")
    args = [str(keys) if a == "KEYS" else str(decisions) if a == "DECISIONS" else a for a in command]
    code, out = invoke(*args, "--state", tmp_path / "typo")
    assert code == 2 and "no state folder at" in out and str(tmp_path / "typo") in out, out
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty").mkdir()
    code, out = invoke(*args, "--state", tmp_path / "empty")
    assert code == 2 and "no ledger at" in out, out
    assert list((tmp_path / "empty").iterdir()) == []


def test_audit_verify_on_an_empty_chain_says_so(tmp_path):
    from socialsearch.ledger import Ledger

    with Ledger.open(tmp_path / "state"):
        pass
    code, out = invoke("audit", "verify", "--state", tmp_path / "state")
    assert code == 2 and "is empty" in out and "ok" not in out


def test_drafts_list_and_review_import_through_the_cli(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    [a] = drafts_of(tmp_path)["101"]
    [d] = drafts_of(tmp_path)["461"]
    state = tmp_path / "state"
    code, out = invoke("drafts", "list", "--state", state, "--json")
    assert code == 0, out
    rows = json.loads(out)
    # rule, score and age are sealed for the municipality: the ledger holds none of them
    assert [(r["draft_id"], r["municipality"], r["rule"], r["score"], r["age"], r["decision"]) for r in rows] == [
        (a["draft_id"], "101", None, None, None, None), (d["draft_id"], "461", None, None, None, None)]
    assert set(rows[0]) == {"draft_id", "week", "municipality", "rule", "score", "age", "decision", "reviewer",
                            "decided_at"}
    code, out = invoke("drafts", "list", "--state", state)
    assert code == 0 and a["draft_id"] in out and "pending" in out

    decisions = {"format": "socialsearch-decisions", "version": 1, "week": WEEK, "municipality": "101",
                 "decisions": [{"draft_id": a["draft_id"], "decision": "approve",
                                "reason": "Kendt familie, tages op", "reviewer": "ABC"}]}
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(decisions), encoding="utf-8")
    code, out = invoke("review", "--state", state, "--import", path)
    assert code == 0 and "recorded 1 decision(s), 0 already recorded" in out, out
    code, out = invoke("review", "--state", state, "--import", path)
    assert code == 0 and "recorded 0 decision(s), 1 already recorded" in out, out
    rows = json.loads(invoke("drafts", "list", "--state", state, "--json", "--pending")[1])
    assert [r["draft_id"] for r in rows] == [d["draft_id"]]
    rows = json.loads(invoke("drafts", "list", "--state", state, "--json", "--municipality", "101")[1])
    assert [(r["decision"], r["reviewer"]) for r in rows] == [("approve", "ABC")]
    code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", a["draft_id"])
    assert code == 0, out

    # A file naming another municipality's draft is refused whole: nothing recorded.
    decisions["decisions"].append({"draft_id": d["draft_id"], "decision": "dismiss", "reason": "x",
                                   "reviewer": "ABC"})
    decisions["decisions"][0]["decision"] = "dismiss"
    path.write_text(json.dumps(decisions), encoding="utf-8")
    before = snapshot(state)
    code, out = invoke("review", "--state", state, "--import", path)
    assert code == 2 and "decision 2, draft_id" in out and "nothing was recorded" in out, out
    assert snapshot(state) == before
    # --import and --draft do not mix; --draft needs its companions.
    code, out = invoke("review", "--state", state, "--import", path, "--draft", a["draft_id"])
    assert code == 2 and "leave out --draft" in out
    code, out = invoke("review", "--state", state, "--draft", a["draft_id"], "--decision", "approve",
                       "--reason", "ok")
    assert code == 2 and "--reviewer" in out


def test_run_clock_is_injectable(scenario, tmp_path, keys, catalogue_file):
    from datetime import datetime

    import socialsearch
    from socialsearch.errors import UsageError
    from socialsearch.weeks import TZ, IsoWeek

    args = {"input_dir": scenario, "week": IsoWeek.parse(WEEK), "out_dir": tmp_path / "out",
            "state_dir": tmp_path / "state", "keys_dir": keys, "catalogue": catalogue_file}
    with pytest.raises(UsageError, match="has not ended yet"):
        socialsearch.run(**args, now=datetime(2026, 11, 22, 23, 59, tzinfo=TZ), new_state=True)  # Sunday evening of W47
    assert not (tmp_path / "state").exists() and not (tmp_path / "out").exists()
    # Monday 00:00: the week is over
    report = socialsearch.run(**args, now=datetime(2026, 11, 23, 0, 0, tzinfo=TZ), new_state=True)
    assert report.drafts == 2


def test_refused_extract_of_another_week_changes_no_byte(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    pseudo = tmp_path / "pseudo-w47"
    assert invoke("pseudonymise", "--input", scenario, "--out", pseudo, "--keys", keys, "--week", WEEK,
                  "--catalogue", catalogue_file)[0] == 0
    before = snapshot(tmp_path / "out", tmp_path / "state")
    code, out = run(pseudo, tmp_path, keys, catalogue_file, week="2026-W48")  # W47's extract, run as W48
    assert code == 2 and "2026-W47" in out, out
    assert snapshot(tmp_path / "out", tmp_path / "state") == before


def test_refused_missing_district_changes_no_byte(scenario, tmp_path, keys, catalogue_file):
    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    before = snapshot(tmp_path / "out", tmp_path / "state")
    (scenario / "incidents" / "FYN.csv").unlink()
    (scenario / "incident_persons" / "FYN.csv").unlink()
    code, out = run(scenario, tmp_path, keys, catalogue_file)
    assert code == 2 and "FYN" in out and "--absent-district" in out, out
    assert snapshot(tmp_path / "out", tmp_path / "state") == before


def test_the_ledger_holds_the_statistics_sealed_and_only_the_custodian_opens_them(scenario, tmp_path, keys,
                                                                                   catalogue_file):
    """What the station sealed for `stats` per draft: A (11, threshold, four districts) and D (7,
    immediate, FYN); the hub's ledger holds neither in clear, and stats needs the custodian's keys."""
    import sqlite3

    import polars as pl

    from socialsearch.crypto.keys import KeyStore
    from socialsearch.crypto.municipal import open_statistics

    assert run(scenario, tmp_path, keys, catalogue_file)[0] == 0
    state = tmp_path / "state"
    conn = sqlite3.connect(state / "ledger.sqlite")
    rows = conn.execute("SELECT d.draft_id, d.municipality, d.rule, d.age, d.statistics, r.key_id FROM drafts AS d "
                        "JOIN runs AS r USING (run_id) ORDER BY d.municipality").fetchall()
    conn.close()
    assert [(r[1], r[2], r[3]) for r in rows] == [("101", None, None), ("461", None, None)]
    store = KeyStore.load(keys)
    opened = open_statistics(pl.Series([r[4] for r in rows]).str.decode("base64"), store.subkey("vault", rows[0][5]),
                             pl.Series([r[0] for r in rows]),
                             pl.Struct({"ref": pl.String, "age": pl.Int64, "rule": pl.String,
                                        "categories": pl.List(pl.String), "districts": pl.List(pl.String)}))
    a, d = opened.to_list()
    assert (a["age"], a["rule"], a["districts"]) == (11, "threshold", ["KBH", "NJY", "OJY", "SSJ"])
    assert (d["age"], d["rule"], d["districts"]) == (7, "immediate", ["FYN"])
    code, out = invoke("stats", "--state", state, "--from", WEEK, "--to", WEEK, "--out", tmp_path / "s1")
    assert code == 2 and "--keys" in out and not (tmp_path / "s1").exists()
    code, out = invoke("stats", "--state", state, "--keys", keys, "--from", WEEK, "--to", WEEK,
                       "--out", tmp_path / "s2", "--by", "age_band")
    assert code == 0, out
    report = json.loads((tmp_path / "s2" / "stats.json").read_text(encoding="utf-8"))
    assert report["summary"]["drafts"] == "<5"  # two children: published only as small
    assert "age_band" in {t["name"] for t in report["tables"]}
