"""The matching hub's weekly run, end to end.

Order of effects (what makes a run safe to kill at any instant and simply run again):

1. take the state lock (a second run on the same state fails at once);
2. read and validate every input, pseudonymise raw input in memory, resolve people without a
   valid CPR, search — all in memory, nothing written;
3. write ``OUT/<week>/<kommunekode>/drafts.{json,html}`` and ``summary.json``, each atomically
   (temporary file, fsync, rename), and remove municipality folders the run no longer produces;
4. write the sealed vault ``STATE/vault/<week>.vault`` atomically;
5. commit the ledger in ONE transaction: the run, its drafts, their (child, event) pairs and
   the audit entry.

A kill before step 5 leaves the ledger as it was, so a re-run computes the same drafts and
overwrites the same files with the same content; a kill after step 5 leaves a complete run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from . import linkage, vault
from .atomic import remove_stale_tmp, write_json_atomic
from .catalogue import Catalogue, load_catalogue
from .drafts import build_documents, write_municipality
from .errors import KeyStoreError
from .extracts import HubExtracts, is_hub_layout, read_hub, read_raw
from .geography import geography
from .keys import KeyStore
from .ledger import Ledger, lock_state
from .pseudonyms import Pseudonymiser
from .search import History, SearchResult, weekly_search
from .station import pseudonymise_extracts
from .weeks import IsoWeek

__all__ = ["RunReport", "load_hub", "run_week"]

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
                     f"resolved by fuzzy matching: {persons['resolved_probabilistically']}, "
                     f"unresolved: {persons['unresolved']}")
        state = shlex.quote(str(state_dir)) if state_dir is not None else "STATE"
        lines.append(f"list the drafts: socialsearch drafts list --state {state} --week {self.week}")
        return "\n".join(lines)


@contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Time one stage of the run and log it (no data values are logged)."""
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)
    log.info("stage %s took %.2f s", name, timings[name])


def _checkpoint(name: str) -> None:
    """Fault injection for the crash-safety tests: ``SOCIALSEARCH_KILL_AT=<name>`` kills the
    process with SIGKILL at that point, as a power cut or an OOM killer would."""
    if os.environ.get("SOCIALSEARCH_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def load_hub(input_dir: Path, keystore: KeyStore) -> HubExtracts:
    """Read ``input_dir`` as hub extracts, pseudonymising raw extracts in memory first."""
    if is_hub_layout(input_dir):
        return read_hub(input_dir)
    if not keystore.has_secret:
        raise KeyStoreError(
            f"{input_dir} holds raw extracts, but this keystore has no pseudonymisation secret; "
            "pseudonymise them at a source station first (`socialsearch pseudonymise`) "
            "or run with the full keystore"
        )
    return pseudonymise_extracts(read_raw(input_dir), keystore)


def _search_inputs(hub: HubExtracts) -> tuple[pl.DataFrame, dict[str, int]]:
    """Resolve people without a valid CPR; returns the persons frame for the search and counts."""
    result = linkage.resolve(hub.incident_persons, hub.population)
    persons = result.persons.filter(pl.col("person").is_not_null()).select(
        "event_ref", "person", "role", "resolved_by", "match_probability"
    )
    without = int(hub.incident_persons["person"].null_count())
    counts = {
        "without_valid_cpr": without,
        "resolved_probabilistically": int(result.stats.get("resolved", 0)),
        "unresolved": without - int(result.stats.get("resolved", 0)),
    }
    return persons, counts


def _vault_document(hub: HubExtracts, result: SearchResult, week: IsoWeek) -> dict[str, Any]:
    """The mapping back to raw identifiers for exactly the people and events in the drafts."""
    pairs = pl.concat(
        [
            result.drafts.select("draft_id", pl.col("child").alias("person")),
            result.signals.select("draft_id", "person"),
        ]
    ).unique()
    # Semi-join first: only the few thousand people in drafts, not the whole population.
    wanted = pairs.select("person").unique()
    sealed_people = pl.concat(
        [
            hub.population.select("person", "person_sealed").join(wanted, on="person", how="semi"),
            hub.incident_persons.select("person", "person_sealed").join(wanted, on="person", how="semi"),
        ]
    ).drop_nulls().unique("person", keep="first")
    people = pairs.join(sealed_people, on="person", how="left").sort("draft_id", "person")
    refs = result.signals.select("draft_id", "event_ref").unique()
    events = (
        refs.join(
            hub.incidents.select("event_ref", "event_sealed").join(refs, on="event_ref", how="semi"),
            on="event_ref", how="left",
        )
        .sort("draft_id", "event_ref")
    )
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
    return {
        "format": "socialsearch-vault",
        "version": 1,
        "week": str(week),
        "key_id": hub.manifest["key_id"],
        "data_key": hub.manifest["vault_key"],
        "drafts": drafts,
    }


def _write_outputs(out_week: Path, documents: dict[str, list[dict[str, Any]]], week: IsoWeek,
                   lookback_weeks: int) -> list[Path]:
    """Write every municipality's drafts atomically and drop what this run no longer produces
    (municipality folders of an earlier run, temporary files of a killed one)."""
    out_week.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out_week)
    html: list[Path] = []
    for municipality, drafts in sorted(documents.items()):
        if (out_week / municipality).is_dir():
            remove_stale_tmp(out_week / municipality)
        write_municipality(out_week, municipality, drafts, week=str(week), lookback_weeks=lookback_weeks)
        html.append(out_week / municipality / "drafts.html")
        _checkpoint("mid-outputs")
    for stale in out_week.iterdir():
        if stale.is_dir() and stale.name not in documents:
            shutil.rmtree(stale)
    return html


def _summary(week: IsoWeek, hub: HubExtracts, result: SearchResult, persons: dict[str, int],
             catalogue: Catalogue, documents: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "week": str(week),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "catalogue": {"source": Path(catalogue.source).name, "sha256": catalogue.digest},
        "key_id": hub.manifest["key_id"],
        "drafts": {
            "total": int(result.drafts.height),
            "per_municipality": {m: len(d) for m, d in sorted(documents.items())},
            "by_rule": {r: int(n) for r, n in result.drafts.group_by("rule").len().sort("rule").iter_rows()},
        },
        "signals": {
            "in_drafts": int(result.signals.height),
            "new": int(result.signals["new"].sum()) if result.signals.height else 0,
        },
        "search": {k: int(v) for k, v in sorted(result.stats.items())},
        "persons": persons,
        "inputs": {"rows": dict(sorted(hub.rows.items())), "files": sorted(hub.digests)},
    }


def _inputs_digest(hub: HubExtracts) -> str:
    h = hashlib.sha256()
    for name, digest in sorted(hub.digests.items()):
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def run_week(*, input_dir: Path, week: IsoWeek, out_dir: Path, state_dir: Path, keys_dir: Path,
             catalogue_path: Path | None = None) -> RunReport:
    """Run the weekly search for ``week`` (see the module docstring for the order of effects)."""
    catalogue = load_catalogue(catalogue_path)
    keystore = KeyStore.load(keys_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with lock_state(state_dir), Ledger.open(state_dir) as ledger:
        ledger.check_week(week)
        with _stage("read", timings):
            hub = load_hub(input_dir, keystore)
        ledger.check_key(hub.manifest["key_id"])
        _checkpoint("after-read")
        with _stage("linkage", timings):
            persons, person_counts = _search_inputs(hub)
        with _stage("search", timings):
            drafted_pairs, previous_drafts = ledger.history(week, lookback_weeks=catalogue.lookback_weeks)
            pseudonymiser = Pseudonymiser(keystore, hub.manifest["key_id"])
            result = weekly_search(
                incidents=hub.incidents,
                persons=persons,
                population=hub.population.select("person", "municipality", "birth_date"),
                relations=hub.relations,
                catalogue=catalogue,
                week=week,
                history=History(drafted_pairs=drafted_pairs, previous_drafts=previous_drafts),
                draft_ids=pseudonymiser.draft_ids,
            )
        _checkpoint("after-search")
        with _stage("outputs", timings):
            documents = build_documents(result.signals, result.drafts, immediate_categories=[
                c.id for c in catalogue.categories if c.immediate])
            out_week = out_dir / str(week)
            html = _write_outputs(out_week, documents, week, catalogue.lookback_weeks)
            summary = _summary(week, hub, result, person_counts, catalogue, documents)
            write_json_atomic(out_week / "summary.json", summary)
        _checkpoint("after-outputs")
        with _stage("vault", timings):
            vault.write_vault(state_dir / "vault" / f"{week}.vault", _vault_document(hub, result, week),
                              keystore.custodian_public_key, keystore.custodian_key_id)
        _checkpoint("after-vault")
        with _stage("ledger", timings):
            run_id = ledger.record_run(
                week,
                result.drafts,
                result.signals,
                {
                    "catalogue_digest": catalogue.digest,
                    "inputs_digest": _inputs_digest(hub),
                    "key_id": hub.manifest["key_id"],
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
