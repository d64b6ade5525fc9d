"""Interrupts and commit points: Ctrl-C (SIGINT) or SIGTERM before a command's commit point
cleans up and ends the command; after it, the command completes and reports success.

A command's commit point is the instant its work becomes durable: the ledger's ``COMMIT`` of
a run, a review, a re-keying or a re-identification, or the rename of a rotated keyset. The
CLI installs the handlers with :func:`handling`; the library marks the commit with
:func:`commit_point`: a signal that arrives before it (nothing was committed) raises
:class:`Interrupted`, which unwinds every ``finally`` and ``except BaseException`` clean-up; one
that arrives while it commits or after is noted, and the command finishes. (Python runs signal
handlers in the main thread between two bytecodes, whichever thread the kernel delivered the
signal to, so a flag set before the commit decides; blocking the signal would not, since the
native libraries' threads could still receive it.)
Without :func:`handling` (the library used from Python) the signals keep their default meaning.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Interrupted", "commit_point", "committed", "handling"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM before the commit point (a ``KeyboardInterrupt``, so ``except
    Exception`` never swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _State:
    handling = False
    committing = False
    committed = False
    deferred: int | None = None


_state = _State()


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _state.committed or _state.committing:
        _state.deferred = signum
        return
    raise Interrupted(signum)


@contextmanager
def handling() -> Iterator[None]:
    """Handle SIGINT and SIGTERM for the block as described above (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in _SIGNALS}
    _state.handling, _state.committing, _state.committed, _state.deferred = True, False, False, None
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _state.handling, _state.committed = False, False


def committed() -> bool:
    """Whether the running command has passed its commit point."""
    return _state.committed


def deferred() -> int | None:
    """The signal that arrived after the commit point, if any."""
    return _state.deferred


@contextmanager
def commit_point() -> Iterator[None]:
    """The block commits the command's work: an interrupt from here on no longer stops it."""
    if not _state.handling or threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.committing = True
    try:
        yield
        _state.committed = True
    finally:
        _state.committing = False
