"""The event-code catalogue: ``configs/event_codes.toml`` as frozen, typed objects.

(The loader and its validation are being written; the data classes below are the contract.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

Kind = Literal["offence", "incident"]
Role = Literal["suspect", "victim", "witness", "involved"]
ROLES: tuple[str, ...] = ("suspect", "victim", "witness", "involved")
KINDS: tuple[str, ...] = ("offence", "incident")


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    immediate: bool = False


@dataclass(frozen=True)
class Code:
    kind: Kind
    code: str
    label: str
    category: str
    weight: int
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class Catalogue:
    schema_version: int
    lookback_weeks: int
    threshold: int
    child_max_age: int
    categories: tuple[Category, ...]
    codes: tuple[Code, ...]
    digest: str = ""  # sha256 hex of the TOML file's bytes ("" when built in code)
    source: str = ""  # path it was loaded from

    def category(self, category_id: str) -> Category:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(category_id)

    def codes_frame(self) -> pl.DataFrame:
        """One row per (code, role): kind, code, label, category, category_label, immediate, weight, role."""
        cats = {c.id: c for c in self.categories}
        rows = [
            {
                "kind": c.kind,
                "code": c.code,
                "label": c.label,
                "category": c.category,
                "category_label": cats[c.category].label,
                "immediate": cats[c.category].immediate,
                "weight": c.weight,
                "role": role,
            }
            for c in self.codes
            for role in c.roles
        ]
        schema = {
            "kind": pl.String,
            "code": pl.String,
            "label": pl.String,
            "category": pl.String,
            "category_label": pl.String,
            "immediate": pl.Boolean,
            "weight": pl.Int64,
            "role": pl.String,
        }
        return pl.DataFrame(rows, schema=schema)
