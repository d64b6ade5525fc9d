"""The key custodian: re-identifying an approved draft, and re-keying the state after a rotation.

:func:`reidentify` opens the vault entry of one approved draft with the custodian's
private key (audited). :func:`keys_rekey` keeps a rotation from notifying anything twice.

After ``keys rotate --promote NEW`` the stations make pseudonyms with the new key, while the
ledger still holds the old pseudonyms of every child, person and event it has drafted: without
re-keying, the next run would see all of them as new. Only the key custodian can re-key, because
it needs the raw values: for each week's vault it opens the sealed CPR numbers and
"district:journal number" values of exactly the drafted people and events, recomputes their
pseudonyms under the new key, and rewrites

1. each vault, staged beside the old one (``<week>.vault.rekeyed``), then
2. the ledger (drafts, their persons and signals) in one transaction with an audit entry that
   records the staged vaults' sha256 (the commit point), then
3. the staged vaults renamed over the old ones.

A re-keying stopped at any instant leaves the old world (nothing committed: the staged files
are removed by the next writer) or the new one (committed: the next writer, or a second
``keys rekey``, puts the staged vaults in place; ``audit verify`` refuses until then), so
``reidentify`` always reads vaults keyed like the ledger. See :mod:`socialsearch.ledger._rekey`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import polars as pl

from .crypto import vault
from .crypto.keys import KeyStore, pseudonym_key_id
from .crypto.pseudonyms import Pseudonymiser
from .crypto.recipients import scoped_values
from .errors import KeyStoreError, LedgerError, VaultError
from .ledger import Ledger, lock_state, require_ledger
from .ledger._rekey import STAGED_SUFFIX, finish_rekey, sha256_file

__all__ = ["keys_rekey", "reidentify"]

log = logging.getLogger(__name__)


def _checkpoint(name: str) -> None:
    """Fault injection for the crash tests: ``SOCIALSEARCH_KILL_AT=<name>`` kills the process
    with SIGKILL at that point, as a power cut would."""
    if os.environ.get("SOCIALSEARCH_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _new_names(document: dict[str, Any], keystore: KeyStore, to_key: str) -> tuple[dict[str, str], dict[str, str]]:
    """old → new pseudonyms and event references for every draft in one vault document."""
    data_key = vault.open_data_key(document["data_key"], keystore)
    pseudonymiser = Pseudonymiser(keystore, to_key)
    persons: dict[str, str] = {}
    events: dict[str, str] = {}
    for entry in document["drafts"].values():
        people = vault.open_mapping(entry["persons"], data_key)
        old = list(people)
        new = pseudonymiser.persons(pl.Series(list(people.values()), dtype=pl.String)).to_list()
        persons.update((o, n) for o, n in zip(old, new, strict=True) if n is not None and o != n)
        opened = vault.open_mapping(entry["events"], data_key)
        refs = list(opened)
        district, journal = vault.split_event_references(pl.Series(list(opened.values()), dtype=pl.String))
        new_refs = pseudonymiser.events(district, journal).to_list()
        events.update((o, n) for o, n in zip(refs, new_refs, strict=True) if o != n)
    return persons, events


def _rekeyed_document(document: dict[str, Any], persons: dict[str, str], events: dict[str, str]) -> dict[str, Any]:
    drafts = {
        draft_id: {
            "persons": {persons.get(p, p): v for p, v in entry["persons"].items()},
            "events": {events.get(e, e): v for e, v in entry["events"].items()},
        }
        for draft_id, entry in document["drafts"].items()
    }
    return {**document, "drafts": drafts}


def keys_rekey(state_dir: str | Path, keys_dir: str | Path, to_key: str | None = None) -> dict[str, Any]:
    """Re-key the ledger and the vaults under ``state_dir`` to ``to_key`` (default: the primary).

    ``socialsearch keys rekey``: after a new key is promoted, before the first weekly run with it.

    Needs the custodian's full keystore (the private key opens the vaults; the secret makes
    the new pseudonyms). Returns what was changed; the audit log records it without values.
    A missing ledger is an error (nothing is created).
    """
    state_dir = Path(state_dir)
    require_ledger(state_dir)
    keystore = KeyStore.load(keys_dir)
    if not keystore.has_secret or not keystore.has_custodian_private_key:
        raise KeyStoreError(
            f"{keys_dir} is not the custodian's full keystore: re-keying needs the custodian's "
            "private key and the pseudonymisation secret"
        )
    target = to_key or keystore.primary_key_id
    keystore.key_status(target)  # KeyStoreError for an unknown key id
    # Under the lock from reading the vaults to rewriting them: a weekly run cannot slip between.
    with lock_state(state_dir, create=False), Ledger.open(state_dir, create=False) as ledger:
        paths = sorted((state_dir / "vault").glob("*.vault"))
        documents = {path: vault.read_vault(path, keystore) for path in paths}
        persons: dict[str, str] = {}
        events: dict[str, str] = {}
        for document in documents.values():
            p, e = _new_names(document, keystore, target)
            persons.update(p)
            events.update(e)
        staged_digests = {}
        try:
            for path, document in documents.items():
                target_path = path.with_name(path.name + STAGED_SUFFIX)
                vault.write_vault(target_path, _rekeyed_document(document, persons, events),
                                  keystore.custodian_public_key, keystore.custodian_key_id)
                staged_digests[target_path.name] = sha256_file(target_path)
            _checkpoint("rekey-staged")
            counts = ledger.keys.rekey(persons, events, {
                "to_key_id": target, "vaults": len(paths), "persons": len(persons), "events": len(events),
                "staged_vaults": staged_digests,
            })
            _checkpoint("rekey-committed")
        except BaseException:
            # Committed: the staged vaults go in place; not committed: they are removed. A fault
            # here leaves the staged files for the next writer, which does the same.
            with contextlib.suppress(OSError, sqlite3.Error):
                finish_rekey(ledger.connection, state_dir)
            raise
        finish_rekey(ledger.connection, state_dir)
    log.info("re-keyed %d persons and %d events in %d vaults", len(persons), len(events), len(paths))
    return {"to_key_id": target, "vaults": len(paths), "persons": len(persons), "events": len(events),
            "ledger": counts}


def reidentify(state_dir: str | Path, keys_dir: str | Path, draft_id: str) -> dict[str, Any]:
    """Open the vault for one approved draft with the custodian's private key (``socialsearch reidentify``).

    Before anything is opened, the whole audit chain and every ledger table bound to it are
    verified, and the decision is the one the chain records: a review row edited behind the
    log (say, dismiss → approve) is refused with an :class:`~socialsearch.errors.AuditError`.
    Returns the CPR numbers of the child and linked persons and the district and journal number
    of each event, and writes an audit entry (without those values).
    """
    state_dir = Path(state_dir)
    with Ledger.open(state_dir, create=False) as ledger:
        ledger.verify()
        draft = ledger.drafts.get(draft_id)
        if draft.get("decision") != "approve":
            raise LedgerError(
                f"draft {draft_id} is not approved (decision: {draft.get('decision') or 'none'}); "
                "only approved drafts can be re-identified: `socialsearch review --decision approve`"
            )
        keystore = KeyStore.load(keys_dir)
        path = state_dir / "vault" / f"{draft['week']}.vault"
        if not path.is_file():
            raise VaultError(f"no vault for week {draft['week']} at {path}")
        document = vault.read_vault(path, keystore)
        entry = document["drafts"].get(draft_id)
        if entry is None:
            raise VaultError(f"the vault of week {draft['week']} holds no entry for draft {draft_id}")
        data_key = vault.open_data_key(document["data_key"], keystore)
        persons = vault.open_mapping(entry["persons"], data_key)
        events = vault.open_mapping(entry["events"], data_key)
        ledger.append_audit("reidentify", {
            "draft_id": draft_id,
            "custodian_key_id": keystore.custodian_key_id,
            "persons": len(persons),
            "events": len(events),
        })
    child = draft["child"]
    # The caseworker's page shows pseudonyms scoped to the municipality: say which is whom there.
    key_id = str(pl.select(pseudonym_key_id(pl.lit(child))).item())
    shown = scoped_values(list(persons), keystore, key_id, draft["municipality"])
    shown_events = scoped_values(list(events), keystore, key_id, draft["municipality"], kind="event")
    refs = list(events)
    where = vault.split_event_references(pl.Series(list(events.values()), dtype=pl.String))
    return {
        "draft_id": draft_id,
        "week": draft["week"],
        "municipality": draft["municipality"],
        "child": {"pseudonym": shown.get(child), "hub_pseudonym": child, "cpr": persons.get(child)},
        "persons": [{"pseudonym": shown[p], "hub_pseudonym": p, "cpr": c}
                    for p, c in sorted(persons.items()) if p != child],
        "events": [
            {"event_ref": shown_events[ref], "hub_event_ref": ref, "district": district, "journal_number": journal}
            for ref, district, journal in sorted(zip(refs, *(s.to_list() for s in where), strict=True))
        ],
    }
