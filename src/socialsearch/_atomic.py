"""Atomic file writes: a reader (or a re-run after a crash) sees the old file or the new one, never half.

Each write goes to a temporary file in the *same* folder (so the rename cannot cross a file
system), is flushed and ``fsync``-ed, renamed over the target with :func:`os.replace` (atomic on
POSIX), and then the folder itself is ``fsync``-ed so the rename survives a power cut.

A process killed mid-write (SIGKILL) can leave a temporary file named ``.<name>.<random>.tmp``
next to the target; the target itself is untouched. :func:`remove_stale_tmp` cleans those up
and is safe to call at the start of a run that holds the state lock.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_json_atomic(d / "summary.json", {"drafts": 3}).read_text()
'{\\n  "drafts": 3\\n}\\n'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "fsync_dir",
    "json_text",
    "remove_stale_tmp",
    "replacing",
    "write_bytes_atomic",
    "write_files_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

_TMP_SUFFIX = ".tmp"
_umask_lock = threading.Lock()


def _default_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 minus the process umask."""
    with _umask_lock:  # os.umask can only be read by setting it
        mask = os.umask(0o077)
        os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """``fsync`` a folder so that renames and new entries in it are durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically and durably; returns the path.

    Parameters
    ----------
    path
        The target file; missing parent folders are created.
    data
        The complete new content.
    mode
        Permission bits of the new file (e.g. ``0o600`` for secrets); default: as ``open()``
        would create it under the current umask. The bits are set on the temporary file before
        it is renamed, so the target never exists with looser permissions.
    """
    with replacing(path, mode=mode) as tmp, tmp.open("wb") as handle:
        handle.write(data)
    return Path(path)


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends, the file written there is
    fsynced and renamed over ``path`` and the folder fsynced. On any error it is removed and
    ``path`` is untouched. Use it for writers that want a path (e.g. ``write_parquet``).
    """
    with _replaced(path, mode=mode) as tmp:
        yield tmp
    fsync_dir(Path(path).parent)


@contextlib.contextmanager
def _replaced(path: str | os.PathLike[str], *, mode: int | None) -> Iterator[Path]:
    """:func:`replacing` without the folder's ``fsync``: the caller owes it after its last rename."""
    target = Path(path)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=_TMP_SUFFIX)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb"):  # owns fd: closed on any error
            os.fchmod(fd, _default_mode() if mode is None else mode)
        yield tmp
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_files_atomic(folder: str | os.PathLike[str], files: Mapping[str, bytes], *,
                       mode: int | None = None) -> Path:
    """Write several files into one folder, each atomically and durably as
    :func:`write_bytes_atomic` writes one (its own temporary file, fsync-ed, renamed over its
    target), with one ``fsync`` of the folder after the last rename instead of one per file.

    On any error the temporary files not yet renamed are removed; the files already renamed
    keep their new content (as with one :func:`write_bytes_atomic` call per file). Returns the
    folder.
    """
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = directory / name
        if target.parent != directory:
            raise ValueError(f"{name!r} is not a file name in {directory}")
        with _replaced(target, mode=mode) as tmp, tmp.open("wb") as handle:
            handle.write(data)
    fsync_dir(directory)
    return directory


def write_text_atomic(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", mode: int | None = None
) -> Path:
    """Write ``text`` atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode(encoding), mode=mode)


def write_json_atomic(
    path: str | os.PathLike[str],
    obj: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = True,
    mode: int | None = None,
) -> Path:
    """Write ``obj`` as UTF-8 JSON (``ensure_ascii=False``, trailing newline) atomically."""
    return write_text_atomic(path, json_text(obj, indent=indent, sort_keys=sort_keys), mode=mode)


def json_text(obj: Any, *, indent: int | None = 2, sort_keys: bool = True) -> str:
    """``obj`` as the JSON text :func:`write_json_atomic` writes (``ensure_ascii=False``, trailing newline)."""
    return json.dumps(obj, ensure_ascii=False, indent=indent, sort_keys=sort_keys) + "\n"


def remove_stale_tmp(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files an interrupted atomic write left in ``directory`` (not recursive).

    Only files named like this module's temporary files (``.<name>.<random>.tmp``) are removed.
    Call it only while no other process writes into the folder (e.g. under the state lock).
    Returns the removed paths.
    """
    removed: list[Path] = []
    folder = Path(directory)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(_TMP_SUFFIX) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
