"""The caseworker's page in a real browser: headless Chromium fills in decisions, downloads
``decisions.json`` and prints the page to PDF.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the
``selenium`` package of the ``test`` extra; without them every test here is skipped with the
reason. The page is the hand-made household of ``tests/test_drafts.py``: one immediate draft
and three siblings who share two events.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socialsearch.hub.drafts import write_municipality

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.print_page_options import PrintOptions  # noqa: E402
from test_drafts import household_docs  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NO_BROWSER = ("no headless Chromium with its driver on this machine: install Debian's chromium and "
              "chromium-driver (apt-get install -y chromium chromium-driver), as .ci/run does")


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[Any]:
    binary = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(NO_BROWSER)
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,900", "--lang=da"):
        options.add_argument(argument)
    options.set_capability("unhandledPromptBehavior", "accept")  # a leave warning never stalls a test
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
    })
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as exc:
        pytest.skip(f"{NO_BROWSER} ({exc.msg or type(exc).__name__})")
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


def forget(driver: Any, folder: Path) -> None:
    """Empty the local storage of file: pages (where the page keeps decisions) from a blank page."""
    blank = folder / "blank.html"
    blank.write_text("<!DOCTYPE html><title>blank</title>", encoding="utf-8")
    driver.get(blank.as_uri())
    driver.execute_script("window.localStorage.clear();")


@pytest.fixture
def page(browser: Any, tmp_path: Path, downloads: Path) -> Any:
    """The household page, freshly loaded with nothing remembered; the downloads folder emptied."""
    for old in downloads.iterdir():
        old.unlink()
    folder = write_municipality(tmp_path / "out" / "2026-W47", "101", household_docs(), week="2026-W47",
                                lookback_weeks=26)
    forget(browser, tmp_path)
    browser.get((folder / "drafts.html").as_uri())
    return browser


def fill(driver: Any, number: int, decision: str | None, reason: str, reviewer: str) -> None:
    form = driver.find_element(By.CSS_SELECTOR, f'fieldset.decision[data-number="{number}"]')
    if decision is not None:
        form.find_element(By.CSS_SELECTOR, f'input[value="{decision}"]').click()
    form.find_element(By.TAG_NAME, "textarea").send_keys(reason)
    form.find_element(By.CSS_SELECTOR, "input.initials").send_keys(reviewer)


def downloaded(folder: Path, name: str = "decisions.json", patience: float = 20.0) -> Path:
    """Wait for Chromium to finish writing the download (a correctness wait, not a speed check)."""
    deadline = time.monotonic() + patience
    target = folder / name
    while time.monotonic() < deadline:
        if target.is_file() and not list(folder.glob("*.crdownload")):
            return target
        time.sleep(0.1)
    raise AssertionError(f"no {name} in {folder}: {sorted(p.name for p in folder.iterdir())}")


def status(driver: Any) -> str:
    return str(driver.find_element(By.ID, "status").text)


def test_decisions_json_from_the_page(page: Any, downloads: Path) -> None:
    fill(page, 1, "approve", "Straks-kategori; barnet skal vurderes i dag.", "abc")
    fill(page, 2, "dismiss", "Kendt sag, familien har allerede støtte.", "ABC")
    assert page.find_element(By.ID, "progress").text == "2 af 4 udkast afgjort."
    page.find_element(By.ID, "download").click()
    data = json.loads(downloaded(downloads).read_text(encoding="utf-8"))
    assert data == {
        "format": "socialsearch-decisions",
        "version": 1,
        "week": "2026-W47",
        "municipality": "101",
        "decisions": [
            {"draft_id": "DZ", "decision": "approve", "reason": "Straks-kategori; barnet skal vurderes i dag.",
             "reviewer": "ABC"},
            {"draft_id": "DS1", "decision": "dismiss", "reason": "Kendt sag, familien har allerede støtte.",
             "reviewer": "ABC"},
        ],
    }
    assert list(data) == ["format", "version", "week", "municipality", "decisions"]
    assert all(list(d) == ["draft_id", "decision", "reason", "reviewer"] for d in data["decisions"])
    assert "decisions.json er hentet med 2 beslutninger" in status(page)


@pytest.mark.parametrize("reason", ["Faren har CPR 010190-1234", "se 0101901234", "tlf. 01 01 90 12 34"])
def test_a_reason_with_ten_digits_is_refused(page: Any, downloads: Path, reason: str) -> None:
    fill(page, 1, "approve", reason, "ABC")
    form_error = page.find_element(By.CSS_SELECTOR, 'fieldset.decision[data-number="1"] [data-role=error]').text
    assert "ti cifre" in form_error  # shown while typing
    page.find_element(By.ID, "download").click()
    assert "Beslutningsfilen er ikke lavet" in status(page) and "CPR-nummer" in status(page)
    time.sleep(0.5)  # give a (wrong) download the chance to appear
    assert not any(downloads.iterdir())


def test_dates_and_times_in_a_reason_are_not_taken_for_a_cpr_number(page: Any, downloads: Path) -> None:
    fill(page, 1, "dismiss", "Hændelsen 2026-11-17 10:00 er allerede kendt; tlf. 12 34 56 78.", "ABC")
    page.find_element(By.ID, "download").click()
    data = json.loads(downloaded(downloads).read_text(encoding="utf-8"))
    assert data["decisions"][0]["reason"] == "Hændelsen 2026-11-17 10:00 er allerede kendt; tlf. 12 34 56 78."


def test_incomplete_decisions_are_refused_with_what_to_fix(page: Any, downloads: Path) -> None:
    fill(page, 2, None, "Begrundelse uden valg", "")
    fill(page, 3, "approve", "", "A")
    page.find_element(By.ID, "download").click()
    text = status(page)
    assert "barn 2: vælg godkend eller afvis; skriv jeres initialer" in text
    assert "barn 3: skriv en begrundelse; skriv jeres initialer" in text
    page.find_element(By.ID, "download").click()
    assert not any(downloads.iterdir())


def test_no_decision_yet(page: Any, downloads: Path) -> None:
    page.find_element(By.ID, "download").click()
    assert "Der er ingen beslutninger endnu" in status(page)
    assert not any(downloads.iterdir())


def test_the_pages_own_script_runs_under_its_csp_and_nothing_else_does(page: Any, downloads: Path) -> None:
    policy = page.find_element(By.CSS_SELECTOR, 'meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    assert "'unsafe-inline'" not in policy and "script-src 'sha256-" in policy
    # a script added to the page (as injected markup would be) is refused by the policy ...
    injected = page.execute_script("""
        window.injected = false;
        const s = document.createElement('script');
        s.textContent = 'window.injected = true;';
        document.body.appendChild(s);
        return window.injected;
    """)
    assert injected is False
    # ... while the page's own script, allowed by its hash, works: progress, checks, the download
    fill(page, 1, "approve", "Relevant.", "KB")
    assert page.find_element(By.ID, "progress").text == "1 af 4 udkast afgjort."
    page.find_element(By.ID, "download").click()
    assert json.loads(downloaded(downloads).read_text(encoding="utf-8"))["decisions"][0]["reviewer"] == "KB"


def set_value(driver: Any, number: int, selector: str, value: str) -> None:
    """Put text a keyboard cannot type (control characters, look-alikes) into a field, as a paste would."""
    driver.execute_script("""
        const el = document.querySelector(`fieldset.decision[data-number="${arguments[0]}"] ${arguments[1]}`);
        el.value = arguments[2];
        el.dispatchEvent(new Event('input', {bubbles: true}));
    """, number, selector, value)


@pytest.mark.parametrize(("reason", "reviewer", "message"), [
    ("ok \x1b]0;titel\x07", "KB", "usynligt styretegn"),
    ("ok \u202egnidnif", "KB", "usynligt styretegn"),
    ("ok", "\u0410\u0412\u0421", "initialer (2–6 bogstaver"),  # Cyrillic look-alikes of ABC
    ("x" * 2001, "KB", "for lang (højst 2000 tegn)"),
])
def test_the_page_checks_with_the_librarys_schema(page: Any, downloads: Path, reason: str, reviewer: str,
                                                  message: str) -> None:
    page.find_element(By.CSS_SELECTOR, 'fieldset.decision[data-number="1"] input[value="dismiss"]').click()
    set_value(page, 1, "textarea", reason)
    set_value(page, 1, "input.initials", reviewer)
    page.find_element(By.ID, "download").click()
    assert "Beslutningsfilen er ikke lavet" in status(page) and message in status(page)
    time.sleep(0.5)  # give a (wrong) download the chance to appear
    assert not any(downloads.iterdir())


def test_the_page_counts_characters_as_the_library_does(page: Any, downloads: Path) -> None:
    reason = "Glad familie \U0001F600 " + "x" * 1985  # 2,000 characters (an emoji is one), 2,001 UTF-16 units
    assert len(reason) == 2000
    page.find_element(By.CSS_SELECTOR, 'fieldset.decision[data-number="1"] input[value="dismiss"]').click()
    set_value(page, 1, "textarea", reason)
    set_value(page, 1, "input.initials", "KB")
    page.find_element(By.ID, "download").click()
    data = json.loads(downloaded(downloads).read_text(encoding="utf-8"))
    assert data["decisions"][0]["reason"] == reason


def leave_warning(driver: Any) -> bool:
    """Whether the page asks to stay when it is left (its beforeunload handler cancels the event)."""
    return bool(driver.execute_script(
        "const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e); return e.defaultPrevented;"))


def test_decisions_are_kept_in_local_storage_and_leaving_warns_until_downloaded(
    page: Any, downloads: Path
) -> None:
    assert not leave_warning(page)  # nothing entered yet
    fill(page, 1, "approve", "Straks-kategori.", "abc")
    fill(page, 3, "dismiss", "Kendt sag.", "KB")
    assert leave_warning(page)
    keys = page.execute_script("return Object.keys(window.localStorage).sort();")
    assert keys == ["socialsearch:2026-W47:101:draft:DS2", "socialsearch:2026-W47:101:draft:DZ"]
    page.refresh()  # the page closed by mistake and opened again: everything comes back
    first = page.find_element(By.CSS_SELECTOR, 'fieldset.decision[data-number="1"]')
    assert first.find_element(By.CSS_SELECTOR, 'input[value="approve"]').is_selected()
    assert first.find_element(By.TAG_NAME, "textarea").get_attribute("value") == "Straks-kategori."
    assert page.find_element(By.ID, "progress").text == "2 af 4 udkast afgjort."
    assert leave_warning(page)  # still not downloaded
    page.find_element(By.ID, "download").click()
    data = json.loads(downloaded(downloads).read_text(encoding="utf-8"))
    assert [d["draft_id"] for d in data["decisions"]] == ["DZ", "DS2"]
    assert not leave_warning(page)  # everything on the page is in the file
    fill(page, 2, "dismiss", "Ny vurdering.", "KB")
    assert leave_warning(page)  # a decision the file does not hold


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def test_print_one_draft_per_page_nothing_clipped(page: Any) -> None:
    # What print shows: no form, no toolbar, a paper decision box; each unit but the first breaks.
    page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        shown = page.execute_script("""
            const visible = (sel) => [...document.querySelectorAll(sel)].filter(e => e.offsetParent !== null).length;
            const breaks = [...document.querySelectorAll('article.draft, section.household')]
                .map(e => getComputedStyle(e).breakBefore);
            return {form: visible('fieldset.decision'), toolbar: visible('.toolbar'),
                    paper: visible('.paper-decision'), breaks: breaks};
        """)
        assert shown == {"form": 0, "toolbar": 0, "paper": 4, "breaks": ["auto", "page", "auto", "page", "page"]}
        # Nothing clipped at the printable width of A4 (210 mm less 2 x 12 mm margins = 186 mm).
        page.set_window_size(int(186 / 25.4 * 96) + 16, 1000)
        overflow = page.execute_script("""
            const out = [];
            if (document.documentElement.scrollWidth > document.documentElement.clientWidth) out.push('page');
            document.querySelectorAll('table, dl, .why, .household, .next, .paper-decision').forEach((e, i) => {
                if (e.scrollWidth > e.clientWidth + 1) out.push(e.tagName + '#' + i);
            });
            return out;
        """)
        assert overflow == []
    finally:
        page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        page.set_window_size(1100, 900)
    options = PrintOptions()
    options.page_width, options.page_height = 21.0, 29.7
    pdf = base64.b64decode(page.print_page(options))
    assert pdf.startswith(b"%PDF")
    # Four drafts, four pages: the first draft shares page 1 with the introduction (no blank
    # first page), every later draft (the household heading with its first child) starts a page.
    assert pdf_pages(pdf) == 4


def test_decisions_from_a_real_run_go_back_through_review_import(
    browser: Any, downloads: Path, scenario: Path, catalogue_file: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from socialsearch.cli import cli

    runner = CliRunner()
    keys, out, state = tmp_path / "keys", tmp_path / "out", tmp_path / "state"
    assert runner.invoke(cli, ["keys", "init", "--keys", str(keys)]).exit_code == 0
    result = runner.invoke(cli, ["run", "--input", str(scenario), "--week", "2026-W47", "--out", str(out),
                                 "--state", str(state), "--keys", str(keys), "--catalogue", str(catalogue_file),
                                 "--new-state"])
    assert result.exit_code == 0, result.output
    for old in downloads.iterdir():
        old.unlink()
    folder = out / "2026-W47" / "101"
    forget(browser, tmp_path)
    browser.get((folder / "drafts.html").as_uri())
    shown = browser.find_element(By.CSS_SELECTOR, 'fieldset.decision[data-number="1"]').get_attribute("data-draft-id")
    fill(browser, 1, "approve", "Relevant, sagen oprettes.", "KB")
    browser.find_element(By.ID, "download").click()
    decisions = downloaded(downloads)
    data = json.loads(decisions.read_text(encoding="utf-8"))
    assert data["week"] == "2026-W47" and data["municipality"] == "101"
    assert data["decisions"] == [{"draft_id": shown, "decision": "approve", "reason": "Relevant, sagen oprettes.",
                                  "reviewer": "KB"}]
    assert shown in {d["draft_id"] for d in json.loads((folder / "drafts.json").read_text(encoding="utf-8"))}
    if not any("--import" in p.opts for p in cli.commands["review"].params):
        pytest.skip("`socialsearch review --import` is not in this build; the downloaded file was checked only")
    for _ in range(2):  # importing the same file twice records it once
        result = runner.invoke(cli, ["review", "--state", str(state), "--import", str(decisions)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["reidentify", "--state", str(state), "--keys", str(keys), "--draft", shown])
    assert result.exit_code == 0, result.output  # approved through the page: the custodian may re-identify


@pytest.mark.parametrize("paper", [(21.0, 29.7), (21.59, 27.94)], ids=["A4", "Letter"])
def test_the_council_report_prints_without_a_page_that_ends_on_a_heading(
    browser: Any, tmp_path: Path, paper: tuple[float, float]
) -> None:
    """Every heading shares an unbreakable block with what it heads; Chromium prints stats.html to
    PDF and pdftotext reads each page: no heading is left at the foot of a page, or alone on it."""
    import subprocess
    from html import unescape

    from test_statistics import LEDGER, _frames, draft_id

    from socialsearch.ledger import Ledger
    from socialsearch.statistics import stats

    state = tmp_path / "state"
    with Ledger.open(state) as ledger:
        for week in sorted({row[0] for row in LEDGER}):
            ledger.runs.record(week, *_frames(week))
        for week, child, _, decisions, *_ in LEDGER:
            for decision in decisions:
                ledger.reviews.record(draft_id(week, child), decision, "begrundelse", "ABC")
    report = stats(state, from_week="2026-W39", to_week="2026-W43", out_dir=tmp_path / "out",
                   by=("municipality", "district", "category", "age_band", "rule", "decision", "cross_district"))
    html = report.paths["html"].read_text(encoding="utf-8")
    headings = {" ".join(unescape(re.sub(r"<[^>]+>", "", h)).split())
                for h in re.findall(r"<h[1-3][^>]*>(.*?)</h[1-3]>", html, re.DOTALL)}
    browser.get(report.paths["html"].as_uri())
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        loose = browser.execute_script("""
            return [...document.querySelectorAll('h2, h3')].filter(h => {
                const block = h.parentElement;
                return !h.nextElementSibling || getComputedStyle(h).breakAfter !== 'avoid'
                    || block === document.body || getComputedStyle(block).breakInside !== 'avoid';
            }).map(h => h.textContent);
        """)
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert loose == []
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("no pdftotext on this machine: install Debian's poppler-utils, as .ci/run does")
    options = PrintOptions()
    options.page_width, options.page_height = paper
    pdf = tmp_path / "stats.pdf"
    pdf.write_bytes(base64.b64decode(browser.print_page(options)))
    pages = subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True,
                           text=True).stdout.split("\f")
    pages = [[" ".join(line.split()) for line in page.splitlines() if line.strip()] for page in pages]
    pages = [lines for lines in pages if lines]
    assert len(pages) >= 3
    for number, lines in enumerate(pages, start=1):
        assert lines[-1] not in headings, f"page {number} ends on the heading {lines[-1]!r}"
        assert not set(lines) <= headings, f"page {number} holds only headings: {lines}"
