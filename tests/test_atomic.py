"""Atomic writes: complete content, no temporary files left, failures leave the old file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from socialsearch import _atomic as atomic
from socialsearch._atomic import remove_stale_tmp, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_write_bytes_creates_parents_and_leaves_no_tmp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    assert write_bytes_atomic(target, b"\x00\x01") == target
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_overwrite_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    write_text_atomic(target, "old")
    write_text_atomic(target, "ny æøå")
    assert target.read_text(encoding="utf-8") == "ny æøå"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_json_is_utf8_sorted_indented_with_newline(tmp_path: Path) -> None:
    target = write_json_atomic(tmp_path / "s.json", {"b": "Ærø", "a": [1, 2]})
    text = target.read_text(encoding="utf-8")
    assert text == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "Ærø"\n}\n'
    assert json.loads(text) == {"a": [1, 2], "b": "Ærø"}


def test_mode_is_applied(tmp_path: Path) -> None:
    target = write_bytes_atomic(tmp_path / "secret", b"k", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_default_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        target = write_bytes_atomic(tmp_path / "f", b"k")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_failed_write_keeps_old_file_and_removes_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "keep.txt"
    write_text_atomic(target, "old")

    def boom(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_remove_stale_tmp_only_removes_our_tmp_files(tmp_path: Path) -> None:
    (tmp_path / ".drafts.json.abc123.tmp").write_text("half")
    (tmp_path / "drafts.json").write_text("{}")
    (tmp_path / "notes.tmp").write_text("not ours: no leading dot")
    removed = remove_stale_tmp(tmp_path)
    assert [p.name for p in removed] == [".drafts.json.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drafts.json", "notes.tmp"]
    assert remove_stale_tmp(tmp_path / "missing") == []


def test_write_files_writes_each_file_whole_and_fsyncs_the_folder_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "101"
    write_text_atomic(folder / "drafts.json", "old")
    synced: list[str] = []
    real = atomic.fsync_dir
    monkeypatch.setattr(atomic, "fsync_dir", lambda d: (synced.append(str(d)), real(d))[1])
    assert atomic.write_files_atomic(folder, {"drafts.json": b"[]\n", "drafts.html": "æ".encode()}) == folder
    assert (folder / "drafts.json").read_bytes() == b"[]\n" and (folder / "drafts.html").read_text() == "æ"
    assert sorted(p.name for p in folder.iterdir()) == ["drafts.html", "drafts.json"]
    assert synced == [str(folder)]


def test_write_files_failure_removes_its_tmp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_text_atomic(tmp_path / "b", "old b")
    calls: list[str] = []
    real = atomic.os.replace

    def second_fails(src: str, dst: object) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", second_fails)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_files_atomic(tmp_path, {"a": b"new a", "b": b"new b"})
    assert (tmp_path / "a").read_bytes() == b"new a" and (tmp_path / "b").read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    with pytest.raises(ValueError, match="not a file name"):
        atomic.write_files_atomic(tmp_path, {"../x": b""})
