"""The failure model: every command completes or changes nothing, and says why in one sentence.

Fault loops in the manner of SQLite's I/O-error tests: a command is run once to count its write
points (each rename of an atomic write, each ledger commit), then once per write point with a
fault injected there (a full disk, a read-only file system, a SIGKILL), and after each the state
folder must be unchanged (byte for byte) or complete, ``audit verify`` must agree, and running
the command again must end as if nothing had happened.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke

from socialsearch.errors import fault_message
from socialsearch.ledger import _store

WEEK = "2026-W47"


# --- the fault injector -------------------------------------------------------------------------

class Faults:
    """Counts the write points of a command and makes the ``fail_at``-th one fail with ``error()``."""

    def __init__(self, fail_at: int | None = None, error: Callable[[str, str], BaseException] | None = None) -> None:
        self.fail_at = fail_at
        self.error = error or (lambda where, _kind: OSError(errno.ENOSPC, "No space left on device", where))
        self.count = 0
        self.fired = False

    def _point(self, where: str, kind: str) -> None:
        self.count += 1
        if self.count == self.fail_at:
            self.fired = True
            raise self.error(where, kind)

    @contextmanager
    def active(self) -> Iterator[Faults]:
        real_replace, real_commit = os.replace, _store.Store._commit

        def replace(src: Any, dst: Any, **kwargs: Any) -> None:
            self._point(str(dst), "rename")
            real_replace(src, dst, **kwargs)

        def commit(store: _store.Store) -> None:
            try:
                self._point(str(store.state_dir / "ledger.sqlite"), "commit")
            except BaseException:
                store.connection.execute("ROLLBACK")
                raise
            real_commit(store)

        os.replace = replace  # type: ignore[assignment]
        _store.Store._commit = commit  # type: ignore[method-assign]
        try:
            yield self
        finally:
            os.replace = real_replace
            _store.Store._commit = real_commit  # type: ignore[method-assign]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (the lock file's content is the holder's pid)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "lock"}


def verify(state: Path) -> tuple[int, str]:
    return invoke("audit", "verify", "--state", state)


def drafts(state: Path) -> list[dict[str, Any]]:
    code, out = invoke("drafts", "list", "--state", state, "--json")
    assert code == 0, out
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def one_sentence(out: str) -> None:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    assert "Traceback" not in out and "unexpected failure" not in out


# --- the foreseeable faults, in one place --------------------------------------------------------

@pytest.mark.parametrize(("exc", "expected"), [
    (OSError(errno.ENOSPC, "No space left on device", "/s/ledger.sqlite"), "no space left on the device of /s/ledger"),
    (OSError(errno.EDQUOT, "Disk quota exceeded", "/s/x"), "no space left on the device of /s/x"),
    (OSError(errno.EROFS, "Read-only file system", "/s/x"), "/s/x is on a read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied", "/s/x"), "permission denied for /s/x"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/in/d"), "/in/d is a folder, not a regular file"),
    (OSError(errno.EFBIG, "File too large", "/o/f"), "/o/f: file too large"),
    (sqlite3.OperationalError("database or disk is full"), "no space left on the device of /st/ledger.sqlite"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "/st/ledger.sqlite is on a read-only"),
    (sqlite3.OperationalError("unable to open database file"), "permission denied for /st/ledger.sqlite"),
    (sqlite3.DatabaseError("file is not a database"), "/st/ledger.sqlite is not a ledger"),
    (RecursionError("maximum recursion depth exceeded"), "/in/decisions.json: nested too deeply"),
    (MemoryError(), "/in/decisions.json: too large to read in the memory"),
])
def test_every_foreseeable_fault_is_one_sentence_naming_the_path(exc: BaseException, expected: str) -> None:
    message = fault_message(exc, written=[Path("/out")], read=[Path("/in/decisions.json")],
                            ledger=Path("/st/ledger.sqlite"))
    assert message is not None and message.startswith(expected), message
    assert "\n" not in message


def test_a_polars_io_error_is_mapped_by_its_os_error_number_and_never_quoted() -> None:
    import polars as pl

    exc = pl.exceptions.ComputeError("failed to write 0101701357 to file: No space left on device (os error 28)")
    message = fault_message(exc, written=[Path("/out")])
    assert message is not None and message.startswith("no space left on the device of /out")
    assert "0101701357" not in message
    assert fault_message(pl.exceptions.ComputeError("a bug")) is None
    assert fault_message(ValueError("a bug")) is None


def test_the_cli_maps_a_full_disk_to_exit_2_with_one_sentence(tmp_path: Path) -> None:
    with Faults(fail_at=1).active():
        code, out = invoke("keys", "init", "--keys", tmp_path / "keys")
    assert code == 2
    one_sentence(out)
    assert "no space left on the device of" in out and str(tmp_path / "keys") in out
    assert not (tmp_path / "keys").exists()  # a keystore that failed while it was made is removed
    assert invoke("keys", "init", "--keys", tmp_path / "keys")[0] == 0
    for k in (1, 2):  # the export's public key, then its keyset
        with Faults(fail_at=k).active():
            code, out = invoke("keys", "export", "--keys", tmp_path / "keys", "--role", "hub", "--out",
                               tmp_path / "hub-keys")
        assert code == 2 and "no space left" in out and not (tmp_path / "hub-keys").exists()


# --- fault loops ------------------------------------------------------------------------------------

def _run(scenario: Path, root: Path, keys: Path, catalogue: Path, *extra: str) -> tuple[int, str]:
    return invoke("run", "--input", scenario, "--week", WEEK, "--out", root / "out", "--state", root / "state",
                  "--keys", keys, "--catalogue", catalogue, "-q", *extra)


@pytest.mark.parametrize("fault", ["ENOSPC", "EROFS", "sqlite-full"])
def test_a_first_run_fails_at_every_write_point_and_leaves_nothing_or_everything(
        fault: str, scenario: Path, keys: Path, catalogue_file: Path, tmp_path: Path) -> None:
    errors: dict[str, Callable[[str, str], BaseException]] = {
        "ENOSPC": lambda where, _kind: OSError(errno.ENOSPC, "No space left on device", where),
        "EROFS": lambda where, _kind: OSError(errno.EROFS, "Read-only file system", where),
        # SQLite's own words at a commit; the file system's at a rename
        "sqlite-full": lambda where, kind: (sqlite3.OperationalError("database or disk is full") if kind == "commit"
                                            else OSError(errno.ENOSPC, "No space left on device", where)),
    }
    with Faults().active() as counting:
        assert _run(scenario, tmp_path / "clean", keys, catalogue_file, "--new-state")[0] == 0
    clean = drafts(tmp_path / "clean" / "state")
    points = counting.count
    assert points >= 8  # pages, summary, vault, the schema's and the run's commits, the anchor...
    complete = 0
    for k in range(1, points + 1):
        root = tmp_path / f"k{k}"
        with Faults(fail_at=k, error=errors[fault]).active() as faults:
            code, out = _run(scenario, root, keys, catalogue_file, "--new-state")
        assert faults.fired
        state = root / "state"
        if code == 0:  # after the commit point (the anchor): the run completes, the next writer moves the anchor
            complete += 1
            assert drafts(state) == clean and verify(state)[0] == 0
        else:  # unchanged: a failed first run removes what it made
            assert code == 2, out
            one_sentence(out)
            assert not state.exists() and not (root / "out").exists(), k
            assert "no state folder" in verify(state)[1]
        assert _run(scenario, root, keys, catalogue_file, "--new-state")[0] == 0
        assert drafts(state) == clean and verify(state)[0] == 0
    assert complete == 1  # only the anchor's update follows the commit


def test_a_review_and_a_rotation_fail_at_every_write_point_and_change_nothing(
        scenario: Path, keys: Path, catalogue_file: Path, tmp_path: Path) -> None:
    assert _run(scenario, tmp_path, keys, catalogue_file, "--new-state")[0] == 0
    state = tmp_path / "state"
    draft = drafts(state)[0]["draft_id"]
    review = ("review", "--state", state, "--draft", draft, "--decision", "approve", "--reason", "Relevant",
              "--reviewer", "ABC")
    rotate = ("keys", "rotate", "--keys", keys)
    for command, folder in ((review, state), (rotate, keys)):
        with Faults().active() as counting:
            before = snapshot(folder)
            backup = dict(before)
            assert invoke(*command)[0] == 0
        for k in range(1, counting.count + 1):
            for name, data in backup.items():  # back to the state before the command
                (folder / name).write_bytes(data)
            for extra in set(snapshot(folder)) - set(backup):
                (folder / extra).unlink()
            with Faults(fail_at=k).active():
                code, out = invoke(*command)
            if code == 2:  # unchanged
                one_sentence(out)
                assert snapshot(folder) == before, (command[0], k)
            else:  # complete: only the anchor's update follows the commit
                assert code == 0 and k == counting.count, out
            assert verify(state)[0] == 0


# --- re-keying: staged vaults, the commit, then the rename ------------------------------------------

_KILL_AT_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from socialsearch.ledger import _store
    from socialsearch.cli import cli
    point, count = int(sys.argv[1]), [0]
    real_replace, real_commit = os.replace, _store.Store._commit
    def hit():
        count[0] += 1
        if count[0] == point:
            os.kill(os.getpid(), signal.SIGKILL)
    def replace(src, dst, **kw):
        hit()
        real_replace(src, dst, **kw)
    def commit(store):
        hit()
        real_commit(store)
    os.replace = replace
    _store.Store._commit = commit
    cli(sys.argv[2:], prog_name="socialsearch")
    """
)


def _killed(point: int, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _KILL_AT_WRITE, str(point), *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def rotated(scenario: Path, keys: Path, catalogue_file: Path, tmp_path: Path) -> dict[str, Any]:
    """A recorded week with an approved draft, and a keystore whose new key is promoted."""
    assert _run(scenario, tmp_path, keys, catalogue_file, "--new-state")[0] == 0
    state = tmp_path / "state"
    draft = drafts(state)[0]["draft_id"]
    assert invoke("review", "--state", state, "--draft", draft, "--decision", "approve", "--reason", "Relevant",
                  "--reviewer", "ABC")[0] == 0
    code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", draft)
    assert code == 0, out
    truth = json.loads(out)["child"]["cpr"]
    assert truth
    assert invoke("keys", "rotate", "--keys", keys)[0] == 0
    new = json.loads(invoke("keys", "show", "--keys", keys)[1])["keys"][-1]["id"]
    assert invoke("keys", "rotate", "--keys", keys, "--promote", new)[0] == 0
    return {"state": state, "keys": keys, "draft": draft, "cpr": truth, "new": new}


def test_rekey_killed_at_every_write_point_leaves_a_world_that_verifies_and_reidentifies(
        rotated: dict[str, Any], tmp_path: Path) -> None:
    state, keys, draft = rotated["state"], rotated["keys"], rotated["draft"]
    with Faults().active() as counting:
        pristine = snapshot(state)
        assert invoke("keys", "rekey", "--keys", keys, "--state", state)[0] == 0
    points = counting.count
    assert points >= 3  # the staged vault, the ledger commit, the anchor, the vault's rename
    for k in range(1, points + 1):
        for name in set(snapshot(state)) - set(pristine):
            (state / name).unlink()
        for name, data in pristine.items():
            (state / name).write_bytes(data)
        proc = _killed(k, "keys", "rekey", "--keys", keys, "--state", state)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        code, out = verify(state)
        staged = list((state / "vault").glob("*.rekeyed"))
        if code != 0:  # committed, the vaults not yet in place: refused until a writer finishes it
            assert staged and "was committed, but 1 of its vaults were not yet put in place" in out, out
        # Either world: re-identification (a writer) finishes or undoes the re-keying first.
        code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", draft)
        assert code == 0, out
        assert json.loads(out)["child"]["cpr"] == rotated["cpr"], k
        assert verify(state)[0] == 0 and not list((state / "vault").glob("*.rekeyed"))
        assert invoke("keys", "rekey", "--keys", keys, "--state", state)[0] == 0  # finishing is idempotent
        code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", draft)
        assert json.loads(out)["child"]["cpr"] == rotated["cpr"]


def test_rekey_with_a_full_disk_at_every_write_point_changes_nothing_or_completes(rotated: dict[str, Any]) -> None:
    state, keys, draft = rotated["state"], rotated["keys"], rotated["draft"]
    pristine = snapshot(state)
    with Faults().active() as counting:
        assert invoke("keys", "rekey", "--keys", keys, "--state", state)[0] == 0
    for k in range(1, counting.count + 1):
        for name in set(snapshot(state)) - set(pristine):
            (state / name).unlink()
        for name, data in pristine.items():
            (state / name).write_bytes(data)
        with Faults(fail_at=k).active():
            code, out = invoke("keys", "rekey", "--keys", keys, "--state", state)
        if code != 0:
            assert code == 2
            one_sentence(out)
        if snapshot(state) != pristine:
            assert verify(state)[0] == 0 or list((state / "vault").glob("*.rekeyed"))
        code, out = invoke("reidentify", "--state", state, "--keys", keys, "--draft", draft)
        assert code == 0 and json.loads(out)["child"]["cpr"] == rotated["cpr"], out


# --- signals -----------------------------------------------------------------------------------------

_SIGNAL_AT = textwrap.dedent(
    """
    import os, signal, sys
    from socialsearch.ledger import _store
    from socialsearch.crypto import keys as keys_module
    from socialsearch.cli import cli
    when, signum = sys.argv[1], getattr(signal, sys.argv[2])
    if when == "after-commit":  # the ledger committed (or the keyset renamed): the signal arrives now
        real_commit, real_keyset = _store.Store._commit, keys_module.KeyStore._write_keyset
        def commit(store):
            real_commit(store)
            os.kill(os.getpid(), signum)
        def keyset(self):
            real_keyset(self)
            os.kill(os.getpid(), signum)
        _store.Store._commit = commit
        keys_module.KeyStore._write_keyset = keyset
    elif when == "at-load":  # the keystore was read; nothing written yet
        real_load = keys_module.KeyStore.load.__func__
        def load(cls, directory):
            store = real_load(cls, directory)
            os.kill(os.getpid(), signum)
            return store
        keys_module.KeyStore.load = classmethod(load)
    else:  # at the first write
        real_replace = os.replace
        def replace(src, dst, **kw):
            os.kill(os.getpid(), signum)
            real_replace(src, dst, **kw)
        os.replace = replace
        real_commit = _store.Store._commit
        def commit(store):
            os.kill(os.getpid(), signum)
            real_commit(store)
        _store.Store._commit = commit
    cli(sys.argv[3:], prog_name="socialsearch")
    """
)


def _signalled(when: str, signum: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _SIGNAL_AT, when, signum, *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_after_the_commit_point_reports_success(signum: str, scenario: Path, keys: Path,
                                                          catalogue_file: Path, tmp_path: Path) -> None:
    assert _run(scenario, tmp_path, keys, catalogue_file, "--new-state")[0] == 0
    state = tmp_path / "state"
    draft = drafts(state)[0]["draft_id"]
    proc = _signalled("after-commit", signum, "review", "--state", state, "--draft", draft, "--decision", "dismiss",
                      "--reason", "Kendt", "--reviewer", "ABC")
    assert proc.returncode == 0, proc.stderr
    assert "Aborted" not in proc.stderr and f"recorded: dismiss {draft}" in proc.stdout
    assert drafts(state)[0]["decision"] == "dismiss" and verify(state)[0] == 0
    other = drafts(state)[1]
    decisions = tmp_path / "decisions.json"
    decisions.write_text(json.dumps({
        "format": "socialsearch-decisions", "version": 1, "week": WEEK, "municipality": other["municipality"],
        "decisions": [{"draft_id": other["draft_id"], "decision": "approve", "reason": "Relevant",
                       "reviewer": "ABC"}]}), encoding="utf-8")
    proc = _signalled("after-commit", signum, "review", "--state", state, "--import", decisions)
    assert proc.returncode == 0, proc.stderr
    assert "Aborted" not in proc.stderr and "recorded 1 decision(s)" in proc.stdout
    assert drafts(state)[1]["decision"] == "approve"
    proc = _signalled("after-commit", signum, "keys", "rotate", "--keys", keys)
    assert proc.returncode == 0, proc.stderr
    assert "added key" in proc.stdout and "Aborted" not in proc.stderr
    assert len(json.loads(invoke("keys", "show", "--keys", keys)[1])["keys"]) == 2


@pytest.mark.parametrize(("signum", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_before_the_commit_point_cleans_up_and_exits_128_plus_the_signal(
        signum: str, code: int, scenario: Path, keys: Path, catalogue_file: Path, tmp_path: Path) -> None:
    proc = _signalled("before", signum, "run", "--input", scenario, "--week", WEEK, "--out", tmp_path / "out",
                      "--state", tmp_path / "state", "--keys", keys, "--catalogue", catalogue_file, "--new-state",
                      "-q")
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted") and "Traceback" not in proc.stderr
    assert not (tmp_path / "state").exists() and not (tmp_path / "out").exists()
    before = snapshot(keys)
    proc = _signalled("at-load", signum, "keys", "rotate", "--keys", keys)
    assert proc.returncode == code and snapshot(keys) == before


# --- a first run on a full disk, and what is not a ledger ------------------------------------------

def test_a_first_run_on_a_full_disk_leaves_no_empty_ledger_and_lock(scenario: Path, keys: Path,
                                                                     catalogue_file: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from socialsearch.ledger import _schema

    def full(_conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(_schema, "create", full)
    state = tmp_path / "state"
    state.mkdir()  # an existing, empty folder given for the first week
    code, out = _run(scenario, tmp_path, keys, catalogue_file, "--new-state")
    assert code == 2 and f"no space left on the device of {state / 'ledger.sqlite'}" in out
    one_sentence(out)
    assert list(state.iterdir()) == [] and not (tmp_path / "out").exists()


def test_audit_verify_says_plainly_that_an_empty_file_is_not_a_ledger(tmp_path: Path) -> None:
    (tmp_path / "ledger.sqlite").write_bytes(b"")
    code, out = verify(tmp_path)
    assert code == 2 and "is not a ledger" in out and "no such table" not in out
    code, out = invoke("drafts", "list", "--state", tmp_path)
    assert code == 2 and "is not a ledger" in out
    code, out = invoke("review", "--state", tmp_path, "--draft", "D1", "--decision", "approve", "--reason", "x",
                       "--reviewer", "AB")
    assert code == 2 and "is not a ledger" in out
    assert (tmp_path / "ledger.sqlite").read_bytes() == b""  # nothing was created in it


# --- nothing a typo can create -----------------------------------------------------------------------

def test_run_refuses_a_missing_or_ledgerless_state_folder_without_new_state(
        scenario: Path, keys: Path, catalogue_file: Path, tmp_path: Path) -> None:
    assert _run(scenario, tmp_path, keys, catalogue_file, "--new-state")[0] == 0
    typo = tmp_path / "stat"
    code, out = invoke("run", "--input", scenario, "--week", WEEK, "--out", tmp_path / "out2", "--state", typo,
                       "--keys", keys, "--catalogue", catalogue_file)
    assert code == 2 and f"no state folder at {typo}: check the path" in out and "--new-state" in out
    assert not typo.exists() and not (tmp_path / "out2").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = invoke("run", "--input", scenario, "--week", WEEK, "--out", tmp_path / "out2", "--state", empty,
                       "--keys", keys, "--catalogue", catalogue_file)
    assert code == 2 and f"no ledger in {empty}" in out and list(empty.iterdir()) == []
    # The later week of the real ledger runs without --new-state.
    assert _run(scenario, tmp_path, keys, catalogue_file)[0] == 0


def test_a_mistyped_keystore_path_says_check_the_path_and_never_suggests_a_new_secret(
        scenario: Path, keys: Path, catalogue_file: Path, tmp_path: Path) -> None:
    for command in (("keys", "show", "--keys", tmp_path / "hub-key"),
                    ("run", "--input", scenario, "--week", WEEK, "--out", tmp_path / "o", "--state", tmp_path / "s",
                     "--keys", tmp_path / "hub-key", "--catalogue", catalogue_file, "--new-state")):
        code, out = invoke(*command)
        assert code == 2 and f"no keystore at {tmp_path / 'hub-key'}" in out and "check the path" in out, out
        assert "keys init" not in out
    not_a_keystore = tmp_path / "elsewhere"
    not_a_keystore.mkdir()
    code, out = invoke("keys", "show", "--keys", not_a_keystore)
    assert code == 2 and f"no keystore at {not_a_keystore}" in out and "keys init" not in out


def test_an_empty_input_folder_is_said_to_be_empty_not_a_keystore_problem(
        keys: Path, catalogue_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "input"
    empty.mkdir()
    code, out = invoke("run", "--input", empty, "--week", WEEK, "--out", tmp_path / "o", "--state", tmp_path / "s",
                       "--keys", keys, "--catalogue", catalogue_file, "--new-state")
    assert code == 2 and f"the input folder {empty} is empty" in out and "keystore" not in out
    code, out = invoke("run", "--input", tmp_path / "missing", "--week", WEEK, "--out", tmp_path / "o",
                       "--state", tmp_path / "s", "--keys", keys, "--new-state")
    assert code == 2 and "does not exist" in out and "keystore" not in out
    assert not (tmp_path / "s").exists() and not (tmp_path / "o").exists()


def test_a_keyset_symlinked_into_a_world_writable_folder_is_refused(keys: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # anyone may replace what is in it
    (keys / "keyset.json").rename(shared / "keyset.json")
    (keys / "keyset.json").symlink_to(shared / "keyset.json")
    code, out = invoke("keys", "show", "--keys", keys)
    assert code == 2 and f"is a link into {shared}, which group or others can write" in out, out
    os.chmod(shared, 0o1777)  # sticky, as /tmp: others cannot replace this user's file
    assert invoke("keys", "show", "--keys", keys)[0] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_keystore_file_owned_by_another_user_is_refused(keys: Path) -> None:
    os.chown(keys / "custodian.pub", 65534, 65534)
    code, out = invoke("keys", "show", "--keys", keys)
    assert code == 2 and f"keystore file {keys / 'custodian.pub'} belongs to another user (uid 65534)" in out
    os.chown(keys / "custodian.pub", 0, 0)
    os.chown(keys, 65534, 65534)
    code, out = invoke("keys", "show", "--keys", keys)
    assert code == 2 and f"the keystore folder {keys} belongs to another user" in out


_SYNTH_INTERRUPTED = textwrap.dedent(
    """
    import os, signal, sys
    import socialsearch.synthetic as synthetic
    from socialsearch.cli import cli
    real, count = synthetic.write_frame, [0]
    def write_frame(frame, path, fmt):
        count[0] += 1
        if count[0] == 3:  # two districts' files written, the third cut short
            os.kill(os.getpid(), signal.SIGINT)
        return real(frame, path, fmt)
    synthetic.write_frame = write_frame
    cli(sys.argv[1:], prog_name="socialsearch")
    """
)


@pytest.mark.parametrize("existing", [False, True])
def test_synth_interrupted_removes_what_it_wrote_and_exits_130(existing: bool, tmp_path: Path) -> None:
    out = tmp_path / "extract"
    if existing:
        out.mkdir()
        (out / "notes.txt").write_text("kept", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", _SYNTH_INTERRUPTED, "synth", "--out", str(out), "--scale", "0.001",
                           "--week", WEEK, "-q"], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 130, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted (Ctrl-C)"), proc.stderr
    if existing:
        assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["notes.txt"]
    else:
        assert not out.exists()


def test_a_decisions_file_nested_too_deeply_is_exit_2_not_an_unexpected_failure(
        scenario: Path, keys: Path, catalogue_file: Path, tmp_path: Path) -> None:
    assert _run(scenario, tmp_path, keys, catalogue_file, "--new-state")[0] == 0
    state = tmp_path / "state"
    before = snapshot(state)
    deep = tmp_path / "decisions.json"
    deep.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    code, out = invoke("review", "--state", state, "--import", deep)
    assert code == 2, out
    one_sentence(out)
    assert str(deep) in out
    assert snapshot(state) == before
