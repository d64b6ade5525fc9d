"""The exception tree of socialsearch.

Every error a user can cause derives from :class:`SocialsearchError`; its message is
written for the person at the terminal (what went wrong, where, how to fix it) and never
contains a CPR number, a name, a journal number or a secret.

::

    SocialsearchError                 exit code 2 unless stated
    ├── UsageError                    bad arguments (week format, missing folder, ...)
    ├── InputError                    an extract breaks the input contract (file, row, column)
    ├── CatalogueError                configs/event_codes.toml is invalid (all problems at once)
    ├── KeyStoreError                 keys missing, unreadable, too permissive, unknown key id
    ├── VaultError                    a vault cannot be opened or is damaged
    ├── LedgerError                   the ledger refuses an operation (order of weeks, unknown draft)
    │   └── StateLockedError          another run holds the state lock
    └── AuditError                    the audit log's hash chain does not verify

Foreseeable faults of the machine rather than of the user (a full disk, a read-only folder, a
path that is not a regular file, input nested too deeply or too large for memory) are not
raised as these classes where they happen: :func:`fault_message` turns them into one sentence
that names the path, and the CLI exits with code 2 (one place, ``cli.py``'s root group). An
interrupt (SIGINT, SIGTERM) before a command's commit point exits 128 + the signal (130 for
Ctrl-C) after the command cleaned up; after it, the command completes.

Anything else escaping the CLI is an unexpected failure (exit code 1).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "AuditError",
    "CatalogueError",
    "InputError",
    "InputProblem",
    "KeyStoreError",
    "LedgerError",
    "SocialsearchError",
    "StateLockedError",
    "UsageError",
    "VaultError",
    "fault_message",
]


EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2
"""Exit codes: success, an unexpected failure, bad usage or bad input."""
EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (SIGINT) before the commit point: 128 + the signal number (SIGTERM: 143)."""


class SocialsearchError(Exception):
    """Root of all errors a user can cause; the CLI turns them into exit code 2."""

    exit_code: int = EXIT_USAGE


class UsageError(SocialsearchError):
    """Bad arguments: a malformed week, a missing folder, contradictory options."""


@dataclass(frozen=True)
class InputProblem:
    """One violation of the input contract, located as precisely as possible.

    ``row`` is the 1-based row of a table without lines (Parquet, a frame), ``line`` the line
    of a text file as an editor counts it (a CSV file's header is line 1, its first data row
    line 2); both are ``None`` when the problem concerns the whole file or column. ``value``
    describes what was found and is never a cell of an extract: a shifted column can put a CPR
    number, a name, a birth date or a journal number anywhere, so a cell is described by its
    shape ("a 10-character value of digits and '-'"). It may also be a fact about a file that
    is not data (a manifest's version number).

    Examples
    --------
    >>> print(InputProblem("x.csv", "registered_at", "a date-time", 7, "a 10-character value of digits"))
    x.csv, row 7, column 'registered_at': expected a date-time (found a 10-character value of digits)
    """

    file: str
    column: str | None
    expected: str
    row: int | None = None
    value: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        elif self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        found = f" (found {self.value})" if self.value is not None else ""
        return f"{where}: expected {self.expected}{found}"


class InputError(SocialsearchError):
    """An extract breaks the input contract; carries every problem found."""

    def __init__(self, problems: list[InputProblem] | InputProblem, *, limit: int = 20) -> None:
        self.problems = [problems] if isinstance(problems, InputProblem) else list(problems)
        shown = self.problems[:limit]
        lines = [str(p) for p in shown]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more problems")
        count = f"{len(self.problems)} problems" if len(self.problems) > 1 else "1 problem"
        super().__init__(f"invalid input ({count}):\n  " + "\n  ".join(lines))

    @classmethod
    def single(
        cls,
        file: str | Path,
        column: str | None,
        expected: str,
        row: int | None = None,
        value: str | None = None,
    ) -> InputError:
        """Build an error holding one problem."""
        return cls(InputProblem(str(file), column, expected, row, value))


class CatalogueError(SocialsearchError):
    """The event-code catalogue is invalid; the message lists every problem."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        super().__init__(
            f"{self.path}: {len(self.problems)} problem(s) in the catalogue:\n  "
            + "\n  ".join(self.problems)
        )


class KeyStoreError(SocialsearchError):
    """Keys are missing, unreadable, readable by others, or a key id is unknown."""


class VaultError(SocialsearchError):
    """A sealed vault cannot be opened (wrong key, damaged file, unknown draft)."""


class LedgerError(SocialsearchError):
    """The ledger refuses an operation (an earlier week after a later one, unknown draft)."""


class StateLockedError(LedgerError):
    """Another run holds the lock on the state folder."""


class AuditError(SocialsearchError):
    """The audit log does not verify: an entry was changed, removed or reordered."""


# --- foreseeable faults of the machine -------------------------------------------------------

_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_SQLITE = (
    ("database or disk is full", errno.ENOSPC),
    ("readonly database", errno.EROFS),
    ("unable to open database file", errno.EACCES),
    ("disk i/o error", errno.EIO),
)


def _errno_sentence(code: int, where: str) -> str | None:
    """The sentence for an ``errno`` at ``where``, or ``None`` for one that is not foreseeable."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device of {where} (or the disk quota is used up): free space and run "
                "the command again")
    if code == errno.EROFS:
        return f"{where} is on a read-only file system: give a writable folder"
    if code in (errno.EACCES, errno.EPERM):
        return (f"permission denied for {where}: the folder is read-only or belongs to another user; "
                "give a folder this user may write")
    if code == errno.ENOENT:
        return f"no such file or folder: {where} (check the path)"
    if code == errno.EISDIR:
        return f"{where} is a folder, not a regular file"
    if code == errno.ENOTDIR:
        return f"{where} is not a folder (a part of the path is a file)"
    if code == errno.EFBIG:
        return f"{where}: file too large for the file system"
    if code == errno.EIO:
        return f"input/output error at {where}: the disk or the network file system failed; check it"
    if code == errno.ELOOP:
        return f"{where}: too many levels of symbolic links"
    return None


def fault_message(exc: BaseException, *, written: Sequence[Path] = (), read: Sequence[Path] = (),
                  ledger: Path | None = None) -> str | None:
    """One sentence for a foreseeable fault of the machine, naming the path; ``None`` for anything else.

    ``written``/``read`` are the folders and files the command writes and reads (the most likely
    first), used where the exception does not name its own path; ``ledger`` is the ledger file
    for SQLite's errors. The sentence never quotes the exception's text beyond its error number:
    a parser's message may hold a cell.

    Examples
    --------
    >>> import errno
    >>> print(fault_message(OSError(errno.ENOSPC, "No space left on device", "/state/ledger.sqlite")))
    no space left on the device of /state/ledger.sqlite (or the disk quota is used up): free space and run \
the command again
    >>> fault_message(ValueError("a bug")) is None
    True
    """
    out = str(written[0]) if written else "the output folder"
    into = str(read[0]) if read else "the input"
    if isinstance(exc, OSError) and exc.errno is not None:
        where = exc.filename if exc.filename is not None else (into if exc.errno == errno.ENOENT else out)
        return _errno_sentence(exc.errno, str(where))
    name = type(exc).__module__.split(".")[0]
    if name == "sqlite3":
        text = str(exc).lower()
        where = str(ledger) if ledger is not None else out
        if "file is not a database" in text:
            return f"{where} is not a ledger (not an SQLite database): give the state folder of the weekly run"
        for needle, code in _SQLITE:
            if needle in text:
                return _errno_sentence(code, where)
        return None
    if name == "polars":
        found = _OS_ERROR.search(str(exc))
        if found is not None:
            code = int(found.group(1))
            return _errno_sentence(code, into if code in (errno.ENOENT, errno.EACCES, errno.EISDIR) else out)
        return None
    if isinstance(exc, RecursionError):
        return f"{into}: nested too deeply to read (a file the command reads is damaged or not what it expects)"
    if isinstance(exc, MemoryError):
        return f"{into}: too large to read in the memory of this machine (a file the command reads is too large)"
    return None
