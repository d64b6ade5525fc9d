"""The state lock: one writer per state folder, released by the kernel however the process ends."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import LedgerError, StateLockedError

__all__ = ["LOCK_FILE", "holds_lock", "lock_state", "lock_unless_held", "missing_state"]

LOCK_FILE = "lock"

_held: dict[Path, int] = {}
_held_guard = threading.Lock()


def missing_state(state: Path) -> LedgerError:
    """The error for a state folder that does not exist where one must."""
    return LedgerError(
        f"no state folder at {state}: give the state folder of the weekly run "
        "(nothing was created)"
    )


@contextmanager
def lock_state(state_dir: str | os.PathLike[str], *, create: bool = True) -> Iterator[Path]:
    """Hold the exclusive lock on a state folder (``STATE/lock``) for the ``with`` block.

    The lock is an ``fcntl.flock`` on an open file, so the kernel releases it when the process
    dies, however it dies: a killed run never leaves a stale lock. Any second attempt — from
    another process or from this one — gets :class:`~socialsearch.errors.StateLockedError`
    at once. (:meth:`~socialsearch.ledger.Ledger.open` inside the block uses the lock already
    held.) With ``create=False`` a missing state folder is a
    :class:`~socialsearch.errors.LedgerError` instead of being created.

    Examples
    --------
    >>> import tempfile
    >>> from socialsearch.errors import StateLockedError
    >>> state = tempfile.mkdtemp()
    >>> with lock_state(state):
    ...     try:
    ...         with lock_state(state):
    ...             pass
    ...     except StateLockedError:
    ...         print("a second holder is refused at once")
    a second holder is refused at once
    """
    state = Path(state_dir)
    if create:
        state.mkdir(parents=True, exist_ok=True)
    elif not state.is_dir():
        raise missing_state(state)
    path = (state / LOCK_FILE).resolve()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StateLockedError(
                f"state folder {state} is locked by another run (pid {holder}); wait for it to "
                "finish, or check that no other socialsearch process uses this state folder"
            ) from None
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        with _held_guard:
            _held[path] = _held.get(path, 0) + 1
        try:
            yield state
        finally:
            with _held_guard:
                _held[path] -= 1
                if not _held[path]:
                    del _held[path]
            os.ftruncate(fd, 0)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def holds_lock(state_dir: Path) -> bool:
    """Whether this process holds the lock of ``state_dir`` (through :func:`lock_state`)."""
    with _held_guard:
        return (state_dir / LOCK_FILE).resolve() in _held


@contextmanager
def lock_unless_held(state_dir: Path) -> Iterator[None]:
    """Take the state lock for the block, unless this process already holds it."""
    if holds_lock(state_dir):
        yield
    else:
        with lock_state(state_dir):
            yield
