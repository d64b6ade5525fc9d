"""The matching hub's weekly run, end to end.

Order of effects (what makes a run safe to kill at any instant and simply run again):

0. refuse a week that has not ended yet (Europe/Copenhagen clock), a missing or empty input
   folder, and a state folder without a ledger unless ``new_state`` (a mistyped ``--state``
   must not start a new ledger), before anything exists;
1. take the state lock (a second run on the same state fails at once);
2. read and validate every input, pseudonymise raw input in memory, resolve people without a
   valid CPR, search — all in memory, nothing written — then decide: ``ledger.runs.check``
   raises whatever recording would raise (week order, key, reviewed drafts that would vanish
   or change, draft ids), so a refused run changes no byte;
3. write ``OUT/<week>/<kommunekode>/drafts.{json,html}`` and ``summary.json``, each atomically
   (temporary file, fsync, rename), and remove municipality folders the run no longer produces;
4. write the sealed vault ``STATE/vault/<week>.vault`` atomically;
5. commit the ledger in ONE transaction: the run, its drafts, their (child, event) pairs and
   the audit entry.

A kill before step 5 leaves the ledger as it was, so a re-run computes the same drafts and
overwrites the same files with the same content; a kill after step 5 leaves a complete run. A
first run that fails before step 5 (refused, a full disk, Ctrl-C) removes what it created.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from .. import progress
from .._atomic import remove_stale_tmp, write_json_atomic
from ..catalogue import Catalogue, load_catalogue
from ..crypto import vault
from ..crypto.keys import KeyStore
from ..crypto.pseudonyms import Pseudonymiser
from ..crypto.recipients import scope_pseudonyms
from ..errors import KeyStoreError, LedgerError, UsageError
from ..geography import geography
from ..hub_extract import HubExtract, is_hub_extract, read_hub
from ..ledger import LEDGER_FILE, LOCK_FILE, Ledger, lock_state
from ..ledger.chain import HEAD_FILE, canonical_json
from ..station.extracts import read_raw
from ..station.pipeline import pseudonymise_extracts
from ..weeks import IsoWeek
from .drafts import build_documents, write_municipality
from .search import DraftIds, History, SearchResult, hub_search

__all__ = ["RunReport", "load_hub", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    """What a weekly run produced."""

    week: str
    out_dir: Path
    run_id: str
    drafts_per_municipality: dict[str, int]
    summary: dict[str, Any]
    html_paths: tuple[Path, ...] = field(default=())
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (not in summary.json)

    @property
    def drafts(self) -> int:
        return sum(self.drafts_per_municipality.values())

    def describe(self, state_dir: Path | None = None) -> str:
        """A short account for the terminal: drafts per municipality with the page to open,
        persons without a valid CPR, and the command that lists the drafts (with ``state_dir``,
        the ``--state`` folder of the run)."""
        import shlex

        geo = geography()
        week_dir = self.out_dir / self.week
        lines = [f"week {self.week}: {self.drafts} draft(s) in {len(self.drafts_per_municipality)} "
                 f"municipality(ies); output in {week_dir}"]
        if self.drafts_per_municipality:
            lines.append("caseworkers' pages (one per municipality):")
        for code, n in sorted(self.drafts_per_municipality.items()):
            lines.append(f"  {code} {geo.municipality_name(code):<20} {n:>5}  {week_dir / code / 'drafts.html'}")
        persons = self.summary["persons"]
        lines.append(f"persons without a valid CPR: {persons['without_valid_cpr']}, "
                     f"resolved at the station: {persons['resolved_probabilistically']}, "
                     f"unresolved: {persons['unresolved']}")
        state = shlex.quote(str(state_dir)) if state_dir is not None else "STATE"
        lines.append(f"list the drafts: socialsearch drafts list --state {state} --week {self.week}")
        lines += [f"warning: {w}" for w in self.summary.get("warnings", [])]
        return "\n".join(lines)


@contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Time one stage of the run, show it as progress and log it (no data values are logged)."""
    start = time.perf_counter()
    with progress.stage(name):
        yield
    timings[name] = round(time.perf_counter() - start, 3)
    log.info("stage %s took %.2f s", name, timings[name])


@contextmanager
def _removed_if_failed(state_dir: Path, out_dir: Path) -> Iterator[None]:
    """What a first run creates is removed again if it does not reach its commit (refused, a
    full disk, an interrupt: nothing is recorded before the last step), so a failed first run
    leaves no file behind: the state folder and the output folder when the run made them, else
    the ledger, its journal, anchor, lock and vault folder when the run made the ledger."""
    fresh_state, fresh_out = not state_dir.exists(), not out_dir.exists()
    ledger = state_dir / LEDGER_FILE
    fresh_ledger = not ledger.exists()
    fresh_vaults = not (state_dir / "vault").exists()
    try:
        yield
    except BaseException:
        if fresh_ledger and not _recorded(ledger):
            if fresh_state:
                shutil.rmtree(state_dir, ignore_errors=True)
            else:
                for name in (LEDGER_FILE, LEDGER_FILE + "-journal", HEAD_FILE, LOCK_FILE):
                    (state_dir / name).unlink(missing_ok=True)
                if fresh_vaults:
                    shutil.rmtree(state_dir / "vault", ignore_errors=True)
            if fresh_out:
                shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _recorded(ledger: Path) -> bool:
    """Whether the ledger file holds a committed audit entry (a run recorded before the failure)."""
    if not ledger.is_file():
        return False
    try:
        conn = sqlite3.connect(ledger.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return bool(conn.execute("SELECT count(*) FROM audit").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def _require_state(state_dir: Path, new_state: bool) -> None:
    """Refuse a state folder without a ledger unless a new ledger was asked for: a mistyped
    ``--state`` must not start a new ledger (which would draft notified children again)."""
    if new_state or (state_dir / LEDGER_FILE).is_file():
        return
    if not state_dir.exists():
        raise LedgerError(
            f"no state folder at {state_dir}: check the path; only the first week of a new ledger starts "
            "one, with --new-state (new_state=True). Nothing was created"
        )
    raise LedgerError(
        f"no ledger in {state_dir}: give the state folder of the earlier weeks; only the first week of a new "
        "ledger starts one, with --new-state (new_state=True). Nothing was created"
    )


def _checkpoint(name: str) -> None:
    """Fault injection for the crash-safety tests: ``SOCIALSEARCH_KILL_AT=<name>`` kills the
    process with SIGKILL at that point, as a power cut or an OOM killer would."""
    if os.environ.get("SOCIALSEARCH_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _require_input(input_dir: Path) -> None:
    """Refuse a missing or empty input folder as what it is (not as a keystore problem)."""
    if not input_dir.is_dir():
        what = "is not a folder" if input_dir.exists() else "does not exist"
        raise UsageError(f"no input at {input_dir} ({what}) — check the --input path")
    if not any(input_dir.iterdir()):
        raise UsageError(
            f"the input folder {input_dir} is empty: give the folder holding this week's extracts (raw extracts, "
            "or the hub extract made by `socialsearch pseudonymise`)"
        )


def load_hub(input_dir: Path, keystore: KeyStore, *, week: IsoWeek, catalogue: Catalogue,
             absent_districts: Collection[str] = ()) -> HubExtract:
    """The hub extract for ``week``: read from ``input_dir``, or made in memory from raw extracts
    there (single-site mode, which needs the secret). Refuses an extract made for another week
    or another catalogue, saying what to do.

    ``absent_districts`` (raw extracts only) are the police districts named as having delivered
    no incidents (:func:`~socialsearch.station.extracts.read_raw`); a hub extract was checked at the station.
    """
    _require_input(input_dir)
    if is_hub_extract(input_dir):
        if absent_districts:
            raise UsageError("absent districts apply to raw extracts only; the station already checked the "
                             f"districts of the hub extract in {input_dir}")
        hub = read_hub(input_dir)
    elif not keystore.has_secret:
        raise KeyStoreError(
            f"{input_dir} holds raw extracts, but this keystore has no pseudonymisation secret; "
            "pseudonymise them at a source station first (`socialsearch pseudonymise --week W`) "
            "or run with the full keystore"
        )
    else:
        # handed over without a reference here, so the station can free each raw frame once used
        return pseudonymise_extracts(read_raw(input_dir, absent_districts=absent_districts), keystore,
                                     week=week, catalogue=catalogue)
    if hub.week != str(week):
        raise UsageError(
            f"the hub extract in {input_dir} was made for week {hub.week}, not {week}; the station must "
            f"pseudonymise again for week {week}"
        )
    if hub.catalogue_digest != catalogue.digest:
        raise UsageError(
            f"the hub extract in {input_dir} was made with another catalogue (sha256 {hub.catalogue_digest[:12]}…) "
            f"than this run's {Path(catalogue.source).name} (sha256 {catalogue.digest[:12]}…); run with the "
            "station's catalogue, or have the station pseudonymise again with this one"
        )
    return hub


def _vault_document(hub: HubExtract, result: SearchResult, week: IsoWeek) -> dict[str, Any]:
    """The mapping back to raw identifiers for exactly the people and events in the drafts."""
    pairs = pl.concat(
        [
            result.drafts.select("draft_id", pl.col("child").alias("person")),
            result.signals.select("draft_id", "person"),
        ]
    ).unique()
    people = pairs.join(hub.persons.select("person", "person_sealed"), on="person", how="left").sort(
        "draft_id", "person")
    refs = result.signals.select("draft_id", "event_ref").unique()
    events = refs.join(hub.events.select("event_ref", "event_sealed"), on="event_ref", how="left").sort(
        "draft_id", "event_ref")
    drafts: dict[str, dict[str, dict[str, str]]] = {
        d: {"persons": {}, "events": {}} for d in result.drafts["draft_id"].to_list()
    }
    # The drafts are few (hundreds a week): building the small JSON document in Python is fine.
    for draft_id, person, sealed in people.select(
        "draft_id", "person", pl.col("person_sealed").bin.encode("base64")
    ).iter_rows():
        drafts[draft_id]["persons"][person] = sealed
    for draft_id, ref, sealed in events.select(
        "draft_id", "event_ref", pl.col("event_sealed").bin.encode("base64")
    ).iter_rows():
        drafts[draft_id]["events"][ref] = sealed
    return vault.vault_document(str(week), hub.key_id, hub.manifest["vault_key"], drafts)


def _with_details(hub: HubExtract, result: SearchResult) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The drafts with the child's sealed ``details``, and the signal rows with theirs and their
    event's (``event_details``), sealed by the station for the draft's municipality (null where
    it has no key); the hub cannot open them and passes them on untouched. The drafts also
    carry ``statistics``, sealed for the key custodian, for the ledger."""
    drafts = result.drafts.join(
        hub.children.select(pl.col("person").alias("child"), "details", "statistics"), on="child", how="left",
        maintain_order="left")
    signals = (
        result.signals.join(result.drafts.select("draft_id", pl.col("municipality").alias("recipient")),
                            on="draft_id", how="left", maintain_order="left")
        .join(hub.signals, on=["child", "event_ref", "person"], how="left", maintain_order="left")
        .join(hub.event_details.rename({"details": "event_details"}), on=["event_ref", "recipient"], how="left",
              maintain_order="left")
        .drop("recipient")
    )
    return drafts, signals


def _earlier(ledger: Ledger, drafts: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Week and latest decision of every earlier draft this week's drafts refer to (a handful)."""
    ids = drafts.get_column("previous_drafts").explode().drop_nulls().unique().sort().to_list()
    return {d["draft_id"]: {"week": d["week"], "decision": d["decision"]} for d in ledger.drafts.list(draft_ids=ids)}


#: municipalities written at the same time
_WRITERS = 8


def _write_outputs(out_week: Path, documents: dict[str, list[dict[str, Any]]], week: IsoWeek,
                   lookback_weeks: int) -> list[Path]:
    """Write every municipality's drafts atomically and drop what this run no longer produces
    (municipality folders of an earlier run, temporary files of a killed one)."""
    out_week.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out_week)

    def write(municipality: str) -> Path:
        if (out_week / municipality).is_dir():
            remove_stale_tmp(out_week / municipality)
        write_municipality(out_week, municipality, documents[municipality], week=str(week),
                           lookback_weeks=lookback_weeks)
        return out_week / municipality / "drafts.html"

    html: list[Path] = []
    # Each file is fsync-ed: written by several threads, the waits for the disk overlap.
    with ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="outputs") as pool:
        for written in pool.map(write, sorted(documents)):  # in order, each as it is done
            html.append(written)
            _checkpoint("mid-outputs")
    for stale in out_week.iterdir():
        if stale.is_dir() and stale.name not in documents:
            shutil.rmtree(stale)
    return html


def _person_counts(hub: HubExtract) -> dict[str, int]:
    """The station's resolution counts (from the manifest): no identifiers."""
    counts = hub.manifest.get("counts", {}).get("persons", {})
    return {
        "without_valid_cpr": int(counts.get("without_valid_cpr", 0)),
        "resolved_probabilistically": int(counts.get("resolved", 0)),
        "unresolved": int(counts.get("unresolved", 0)),
    }


def _summary(week: IsoWeek, hub: HubExtract, result: SearchResult, persons: dict[str, int],
             catalogue: Catalogue, documents: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    counts = hub.manifest.get("counts", {})
    return {
        "week": str(week),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "catalogue": {"source": Path(catalogue.source).name, "sha256": catalogue.digest},
        "key_id": hub.key_id,
        "drafts": {
            "total": int(result.drafts.height),
            "per_municipality": {m: len(d) for m, d in sorted(documents.items())},
        },
        "signals": {
            "in_drafts": int(result.signals.height),
            "new": int(result.signals["new"].sum()) if result.signals.height else 0,
        },
        "search": {k: int(v) for k, v in sorted(result.stats.items())},
        "persons": persons,
        "inputs": {
            "rows_read": counts.get("rows_read", {}),
            "hub_extract_rows": {name: frame.height for name, frame in hub.tables.items()},
        },
    }


def _inputs_digest(hub: HubExtract) -> str:
    """A fingerprint of the hub extract's manifest (counts and file digests; not its time stamp
    or the randomised sealed data keys), recorded with the run. The files' digests change with
    each pseudonymisation when exact values are sealed for municipalities (they are randomised)."""
    stable = {k: v for k, v in hub.manifest.items() if k not in ("created_at", "vault_key", "municipal_keys")}
    return hashlib.sha256(canonical_json(stable).encode("utf-8")).hexdigest()


def _reusing_recorded_ids(recorded: pl.DataFrame, make: DraftIds) -> DraftIds:
    """Draft ids that keep the ids already recorded for the week's children.

    A draft id is derived from the child's pseudonym; after ``keys rekey`` the pseudonym is
    new, so without this a re-run of a recorded week would see every draft as changed.
    """
    def draft_ids(children: pl.Series, week: str) -> pl.Series:
        fresh = make(children, week)
        frame = pl.DataFrame({"child": children.cast(pl.String), "fresh": fresh.cast(pl.String)})
        joined = frame.join(recorded, on="child", how="left", maintain_order="left")
        return joined.select(pl.coalesce("draft_id", "fresh").alias("draft_id")).to_series()

    return draft_ids


def run(input_dir: str | Path, week: str | IsoWeek, out_dir: str | Path, state_dir: str | Path,
        keys_dir: str | Path, *, catalogue: str | Path | None = None, absent_districts: Collection[str] = (),
        new_state: bool = False, now: datetime | None = None) -> RunReport:
    """Run the weekly search for ``week`` (see the module docstring for the order of effects).

    ``input_dir`` holds a hub extract (``socialsearch pseudonymise``; any keystore) or raw
    extracts (single-site: the keystore must hold the secret). Drafts go to ``out_dir/WEEK``,
    the ledger, audit log and vault to ``state_dir``. Every check that can refuse the run (the
    week has not ended by ``now``, default the Copenhagen clock; week order; key; reviewed
    drafts that would change; draft ids) runs before the first byte is written, so a refused
    run changes no file. A ``state_dir`` without a ledger is refused unless ``new_state`` (the
    first week of a new ledger); a first run that fails removes what it created.

    Raises
    ------
    SocialsearchError
        Every refusal; the subclass says which (input, catalogue, keys, ledger).
    """
    input_dir, out_dir, state_dir, keys_dir = Path(input_dir), Path(out_dir), Path(state_dir), Path(keys_dir)
    week = week if isinstance(week, IsoWeek) else IsoWeek.parse(str(week))
    week.require_ended(now)
    _require_input(input_dir)
    _require_state(state_dir, new_state)
    cat = load_catalogue(catalogue)
    keystore = KeyStore.load(keys_dir)
    timings: dict[str, float] = {}
    with _removed_if_failed(state_dir, out_dir), lock_state(state_dir), Ledger.open(state_dir) as ledger:
        ledger.runs.check_week(week)
        with _stage("read", timings):
            hub = load_hub(input_dir, keystore, week=week, catalogue=cat, absent_districts=absent_districts)
        key_id = hub.key_id
        ledger.keys.check(key_id)
        person_counts = _person_counts(hub)
        _checkpoint("after-read")
        with _stage("search", timings):
            drafted_pairs, previous_drafts = ledger.runs.history(week, lookback_weeks=cat.lookback_weeks)
            pseudonymiser = Pseudonymiser(keystore, key_id)
            result = hub_search(
                signals=hub.signals,
                events=hub.events,
                children=hub.children,
                week=week,
                history=History(drafted_pairs=drafted_pairs, previous_drafts=previous_drafts),
                draft_ids=_reusing_recorded_ids(ledger.runs.draft_ids(week), pseudonymiser.draft_ids),
            )
        # Decide, then write: everything the ledger would refuse is refused here.
        drafts_sealed, signals_sealed = _with_details(hub, result)
        ledger.runs.check(week, drafts_sealed, result.signals, key_id)
        _checkpoint("after-search")
        warnings = []
        # the station counts every incident registered in W (the extract keeps only draftable ones)
        in_week = hub.manifest.get("counts", {}).get("incidents_registered_in_week", result.stats["events_in_week"])
        if in_week == 0:
            warnings.append(
                f"no event in the extracts was registered in week {week} itself: check that the extracts "
                "are complete and are those of this week"
            )
        with _stage("outputs", timings):
            scoped_drafts, scoped_signals = scope_pseudonyms(drafts_sealed, signals_sealed, keystore, hub.key_id)
            documents = build_documents(
                scoped_signals, scoped_drafts, earlier=_earlier(ledger, result.drafts),
                immediate_categories=[c.id for c in cat.categories if c.immediate],
                sealed_keys=hub.manifest.get("municipal_keys", {}))
            out_week = out_dir / str(week)
            html = _write_outputs(out_week, documents, week, cat.lookback_weeks)
            summary = _summary(week, hub, result, person_counts, cat, documents)
            summary["warnings"] = warnings
            write_json_atomic(out_week / "summary.json", summary)
        _checkpoint("after-outputs")
        with _stage("vault", timings):
            vault.write_vault(state_dir / "vault" / f"{week}.vault", _vault_document(hub, result, week),
                              keystore.custodian_public_key, keystore.custodian_key_id)
        _checkpoint("after-vault")
        with _stage("ledger", timings):
            run_id = ledger.runs.record(
                week,
                drafts_sealed,
                result.signals,
                {
                    "catalogue_digest": cat.digest,
                    "inputs_digest": _inputs_digest(hub),
                    "key_id": key_id,
                    "counts": {"drafts": int(result.drafts.height), "signals": int(result.signals.height),
                               **person_counts},
                },
            )
        _checkpoint("after-ledger")
    return RunReport(
        week=str(week),
        out_dir=out_dir,
        run_id=run_id,
        drafts_per_municipality=summary["drafts"]["per_municipality"],
        summary=summary,
        html_paths=tuple(html),
        timings=timings,
    )
