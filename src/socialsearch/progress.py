"""Progress on long stages, for the person at the terminal.

Library stages that can take more than a few seconds report their progress here; the command
line decides whether anyone sees it. The display is a :mod:`rich` progress display on standard
error, shown only when standard error is a terminal and the user did not pass ``-q``: in a
pipe, a cron job, a log file or a test it is silent, and it never writes to standard output.

API
---
``stage(description, total=None)`` is a context manager that yields a step callback::

    from socialsearch import progress

    with progress.stage("pseudonymising persons", total=n_batches) as step:
        for batch in batches:
            ...                      # the work
            step()                   # one more done; step(5) for five
            # step.update(completed=k, total=n) to set the figures outright

    with progress.stage("reading the extracts"):   # no total: a spinner and the elapsed time
        ...

``track(iterable, description, total=None)`` wraps an iterable and steps once per item.
Stages nest: a stage opened inside another adds a line to the same display, so the CLI can
open "weekly search for 2026-W47" and ``station.pipeline``/``hub.pipeline`` can open their own stages
inside it. ``configure(enabled=..., console=...)`` is for the CLI (``-q`` turns progress off)
and for tests (a recording console); ``enabled=None`` (the default) means "when standard error
is a terminal".

Rules for callers: a description is fixed text naming the stage, with counts or a week at
most, **never a data value** (no CPR number, name, journal number, file content). When
progress is off, ``stage`` and ``track`` cost one attribute lookup per step.

Examples
--------
>>> with stage("counting", total=3) as step:
...     for _ in range(3):
...         step()
>>> list(track(["a", "b"], "letters"))
['a', 'b']
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console
from rich.errors import LiveError
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ._terminal import printable

__all__ = ["Step", "configure", "is_enabled", "stage", "track"]

_T = TypeVar("_T")


@dataclass
class _Settings:
    enabled: bool | None = None  # None: when the console is a terminal
    console: Console | None = None


_settings = _Settings()
_lock = threading.Lock()
_display: Progress | None = None
_depth = 0


def configure(*, enabled: bool | None = None, console: Console | None = None) -> None:
    """Turn progress on (``True``), off (``False``) or on-when-a-terminal (``None``).

    ``console`` replaces the standard-error console (tests pass a recording one).
    """
    _settings.enabled = enabled
    _settings.console = console


def _console() -> Console:
    return _settings.console or Console(stderr=True)


def is_enabled() -> bool:
    """Whether a stage opened now would be shown."""
    if _settings.enabled is False:
        return False
    if _settings.enabled is True:
        return True
    return bool(_console().is_terminal)


class Step:
    """The callback a stage yields: ``step()`` or ``step(n)`` advances, ``update`` sets."""

    __slots__ = ("_display", "_task")

    def __init__(self, display: Progress | None = None, task: TaskID | None = None) -> None:
        self._display = display
        self._task = task

    def __call__(self, advance: float = 1) -> None:
        if self._display is not None and self._task is not None:
            self._display.advance(self._task, advance)

    def update(self, *, completed: float | None = None, total: float | None = None) -> None:
        """Set how much is done and/or the total (for work whose size is learnt on the way)."""
        if self._display is not None and self._task is not None:
            self._display.update(self._task, completed=completed, total=total)


_SILENT = Step()


def _open_display() -> Progress | None:
    """The shared display, started by the outermost stage; None when another live display
    (a ``console.status`` of the caller's) is already on screen."""
    global _display
    if _display is None:
        display = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=_console(),
        )
        try:
            display.start()
        except LiveError:
            return None
        _display = display
    return _display


@contextmanager
def stage(description: str, total: float | None = None) -> Iterator[Step]:
    """Show ``description`` with a bar (``total`` given) or a spinner while the block runs.

    Yields a :class:`Step`; the line is marked done when the block ends (also on an error,
    which then propagates unchanged). Silent when progress is off.
    """
    global _display, _depth
    if not is_enabled():
        yield _SILENT
        return
    with _lock:
        display = _open_display()
        if display is None:
            task = None
        else:
            _depth += 1
            task = display.add_task(printable(description), total=total)
    if display is None or task is None:
        yield _SILENT
        return
    try:
        yield Step(display, task)
    finally:
        with _lock:
            shown = next((t for t in display.tasks if t.id == task), None)
            if shown is not None:
                done = shown.total if shown.total is not None else max(shown.completed, 1)
                display.update(task, total=done, completed=done)
            _depth -= 1
            if _depth == 0:
                display.stop()
                _display = None


def track(items: Iterable[_T], description: str, total: float | None = None) -> Iterator[_T]:
    """Yield ``items`` one by one inside a :func:`stage`, stepping once per item.

    ``total`` defaults to ``len(items)`` when it has one.
    """
    if total is None and hasattr(items, "__len__"):
        total = float(len(items))  # type: ignore[arg-type]
    with stage(description, total=total) as step:
        for item in items:
            yield item
            step()
