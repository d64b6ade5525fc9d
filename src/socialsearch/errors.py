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

Anything else escaping the CLI is an unexpected failure (exit code 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
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
]


EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2
"""Exit codes: success, an unexpected failure, bad usage or bad input."""


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
