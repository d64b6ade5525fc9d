"""The station's ``draftable`` without its cut, for tests that compare against every linked child."""

from __future__ import annotations

from typing import Any

import polars as pl

from socialsearch.station.pipeline import draftable


def draftable_uncut(incidents: pl.DataFrame, persons: pl.DataFrame, children: pl.DataFrame,
                    relations: pl.DataFrame, *args: Any) -> Any:
    """What ``draftable`` returns, but with the frames uncut: every linked child is shipped, as a
    version-2 station did and as partitions ship before their union's cut."""
    _, signals, drafts = draftable(incidents, persons, children, relations, *args)
    return (incidents, persons, children, relations), signals, drafts
