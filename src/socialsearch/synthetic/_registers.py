"""The register tables: population, relations, families and truth/people, in chunks."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..contract import RELATIONS
from ..geography import geography
from ._model import MEMBERS, STRUCTURES
from ._names import name_tables
from ._people import People
from ._persons import maybe_dashed


# --------------------------------------------------------------------------- register tables
def population_chunk(people: People, idx: np.ndarray, dashed: np.ndarray) -> pl.DataFrame:
    """The CPR extract's rows for the people ``idx`` (in file order); a few numbers with the dash."""
    codes = pl.Series([m.code for m in geography().municipalities], dtype=pl.String)
    return pl.DataFrame({
        "cpr": maybe_dashed(people.cpr_str(idx), dashed[idx]),
        "municipality": codes.gather(people.municipality[idx]),
        "given_name": people.given_str(idx),
        "surname": people.surname_str(idx),
    })


def relations_chunk(people: People, rows: slice, dashed: tuple[np.ndarray, np.ndarray]) -> pl.DataFrame:
    child, adult, rel = (a[rows] for a in people.relations)
    return pl.DataFrame({
        "child_cpr": maybe_dashed(people.cpr_str(child), dashed[0][rows]),
        "adult_cpr": maybe_dashed(people.cpr_str(adult), dashed[1][rows]),
        "relation": pl.Series(RELATIONS, dtype=pl.String).gather(rel),
    })


def truth_people_chunk(people: People, idx: np.ndarray) -> pl.DataFrame:
    """``truth/people`` for the people ``idx``: birth, sex, home, family role, propensities, name origin."""
    codes = pl.Series([m.code for m in geography().municipalities], dtype=pl.String)
    fam_id = pl.Series(people.family[idx].astype(np.int64))
    return pl.DataFrame({
        "cpr": people.cpr_str(idx),
        "birth_date": pl.Series(people.birth[idx].astype("datetime64[D]")),
        "sex": pl.Series(np.where(people.male[idx], "M", "F")),
        "municipality": codes.gather(people.municipality[idx]),
        "member": pl.Series(MEMBERS).gather(people.member[idx]),
        "family_id": fam_id.set(fam_id < 0, None),
        "risk": people.risk[idx].astype(np.float64),
        "youth_risk": people.youth[idx].astype(np.float64),
        "origin": pl.Series(name_tables().sources, dtype=pl.String).gather(people.names.origin[idx]),
    })


def families_frame(people: People) -> pl.DataFrame:
    codes = pl.Series([m.code for m in geography().municipalities], dtype=pl.String)
    return pl.DataFrame({
        "family_id": np.arange(people.n_families),
        "structure": pl.Series(STRUCTURES).gather(people.fam_structure),
        "municipality": codes.gather(people.fam_home),
        "children": people.fam_size,
    })


