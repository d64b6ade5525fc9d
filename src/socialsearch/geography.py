"""Reference geography: the 98 municipalities and the 12 police districts.

Loaded from the packaged ``configs/municipalities.csv`` and ``configs/districts.csv``.
Input validation checks kommunekoder and district codes against it; the synthetic
generator spreads people by each municipality's population.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import polars as pl

from ._resources import config_path

__all__ = ["Geography", "District", "Municipality", "geography"]


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    district: str
    population: int


@dataclass(frozen=True)
class District:
    code: str
    name: str
    name_en: str
    municipalities: tuple[str, ...]


@dataclass(frozen=True)
class Geography:
    """The reference geography as frozen, typed objects."""

    municipalities: tuple[Municipality, ...]
    districts: tuple[District, ...]

    @property
    def municipality_codes(self) -> frozenset[str]:
        return frozenset(m.code for m in self.municipalities)

    @property
    def district_codes(self) -> frozenset[str]:
        return frozenset(d.code for d in self.districts)

    def municipality_name(self, code: str) -> str:
        for m in self.municipalities:
            if m.code == code:
                return m.name
        raise KeyError(code)

    def district_name(self, code: str) -> str:
        for d in self.districts:
            if d.code == code:
                return d.name
        raise KeyError(code)

    def municipalities_frame(self) -> pl.DataFrame:
        """One row per municipality: ``municipality``, ``name``, ``district``, ``population``."""
        return pl.DataFrame(
            {
                "municipality": [m.code for m in self.municipalities],
                "name": [m.name for m in self.municipalities],
                "district": [m.district for m in self.municipalities],
                "population": [m.population for m in self.municipalities],
            },
            schema={
                "municipality": pl.String,
                "name": pl.String,
                "district": pl.String,
                "population": pl.Int64,
            },
        )


@lru_cache(maxsize=1)
def geography() -> Geography:
    """Load (once) and return the packaged reference geography."""
    mun = pl.read_csv(config_path("municipalities.csv"), infer_schema=False)
    dis = pl.read_csv(config_path("districts.csv"), infer_schema=False)
    if "population" not in mun.columns:
        mun = mun.with_columns(population=pl.lit("0"))
    municipalities = tuple(
        Municipality(
            code=r["kommunekode"].zfill(3),
            name=r["kommune"],
            district=r["district_code"],
            population=int(r["population"]),
        )
        for r in mun.iter_rows(named=True)
    )
    districts = tuple(
        District(
            code=r["district_code"],
            name=r["politikreds"],
            name_en=r["name_en"],
            municipalities=tuple(m.code for m in municipalities if m.district == r["district_code"]),
        )
        for r in dis.iter_rows(named=True)
    )
    return Geography(municipalities=municipalities, districts=districts)
