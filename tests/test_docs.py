"""The docs a user reads: no reference to files outside the repository, and runnable examples run.

Which examples run (keep them light: seconds, never national scale):

* every ```` ```python ```` block in ``docs/*.md``, in order, in one namespace per page, in a
  temporary folder — unless the line before the block is ``<!-- doc-test: skip (why) -->``
  (a fragment whose frames come from elsewhere, or national-scale work);
* a ```` ```sh ```` / ```` ```bash ```` block only when the line before it is
  ``<!-- doc-test: run -->``; it runs with ``bash -euo pipefail`` in the same temporary folder,
  before the page's later blocks, with this environment's ``socialsearch`` on ``PATH``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: in code, "#555" is a colour and an absolute path may be a test's fixture; "issue 12" still counts
SOURCE_EXEMPT = {"a developer's machine", "an issue number"}
SOURCE_ISSUE = re.compile(r"\b[Ii]ssues?\s*#?\d+")
#: the sources a reader of the code reads: docstrings and comments cite docs/, never the outside
SOURCES = sorted(
    p for p in [*(ROOT / "src").rglob("*.py"), *(ROOT / "src").rglob("*.pyi"), *(ROOT / "rust").rglob("*.rs"),
                *(ROOT / "src").rglob("*.j2")]
    if "__pycache__" not in p.parts
)
DOCS = sorted((ROOT / "docs").glob("*.md"))

# What a reader of the repository does not have: the product owner's design, developer notes,
# the issue tracker, somebody's own machine.
OUTSIDE = {
    "the design document": re.compile(r"DESIGN(?:\.md|\s*§)"),
    "the style guide": re.compile(r"\bSTYLE\.md"),
    "developer notes": re.compile(r"(?<![\w.-])notes/"),
    "the seed documents": re.compile(r"(?<![\w.-])seeds/"),
    "an issue number": re.compile(r"\b[Ii]ssues?\s*#?\d+|(?<![\w&/#])#\d+\b"),
    "a developer's machine": re.compile(r"(?<![\w.])/(?:work|home|root|Users)/"),
}
LINK = re.compile(r"\]\(([^)\s]+)\)")
BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*doc-test:\s*(run|skip)\b[^>]*-->\s*$")


def test_there_are_docs():
    assert len(PAGES) > 5 and (ROOT / "docs" / "caseworker.md") in DOCS


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_reference_outside_the_repository(page: Path):
    text = page.read_text(encoding="utf-8")
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in OUTSIDE.items():
            if pattern.search(line):
                found.append(f"{page.name}:{number}: {what}: {line.strip()}")
    assert found == []


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_refers_outside_the_repository(source: Path):
    """A docstring or comment that cites the design document or an issue sends its reader nowhere."""
    found = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        for what, pattern in OUTSIDE.items():
            if what not in SOURCE_EXEMPT and pattern.search(line):
                found.append(f"{source.relative_to(ROOT)}:{number}: {what}: {line.strip()}")
        if SOURCE_ISSUE.search(line):
            found.append(f"{source.relative_to(ROOT)}:{number}: an issue number: {line.strip()}")
    assert found == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_point_into_the_repository(page: Path):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:|^#", target):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert broken == []


def examples(page: Path) -> list[tuple[int, str, str]]:
    """(line, kind, code) of the blocks of ``page`` that run: kind "python" or "sh"."""
    text = page.read_text(encoding="utf-8")
    out = []
    for block in BLOCK.finditer(text):
        line = text.count("\n", 0, block.start()) + 1
        before = text[: block.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        kind = block.group(1)
        if kind == "python" and not (marker and marker.group(1) == "skip"):
            out.append((line, "python", block.group(2)))
        elif kind in ("sh", "bash") and marker and marker.group(1) == "run":
            out.append((line, "sh", block.group(2)))
    return out


RUNNABLE = [page for page in DOCS if examples(page)]


def test_the_markers_are_used():
    """A misspelt marker would silently skip or run a block."""
    for page in PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            if "doc-test" in line:
                assert MARKER.search(line), f"{page.name}: {line}"


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.name)
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    namespace: dict[str, object] = {"__name__": f"doc_{page.stem}"}
    for line, kind, code in examples(page):
        where = f"{page.name}:{line}"
        if kind == "python":
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own documentation
        else:
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, f"{where}: {proc.stderr[-2000:]}"


def test_a_broken_example_fails(tmp_path: Path):
    """The runner is not a no-op: a page whose example raises makes the test fail."""
    page = tmp_path / "broken.md"
    page.write_text("```python\nraise RuntimeError('stale example')\n```\n\n<!-- doc-test: skip (fragment) -->\n"
                    "```python\nundefined_name\n```\n\n<!-- doc-test: run -->\n```sh\nfalse\n```\n", encoding="utf-8")
    found = examples(page)
    assert [(kind, code.strip()) for _, kind, code in found] == [
        ("python", "raise RuntimeError('stale example')"), ("sh", "false")]
    with pytest.raises(RuntimeError, match="stale example"):
        exec(compile(found[0][2], "broken.md", "exec"), {})
