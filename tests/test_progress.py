"""Progress display: shown on a terminal, silent elsewhere and with -q, stages nest."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console

from socialsearch import progress


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    progress.configure()


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=100, color_system=None), buffer


def test_shown_on_a_terminal_with_nested_stages() -> None:
    console, buffer = terminal()
    progress.configure(console=console)
    assert progress.is_enabled()
    with progress.stage("weekly search for 2026-W47"):
        with progress.stage("pseudonymising persons", total=4) as step:
            step()
            step(3)
        assert list(progress.track(range(3), "writing pages")) == [0, 1, 2]
    text = buffer.getvalue()
    for line in ("weekly search for 2026-W47", "pseudonymising persons", "writing pages", "100%"):
        assert line in text


def test_silent_when_not_a_terminal_and_when_quiet() -> None:
    buffer = io.StringIO()
    progress.configure(console=Console(file=buffer))
    assert not progress.is_enabled()
    with progress.stage("x", total=2) as step:
        step(2)
    console, buffer2 = terminal()
    progress.configure(enabled=False, console=console)
    with progress.stage("y") as step:
        step.update(completed=1, total=1)
    assert buffer.getvalue() == "" and buffer2.getvalue() == ""


def test_an_error_inside_a_stage_propagates_and_closes_the_display() -> None:
    console, _ = terminal()
    progress.configure(console=console)
    with pytest.raises(ValueError, match="boom"), progress.stage("failing"):
        raise ValueError("boom")
    with progress.stage("next") as step:  # a new display opens: nothing was left running
        step()


def test_yields_to_another_live_display() -> None:
    console, _ = terminal()
    progress.configure(console=console)
    with console.status("the caller's own spinner"), progress.stage("inside") as step:
        step()  # silently does nothing
