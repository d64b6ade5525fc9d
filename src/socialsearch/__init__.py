"""socialsearch: the weekly, privacy-preserving police-to-municipality child-welfare search.

The public API, stage by stage (each a function from frames to frames or a small object)::

    from socialsearch import (
        load_catalogue, read_raw, read_hub, KeyStore, Pseudonymiser, pseudonymise_extracts,
        encode_people, resolve, weekly_search, build_documents, render_html, Ledger, run_week,
    )

See ``docs/architecture.md`` for how they fit together.
"""

from __future__ import annotations

from .catalogue import Catalogue, Category, Code, load_catalogue
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
from .extracts import HubExtracts, RawExtracts, read_hub, read_raw, write_hub
from .geography import geography
from .identifiers import age_on, birth_date, cpr_status, is_valid_cpr, normalise_cpr
from .keys import KeyStore
from .ledger import Ledger, lock_state
from .linkage import encode_people, resolve
from .pipeline import RunReport, reidentify_draft, review_draft, run_week
from .pseudonymise import pseudonymise_dir, pseudonymise_extracts
from .pseudonyms import Pseudonymiser
from .search import History, SearchResult, weekly_search
from .stats import stats
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
    "HubExtracts",
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
    "encode_people",
    "geography",
    "is_valid_cpr",
    "lock_state",
    "load_catalogue",
    "normalise_cpr",
    "pseudonymise_dir",
    "pseudonymise_extracts",
    "read_hub",
    "read_raw",
    "reidentify_draft",
    "render_html",
    "resolve",
    "review_draft",
    "run_week",
    "stats",
    "synthesize",
    "weekly_search",
    "write_hub",
]
