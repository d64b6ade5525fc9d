"""socialsearch: the weekly, privacy-preserving police-to-municipality child-welfare search.

The public API, stage by stage (each a function from frames to frames or a small object)::

    from socialsearch import (
        load_catalogue, read_raw, read_hub, KeyStore, Pseudonymiser, pseudonymise_extracts,
        resolve, weekly_search, build_documents, render_html, Ledger, run_week,
    )

See ``docs/architecture.md`` for how they fit together.
"""

from __future__ import annotations

from .catalogue import Catalogue, Category, Code, load_catalogue
from .contract import age_on
from .custodian import reidentify_draft, rekey_state
from .drafts import build_documents, render_html
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
from .extracts import RawExtracts, read_raw
from .geography import geography
from .hub import RunReport, run_week
from .hub_extract import HubExtract, read_hub, write_hub
from .identifiers import birth_date, cpr_status, is_valid_cpr, normalise_cpr
from .keys import KeyStore
from .ledger import Ledger, lock_state
from .municipality import review_draft
from .pseudonyms import Pseudonymiser
from .resolution import resolve
from .search import History, SearchResult, weekly_search
from .station import pseudonymise, pseudonymise_extracts
from .statistics import stats
from .synth import synthesize
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
    "birth_date",
    "build_documents",
    "cpr_status",
    "geography",
    "is_valid_cpr",
    "lock_state",
    "load_catalogue",
    "normalise_cpr",
    "pseudonymise",
    "pseudonymise_extracts",
    "read_hub",
    "read_raw",
    "reidentify_draft",
    "rekey_state",
    "render_html",
    "resolve",
    "review_draft",
    "run_week",
    "stats",
    "synthesize",
    "weekly_search",
    "write_hub",
]
