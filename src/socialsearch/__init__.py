"""socialsearch: the weekly, privacy-preserving police-to-municipality child-welfare search.

The public API is everything in ``__all__``, in two layers (see ``docs/architecture.md``):

* **operations**, one per CLI command and of the same name: :func:`run`, :func:`pseudonymise`,
  :func:`review`, :func:`import_decisions`, :func:`reidentify`, :func:`drafts_list`,
  :func:`stats`, :func:`synth`, :func:`demo`, :func:`keys_init`, :func:`keys_show`,
  :func:`keys_rotate`, :func:`keys_export`, :func:`keys_rekey`, :func:`keys_municipality_init`,
  :func:`keys_municipality_add` (``keys municipality init/add``), :func:`open_drafts` (``open``),
  :func:`audit_verify`, :func:`catalogue_check`. They take ``str | Path`` for folders and files and ``str | IsoWeek``
  for weeks, and raise only :class:`SocialsearchError` subclasses;
* **building blocks**, each a function from frames to frames or a small object::

    from socialsearch import (
        load_catalogue, read_raw, read_hub, KeyStore, Pseudonymiser, pseudonymise_extracts,
        resolve, weekly_search, build_documents, render_html, Ledger,
    )

Examples
--------
>>> import socialsearch
>>> socialsearch.catalogue_check()["categories"] > 0
True
"""

from __future__ import annotations

from ._demo import demo
from .catalogue import Catalogue, Category, Code, catalogue_check, load_catalogue
from .contract import age_on
from .crypto.keys import KeyStore, keys_export, keys_init, keys_rotate, keys_show
from .crypto.municipal import keys_municipality_add, keys_municipality_init
from .crypto.pseudonyms import Pseudonymiser
from .custodian import keys_rekey, reidentify
from .errors import (
    AuditError,
    CatalogueError,
    InputError,
    KeyStoreError,
    LedgerError,
    SocialsearchError,
    StateLockedError,
    UsageError,
    VaultError,
)
from .geography import geography
from .hub.drafts import build_documents, render_html
from .hub.pipeline import RunReport, run
from .hub.search import History, SearchResult, weekly_search
from .hub_extract import HubExtract, read_hub, write_hub
from .identifiers import birth_date, cpr_status, is_valid_cpr, normalise_cpr
from .ledger import Ledger, audit_verify, lock_state
from .municipality import drafts_list, import_decisions, review
from .opening import open_drafts
from .station.extracts import RawExtracts, read_raw
from .station.pipeline import pseudonymise, pseudonymise_extracts
from .station.resolution import resolve
from .statistics import stats
from .synthetic import synth
from .weeks import IsoWeek

__version__ = "0.1.0"

__all__ = [
    "AuditError",
    "Catalogue",
    "CatalogueError",
    "Category",
    "Code",
    "History",
    "HubExtract",
    "InputError",
    "IsoWeek",
    "KeyStore",
    "KeyStoreError",
    "Ledger",
    "LedgerError",
    "Pseudonymiser",
    "RawExtracts",
    "RunReport",
    "SearchResult",
    "SocialsearchError",
    "StateLockedError",
    "UsageError",
    "VaultError",
    "age_on",
    "audit_verify",
    "birth_date",
    "build_documents",
    "catalogue_check",
    "cpr_status",
    "demo",
    "drafts_list",
    "geography",
    "import_decisions",
    "is_valid_cpr",
    "keys_export",
    "keys_init",
    "keys_municipality_add",
    "keys_municipality_init",
    "keys_rekey",
    "keys_rotate",
    "keys_show",
    "load_catalogue",
    "lock_state",
    "normalise_cpr",
    "open_drafts",
    "pseudonymise",
    "pseudonymise_extracts",
    "read_hub",
    "read_raw",
    "reidentify",
    "render_html",
    "resolve",
    "review",
    "run",
    "stats",
    "synth",
    "weekly_search",
    "write_hub",
]
