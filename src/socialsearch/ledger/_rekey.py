"""A re-keying's vaults: staged before the ledger commits, put in place after it.

``keys rekey`` writes each re-keyed vault next to the old one as ``<week>.vault.rekeyed`` and
records their sha256 in the ``rekey`` audit entry, in the same transaction that rewrites the
ledger's pseudonyms; only then does it rename them over the old vaults. Whatever instant a
process dies at, the next writer that opens the ledger (under the state lock) finds either

* staged files that the latest ``rekey`` entry names with the same sha256: the re-keying was
  committed, so they are renamed into place (the new world, complete); or
* staged files that no committed entry names: the re-keying never committed, so they are
  removed (the old world, untouched).

A read-only check (``audit verify``) refuses the first case until a writer has finished it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

from .._atomic import fsync_dir
from ..errors import LedgerError

__all__ = ["STAGED_SUFFIX", "committed_staged", "finish_rekey", "refuse_unfinished_rekey", "sha256_file", "staged"]

STAGED_SUFFIX = ".rekeyed"
VAULT_DIR = "vault"


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def staged(state: Path) -> list[Path]:
    """The staged vaults of an unfinished re-keying, if any."""
    folder = state / VAULT_DIR
    return sorted(folder.glob(f"*{STAGED_SUFFIX}")) if folder.is_dir() else []


def _latest_rekey(conn: sqlite3.Connection) -> dict[str, str]:
    row = conn.execute("SELECT payload FROM audit WHERE kind = 'rekey' ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return {}
    return {str(k): str(v) for k, v in dict(json.loads(row[0]).get("staged_vaults") or {}).items()}


def committed_staged(conn: sqlite3.Connection, state: Path) -> tuple[list[Path], list[Path]]:
    """The staged vaults split into (named by the latest committed ``rekey`` entry, the others)."""
    files = staged(state)
    if not files:
        return [], []
    recorded = _latest_rekey(conn)
    done = [p for p in files if recorded.get(p.name) == sha256_file(p)]
    return done, [p for p in files if p not in done]


def finish_rekey(conn: sqlite3.Connection, state: Path) -> int:
    """Finish or undo an interrupted re-keying (call under the state lock); returns how many
    vaults were put in place."""
    done, stale = committed_staged(conn, state)
    folder = state / VAULT_DIR
    if folder.is_dir():  # the temporary files of a staged vault whose writing was killed
        stale += sorted(folder.glob(f".*{STAGED_SUFFIX}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    for path in done:
        os.replace(path, path.with_name(path.name.removesuffix(STAGED_SUFFIX)))
    if done or stale:
        fsync_dir(state / VAULT_DIR)
    return len(done)


def refuse_unfinished_rekey(conn: sqlite3.Connection, state: Path) -> None:
    """Refuse to vouch for a state whose committed re-keying has not yet replaced its vaults."""
    done, _ = committed_staged(conn, state)
    if done:
        raise LedgerError(
            f"a re-keying of {state} was committed, but {len(done)} of its vaults were not yet put in place (the "
            f"process was stopped): finish it with `socialsearch keys rekey --keys KEYS --state {state}` "
            "(or any command that writes to this state folder), then verify again"
        )
