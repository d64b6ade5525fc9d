"""Names: the Danish and immigrant-origin name model and the pools it draws from."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl

from ._model import P_FOREIGN

# --------------------------------------------------------------------------- names
_NAMES_FILE = Path(__file__).resolve().parent / "data" / "names.json"
#: Faker's person-name lists, frozen (tools/freeze_faker_names.py): same seed, same country.
_FAKER_FILE = Path(__file__).resolve().parent / "data" / "faker_names.json"
P_DOUBLE_GIVEN = (0.25, 0.10)  # two given names: Danish origin, other origins
P_MIDDLE = 0.15  # a Danish-origin adult with a middle name (a surname-like name before the surname)
P_HYPHEN = 0.02  # a Danish-origin adult with a hyphenated surname
P_TAKE_PARTNERS = 0.55  # a mother with a known father carries the father's surname ...
P_KEEP_AS_MIDDLE = 0.5  # ... and keeps her own as a middle name
P_CHILD_FATHERS = 0.7  # a child carries the father's surname (else the mother's)
P_CHILD_MIDDLE = 0.25  # a child carries the other parent's surname as a middle name
_CYRILLIC = dict(zip(
    "абвгґдеєёжзиіїйклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "h", "g", "d", "e", "ie", "io", "zh", "z", "y", "i", "i", "i", "k", "l", "m", "n",
     "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "iu", "ia"],
    strict=True,
))


@dataclass(frozen=True)
class PersonNames:
    """Names as indices into the name tables (-1: none)."""

    origin: np.ndarray  # int8 name source (0 Danish, see _NameTables.sources)
    g1: np.ndarray  # int32 first given name
    g2: np.ndarray  # int32 second given name or -1
    sm: np.ndarray  # int32 middle name (a surname) or -1
    s1: np.ndarray  # int32 surname
    s2: np.ndarray  # int32 second part of a hyphenated surname or -1


@dataclass(frozen=True)
class _Group:
    """Weighted names of several groups in one table; group g's cumulative weights run from g to g + 1."""

    cdf: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def of(weights: list[np.ndarray]) -> _Group:
        sizes = np.array([w.shape[0] for w in weights], dtype=np.int64)
        cdf = np.concatenate([g + np.cumsum(w) / w.sum() for g, w in enumerate(weights)])
        lo = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        return _Group(cdf=cdf, lo=lo, hi=lo + sizes)

    def draw(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        """One name index per row, drawn by weight within the row's group."""
        idx = np.searchsorted(self.cdf, group + rng.random(group.shape[0]), side="right")
        return np.clip(idx, self.lo[group], self.hi[group] - 1).astype(np.int32)


@dataclass(frozen=True)
class _NameTables:
    """Every name the generator uses, with its popularity, per name source (origin)."""

    sources: tuple[str, ...]  # "dk" first, then Faker locales and the curated lists
    origin_p: np.ndarray  # share of each source among people of foreign origin (index 0 unused)
    immigrant_share: float
    given: pl.Series  # groups source*2 + female
    given_groups: _Group
    surname: pl.Series  # groups by source; the masculine or neutral form
    surname_female: pl.Series  # the feminine form (Polish -ska, Russian -ova, ...), else the same
    surname_groups: _Group
    danish_surname_p: np.ndarray  # the Danish surname distribution (for documentation and tests)
    hyphenated: np.ndarray  # bool per surname: already hyphenated (Nørgaard-Pedersen, Al-Hassan)

    def draw_origin(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Name sources for ``size`` households or people: Danish or, for ~15 %, a foreign origin."""
        foreign = rng.random(size) < self.immigrant_share
        src = rng.choice(len(self.sources), size=size, p=self.origin_p)
        return np.where(foreign, src, 0).astype(np.int8)

    def given_str(self, g1: np.ndarray, g2: np.ndarray) -> pl.Series:
        frame = pl.DataFrame({"a": self.given.gather(g1), "b": self.given.gather(np.maximum(g2, 0)),
                              "two": g2 >= 0})
        return frame.select(given_name=pl.when("two").then(pl.concat_str(["a", "b"], separator=" "))
                            .otherwise("a")).to_series()

    def surname_str(self, sm: np.ndarray, s1: np.ndarray, s2: np.ndarray, female: np.ndarray) -> pl.Series:
        frame = pl.DataFrame({
            "mid": self.surname.gather(np.maximum(sm, 0)), "has_mid": sm >= 0,
            "m1": self.surname.gather(s1), "f1": self.surname_female.gather(s1),
            "m2": self.surname.gather(np.maximum(s2, 0)), "f2": self.surname_female.gather(np.maximum(s2, 0)),
            "has_second": s2 >= 0, "female": female,
        })
        first = pl.when("female").then("f1").otherwise("m1")
        second = pl.when("female").then("f2").otherwise("m2")
        last = pl.when("has_second").then(pl.concat_str([first, second], separator="-")).otherwise(first)
        return frame.select(surname=pl.when("has_mid").then(pl.concat_str([pl.col("mid"), last], separator=" "))
                            .otherwise(last)).to_series()


def _zipf(n: int, s: float, shuffle_seed: int | None, offset: float = 3.0) -> np.ndarray:
    """Zipf-like popularity of ``n`` names (in list order, or in a fixed shuffled order)."""
    w = 1.0 / (np.arange(n) + offset) ** s
    if shuffle_seed is not None:  # lists in alphabetical order: fixed, seed-independent popularity
        w = np.random.default_rng(shuffle_seed).permutation(w)
    return np.asarray(w / w.sum(), dtype=np.float64)


def _plain(name: str) -> str:
    """Cyrillic transliterated, Vietnamese tone marks removed; other Latin letters kept."""
    if any("\u0400" <= c <= "\u04ff" for c in name):
        out = "".join(_CYRILLIC.get(c.lower(), c) if c.lower() in _CYRILLIC else c for c in name)
        return out[:1].upper() + out[1:]
    return name


@lru_cache(maxsize=1)
def faker_lists() -> dict[str, dict[str, Any]]:
    """Faker's person-name lists per locale, as frozen in ``data/faker_names.json``."""
    providers: dict[str, dict[str, Any]] = json.loads(_FAKER_FILE.read_text(encoding="utf-8"))["providers"]
    return providers


def _strip_marks(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _weighted(names: object, seed: int) -> tuple[list[str], np.ndarray]:
    """A Faker list (alphabetical: Zipf in a fixed shuffled order) or weighted dict, deduplicated."""
    if isinstance(names, Mapping):
        keys, w = list(names), np.array(list(names.values()), dtype=np.float64)
    else:
        keys = list(names)  # type: ignore[call-overload]
        w = _zipf(len(keys), 0.8, seed)
    frame = pl.DataFrame({"n": keys, "w": w}).group_by("n", maintain_order=True).agg(pl.col("w").sum())
    return frame["n"].to_list(), frame["w"].to_numpy()


def _feminine(name: str, locale: str) -> str:
    """The feminine form of a surname where the language has one and Faker lists only one form."""
    if locale == "bg_BG" and name.endswith(("ов", "ев", "ин")):
        return name + "а"
    if locale == "pl_PL":
        for male, female in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")):
            if name.endswith(male):
                return name[: -len(male)] + female
    return name


def _paired(male: Sequence[str], female: Sequence[str]) -> bool:
    """Whether Faker's masculine and feminine surname lists are the same names (Ivanov, Ivanova)."""
    if not male or len(male) != len(female):
        return False
    return sum(f.startswith(m[:-2]) for m, f in zip(male, female, strict=True)) > 0.9 * len(male)


def _source_lists(key: str, curated: Mapping[str, Mapping[str, list[str]]], seed: int) -> tuple[
        tuple[list[str], np.ndarray], tuple[list[str], np.ndarray], tuple[list[str], list[str], np.ndarray]]:
    """(male given, female given, (surnames, feminine surnames, weights)) of one name source."""
    if key in curated:
        lists = curated[key]
        men, women, last = lists["male"], lists["female"], lists["surnames"]
        return ((men, _zipf(len(men), 0.9, None)), (women, _zipf(len(women), 0.9, None)),
                (last, last, _zipf(len(last), 0.9, None)))
    provider = SimpleNamespace(**faker_lists()[key])
    if key == "zh_CN":
        given = _weighted(provider.first_romanized_names, seed)
        last_names, last_w = _weighted(provider.last_romanized_names, seed + 1)
        return given, given, (last_names, last_names, last_w)
    male = _weighted(getattr(provider, "first_names_male", None) or provider.first_names, seed)
    female = _weighted(getattr(provider, "first_names_female", None) or provider.first_names, seed + 1)
    fem_list: list[str] | None = None
    if key == "pl_PL":
        last_names, last_w = _weighted(provider.male_last_names, seed + 2)
    elif key == "uk_UA":
        last_names, last_w = _weighted(provider.last_names_common, seed + 2)  # same for both sexes
    elif _paired(getattr(provider, "last_names_male", ()), getattr(provider, "last_names_female", ())):
        last_names, last_w = _weighted(provider.last_names_male, seed + 2)
        pairs = dict(zip(provider.last_names_male, provider.last_names_female, strict=True))
        fem_list = [pairs[n] for n in last_names]
    else:
        last_names, last_w = _weighted(provider.last_names, seed + 2)
    if fem_list is None:
        fem_list = [_feminine(n, key) for n in last_names]
    clean = _strip_marks if key == "vi_VN" else _plain
    return (([clean(n) for n in male[0]], male[1]), ([clean(n) for n in female[0]], female[1]),
            ([clean(n) for n in last_names], [clean(n) for n in fem_list], last_w))


def _danish_surnames(spec: Mapping[str, object], immigrant_share: float,
                     foreign_sen: float) -> tuple[list[str], np.ndarray]:
    """Danish surnames and their probabilities (see docs/synthetic-data.md, "Names").

    The ten most common names get their 2016 shares; the other -sen names and the rest share
    the remaining mass, Zipf-like in list order, so that ``sen_share`` of everyone carries a -sen
    name. The tail is Faker's da_DK list, the listed names, then place-name compounds
    (prefix + suffix: Øster+gaard, Birk+holm, Lund+by, ...) in a fixed shuffled order.
    """
    da = SimpleNamespace(**faker_lists()["da_DK"])

    top: Mapping[str, int] = spec["top_2016"]  # type: ignore[assignment]
    population = float(spec["population_2016"])  # type: ignore[arg-type]
    prefixes: list[str] = spec["compound_prefixes"]  # type: ignore[assignment]
    suffixes: list[str] = spec["compound_suffixes"]  # type: ignore[assignment]
    compounds = [p + s for p in prefixes for s in suffixes
                 if s not in p.lower() and p.lower() not in s and not re.search(r"(.)\1\1", (p + s).lower())]
    compounds = list(np.random.default_rng(0x5E7).permutation(np.array(compounds)))
    listed = [*da.last_names, *spec["sen"], *spec["other"], *compounds]  # type: ignore[misc]
    seen = set(top)
    tail: list[str] = []
    for name in listed:
        if name not in seen:
            seen.add(name)
            tail.append(str(name))
    sen = [n for n in tail if n.endswith("sen")]
    other = [n for n in tail if not n.endswith("sen")]
    # shares among the Danish-origin draws: exact top ten after hyphenation, and the -sen total
    p_top = np.array(list(top.values()), dtype=np.float64) / population / (1 - immigrant_share) / (1 - P_HYPHEN)
    sen_total = (float(spec["sen_share"]) - immigrant_share * foreign_sen) / (1 - immigrant_share)  # type: ignore[arg-type]
    p_sen = _zipf(len(sen), 1.0, None, 3.0) * (sen_total - p_top.sum())
    p_other = _zipf(len(other), 1.0, None, 12.0) * (1.0 - sen_total)
    return [*top, *sen, *other], np.concatenate((p_top, p_sen, p_other))


@lru_cache(maxsize=1)
def name_tables() -> _NameTables:
    """The name tables, built once from names.json and Faker's lists."""
    spec = json.loads(_NAMES_FILE.read_text(encoding="utf-8"))
    da = SimpleNamespace(**faker_lists()["da_DK"])

    curated = spec["curated"]
    origins = spec["origins"]
    weight: dict[str, float] = {}
    for _country, count, keys in origins["countries"]:
        parts = keys.split()
        for key in parts:
            weight[key] = weight.get(key, 0.0) + count / len(parts)
    foreign = sorted(weight, key=lambda k: -weight[k])
    sources = ("dk", *foreign)
    origin_p = np.array([0.0, *(weight[k] for k in foreign)])
    origin_p /= origin_p.sum()
    immigrant_share = float(origins["share_of_population"])

    given: list[str] = []
    given_w: list[np.ndarray] = []
    surnames: list[str] = []
    surnames_f: list[str] = []
    surname_w: list[np.ndarray] = []
    foreign_sen = 0.0
    for i, key in enumerate(foreign):
        (male, male_w), (female, female_w), (last, last_f, last_w) = _source_lists(key, curated, 100 + 10 * i)
        given += [*male, *female]
        given_w += [male_w, female_w]
        surnames += last
        surnames_f += last_f
        surname_w.append(last_w)
        sen = np.array([n.endswith("sen") for n in last])
        foreign_sen += origin_p[1 + i] * float(last_w[sen].sum() / last_w.sum())
    dk_last, dk_p = _danish_surnames(spec["surnames_dk"], immigrant_share, foreign_sen)
    dk_male, dk_female = list(da.first_names_male), list(da.first_names_female)
    given = [*dk_male, *dk_female, *given]
    given_w = [_zipf(len(dk_male), 0.8, 11), _zipf(len(dk_female), 0.8, 12), *given_w]
    return _NameTables(
        sources=sources, origin_p=origin_p, immigrant_share=immigrant_share,
        given=pl.Series(given, dtype=pl.String), given_groups=_Group.of(given_w),
        surname=pl.Series([*dk_last, *surnames], dtype=pl.String),
        surname_female=pl.Series([*dk_last, *surnames_f], dtype=pl.String),
        surname_groups=_Group.of([dk_p, *surname_w]), danish_surname_p=dk_p,
        hyphenated=np.array(["-" in name for name in [*dk_last, *surnames]], dtype=bool),
    )


def draw_names(rng: np.random.Generator, tables: _NameTables, male: np.ndarray, i_father: np.ndarray,
                i_mother: np.ndarray, child_fam: np.ndarray, n_child: int) -> PersonNames:
    """Origins, given names and surnames; families share an origin and pass surnames on.

    Everyone draws their own names first (as indices, from their origin's lists). Then a mother
    with a known father takes his surname (often keeping hers as a middle name), and children
    take the father's or the mother's surname, sometimes the other parent's as a middle name.
    """
    n = int(male.shape[0])
    n_fam = int(i_mother.shape[0])
    origin = tables.draw_origin(rng, n)
    fam_origin = tables.draw_origin(rng, n_fam)
    origin[:n_child] = fam_origin[child_fam]
    origin[i_mother] = fam_origin
    has_father = i_father >= 0
    origin[i_father[has_father]] = fam_origin[has_father]
    danish = origin == 0

    ggroup = origin.astype(np.int64) * 2 + ~male
    g1, g2 = tables.given_groups.draw(rng, ggroup), tables.given_groups.draw(rng, ggroup)
    del ggroup
    double = (rng.random(n) < np.where(danish, P_DOUBLE_GIVEN[0], P_DOUBLE_GIVEN[1])) & (g1 != g2)
    g2 = np.where(double, g2, -1).astype(np.int32)

    sgroup = origin.astype(np.int64)
    s1 = tables.surname_groups.draw(rng, sgroup)
    s2 = tables.surname_groups.draw(rng, sgroup)
    plain = ~tables.hyphenated[s1] & ~tables.hyphenated[s2] & (s1 != s2)  # no triple-barrelled names
    s2 = np.where(danish & (rng.random(n) < P_HYPHEN) & plain, s2, -1).astype(np.int32)
    del plain
    del sgroup
    mid_draw = tables.surname_groups.draw(rng, np.zeros(n, dtype=np.int64))
    sm = np.where(danish & (rng.random(n) < P_MIDDLE) & (mid_draw != s1), mid_draw, -1).astype(np.int32)
    del mid_draw

    # a mother takes the father's surname, often keeping her own as a middle name
    take = np.flatnonzero(has_father & (rng.random(n_fam) < P_TAKE_PARTNERS))
    keep = rng.random(take.shape[0]) < P_KEEP_AS_MIDDLE
    mothers, fathers = i_mother[take], i_father[take]
    own = s1[mothers]
    sm[mothers] = np.where(keep & danish[mothers] & (s2[mothers] < 0) & (own != s1[fathers]), own, sm[mothers])
    s1[mothers], s2[mothers] = s1[fathers], s2[fathers]

    # children: the father's surname (70 %) or the mother's, the same for all siblings; sometimes
    # the other parent's as a middle name
    from_father = has_father & (rng.random(n_fam) < P_CHILD_FATHERS)
    src = np.where(from_father, i_father, i_mother)
    other = np.where(from_father, i_mother, i_father)
    other_s1 = s1[np.maximum(other, 0)]
    middle = (fam_origin == 0) & (other >= 0) & (rng.random(n_fam) < P_CHILD_MIDDLE) & (other_s1 != s1[src]) \
        & (s2[src] < 0)
    s1[:n_child], s2[:n_child] = s1[src][child_fam], s2[src][child_fam]
    sm[:n_child] = np.where(middle, other_s1, sm[src])[child_fam]
    return PersonNames(origin=origin, g1=g1, g2=g2, sm=sm, s1=s1, s2=s2)


@dataclass(frozen=True)
class ForeignPool:
    """People in no register (tourists, foreign workers): their names and birth dates."""

    given: pl.Series
    surname: pl.Series
    birth: pl.Series  # Date


def draw_foreign_pool(rng: np.random.Generator, n_rows: int) -> ForeignPool:
    """A pool smaller than the foreign rows expected, so some foreigners appear on several events."""
    tables = name_tables()
    size = max(int(n_rows * P_FOREIGN / 1.3), 1)
    src = rng.choice(len(tables.sources) - 1, size=size, p=tables.origin_p[1:]) + 1
    male = rng.random(size) < 0.6
    gg = src.astype(np.int64) * 2 + ~male
    g1, g2 = tables.given_groups.draw(rng, gg), tables.given_groups.draw(rng, gg)
    g2 = np.where((rng.random(size) < P_DOUBLE_GIVEN[1]) & (g1 != g2), g2, -1)
    s1 = tables.surname_groups.draw(rng, src.astype(np.int64))
    none = np.full(size, -1, dtype=np.int32)
    return ForeignPool(
        given=tables.given_str(g1, g2),
        surname=tables.surname_str(none, s1, none, ~male),
        birth=pl.Series(rng.integers(-15_000, 11_000, size=size).astype("datetime64[D]")),
    )


