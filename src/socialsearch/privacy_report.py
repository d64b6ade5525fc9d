"""Measured attacks on the hub extract: what a hub that holds outside knowledge singles out.

Three knowledge models (``docs/privacy.md``, "Measured attacks"), each an attack written once
here and used by ``tests/test_privacy.py``, the benchmark and the command line:

* **A, the register.** The hub also holds the population register (CPR number, hence birth
  date and age; residence municipality; the child–adult links with their relation type) but
  no key. For every shipped person the attack computes the structural signature the hub
  extract shows (whatever child attributes the extract has, the relation types, the children
  per adult, co-parents and siblings through shared children) and the same signature for
  every person of the register; the anonymity set of a shipped person is the register persons
  it cannot be told apart from. Several weeks' extracts are attacked together: pseudonyms are
  stable, so what each week showed adds up (an age that changes between two weeks gives away
  the birth week).
* **B, the press.** The hub knows date, hour, municipality and kind of a share of the raw
  events and pins each to the events of the extract that show the same (an extract that shows
  only whether an event was registered in its week gives the hub, over its weeks, the
  registration week of the events it saw flagged); it then tries to name the pseudonym of a
  person on the event.
* **C, rotation.** The hub holds the extract of one week under the old key and under the new
  one and links old to new pseudonyms by structure alone (colour refinement of the graph of
  events, persons and relations).

Everything is Polars over whole columns: signatures are hashes of structs and sorted lists,
anonymity sets are ``group_by`` counts and joins; the only Python loops run over weeks,
observation patterns (only when a child attribute changes with the week, such as an age) and
refinement rounds. The attacks adapt to the columns an extract holds: a child attribute the
register cannot compute is left out (and reported), an absent relation column makes every link
the same type in the extract and in the register.

Run ``python -m socialsearch.privacy_report EXTRACT [EXTRACT ...] --register RAW [--keys KEYS]
[--rotated EXTRACT] [--spans 1,4,52] [--json]``. Extracts of several weeks are attacked together; ``--keys``
(the custodian's full keystore) only checks which unique matches are right, and the report never
prints an identifier.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import polars as pl

from .contract import age_on
from .crypto.keys import KeyStore
from .crypto.pseudonyms import Pseudonymiser
from .errors import SocialsearchError
from .hub_extract import HubExtract, read_hub
from .identifiers import birth_date_of_number, cpr_number
from .weeks import IsoWeek

__all__ = [
    "AnonymityReport",
    "BINS",
    "PressReport",
    "Register",
    "RotationReport",
    "load_register",
    "main",
    "measure",
    "press_attack",
    "register_attack",
    "render",
    "rotation_attack",
    "truth",
]

BINS: Final[tuple[tuple[str, int, int], ...]] = (
    ("0", 0, 0), ("1", 1, 1), ("2-4", 2, 4), ("5-9", 5, 9), ("10-99", 10, 99), (">=100", 100, 2**31 - 1))
"""Anonymity-set size bins of the report (a set of 0 means the signature missed the person)."""
_SEED: Final = 0x5EC
_NOT_A_CHILD: Final = 0x1D  # the week's value of someone who is no child (yet, or any more)
_ROUNDS: Final = 4
_BAND_EDGES: Final = (0, 3, 7, 12, 15)
_PAIR_CAP: Final = 2_000  # children whose smallest class is larger are reported with that class's size
_MOST_CHILDREN: Final = 8  # sub-families are drawn from an adult's first eight children


# --------------------------------------------------------------------------- the register
@dataclass(frozen=True)
class Register:
    """The population register as the attacker holds it: no name, no key.

    ``people``: ``number`` (the CPR number as Int64), ``birth_date``, ``municipality``;
    ``links``: ``child``, ``adult`` (numbers) and ``relset`` (the sorted relation types of the pair).
    ``incidents``: the raw events (for the press model): ``district``, ``incident_id``,
    ``occurred_at``, ``municipality``, ``incident_code``, ``offence_code`` and ``persons`` (how
    many persons each involved).
    """

    people: pl.DataFrame
    links: pl.DataFrame
    incidents: pl.DataFrame


def _relset(frame: pl.LazyFrame, child: str, adult: str, relation: str | None) -> pl.LazyFrame:
    """One row per (child, adult) with ``relset``: its relation types sorted and joined by '+'."""
    rel = pl.col(relation) if relation else pl.lit("")
    return (frame.select(pl.col(child).alias("child"), pl.col(adult).alias("adult"), rel.alias("relation"))
            .unique().group_by("child", "adult")
            .agg(pl.col("relation").sort().str.join("+").alias("relset")))


def load_register(raw_dir: str | Path) -> Register:
    """Read the register and the raw events from a raw-extract folder (validated by the station's reader)."""
    from .station.extracts import read_raw  # late: the station's reader is heavy to import

    raw = read_raw(Path(raw_dir))
    people = raw.population.select(cpr_number(pl.col("cpr")).alias("number"), "municipality").with_columns(
        birth_date_of_number(pl.col("number")).alias("birth_date"))
    links = _relset(raw.relations.lazy().select(
        cpr_number(pl.col("child_cpr")).alias("c"), cpr_number(pl.col("adult_cpr")).alias("a"), "relation"),
        "c", "a", "relation").filter(pl.col("child") != pl.col("adult")).collect()
    persons = raw.incident_persons.group_by("district", "incident_id").agg(pl.len().cast(pl.Int64).alias("persons"))
    incidents = raw.incidents.select("district", "incident_id", "occurred_at", "municipality",
                                     "incident_code", "offence_code").join(
        persons, on=["district", "incident_id"], how="left").with_columns(pl.col("persons").fill_null(0))
    return Register(people=people, links=links, incidents=incidents)


# --------------------------------------------------------------------------- small helpers
def _h(*exprs: pl.Expr) -> pl.Expr:
    """A 64-bit hash of a struct of expressions (the same inputs give the same value)."""
    return pl.struct(*(e.alias(f"f{i}") for i, e in enumerate(exprs))).hash(_SEED)


def _bins(sizes: pl.Series) -> dict[str, int]:
    sizes = sizes.cast(pl.Int64)
    return {label: int(sizes.is_between(lo, hi).sum()) for label, lo, hi in BINS}


def _band(age: pl.Expr) -> pl.Expr:
    """The age band's lower edge (0-2, 3-6, 7-11, 12-14, 15-17 → 0, 3, 7, 12, 15)."""
    out = pl.lit(_BAND_EDGES[0], pl.Int64)
    for edge in _BAND_EDGES[1:]:
        out = pl.when(age >= edge).then(pl.lit(edge, pl.Int64)).otherwise(out)
    return out


_Attribute = Callable[[date], pl.Expr]
_ATTRIBUTES: Final[dict[str, _Attribute]] = {
    "municipality": lambda _sunday: pl.col("municipality").cast(pl.String),
    "age": lambda sunday: age_on(pl.col("birth_date"), sunday).cast(pl.Int64),
    "age_band": lambda sunday: _band(age_on(pl.col("birth_date"), sunday)),
}
"""Child attributes the register can compute, by the hub extract's column name."""


def _extract_attribute(name: str, dtype: pl.DataType) -> pl.Expr:
    """A hub column in the form :data:`_ATTRIBUTES` computes it (a band written as text → its lower edge)."""
    col = pl.col(name)
    if name == "age_band" and dtype == pl.String:
        return col.str.extract(r"^(\d+)", 1).cast(pl.Int64).alias(name)
    return col.cast(pl.Int64 if name.startswith("age") else pl.String).alias(name)


def _child_attributes(hubs: Sequence[HubExtract]) -> tuple[list[str], list[str]]:
    """The children's attribute columns the attack uses, and those it cannot compute from a register."""
    columns = [c for c, t in hubs[-1].children.schema.items() if c != "person" and t != pl.Binary]
    return [c for c in columns if c in _ATTRIBUTES], [c for c in columns if c not in _ATTRIBUTES]


# --------------------------------------------------------------------------- week codes
def _pattern_code(pattern: int, n_weeks: int) -> pl.Expr:
    """The code of what weeks ``pattern`` (a bit per week) showed of ``v0 .. v{n-1}``.

    A person seen in the weeks of the pattern shows its value in the first of them and then only
    the weeks where the value changed (and to what): a child whose age stays the same gets the
    same code however long it was seen; one whose age changed between two weeks gets a code that
    names the week.
    """
    weeks = [w for w in range(n_weeks) if pattern >> w & 1]
    code = _h(pl.lit(-1, pl.Int32), pl.col(f"v{weeks[0]}"))
    for prev, week in zip(weeks, weeks[1:], strict=False):
        changed = _h(code, pl.lit(week, pl.Int32), pl.col(f"v{week}"))
        code = pl.when(pl.col(f"v{week}") != pl.col(f"v{prev}")).then(changed).otherwise(code)
    return _h(pl.lit(pattern, pl.Int64), code)


def _register_values(register: Register, weeks: Sequence[IsoWeek], attributes: list[str],
                     max_age: int) -> pl.DataFrame:
    """Per register person who is a child in some week: ``number`` and ``v<i>``, the hash of the
    child attributes in week i (or of 'not a child')."""
    first, last = weeks[0].sunday, weeks[-1].sunday
    young = register.people.filter(age_on(pl.col("birth_date"), first) <= max_age,
                                   age_on(pl.col("birth_date"), last) >= 0)
    values = []
    for i, week in enumerate(weeks):
        age = age_on(pl.col("birth_date"), week.sunday)
        attrs = [_ATTRIBUTES[a](week.sunday).alias(a) for a in attributes]
        values.append(pl.when(age.is_between(0, max_age)).then(_h(*attrs) if attrs else pl.lit(1, pl.UInt64))
                      .otherwise(pl.lit(_NOT_A_CHILD, pl.UInt64)).alias(f"v{i}"))
    return young.select("number", *values)


# --------------------------------------------------------------------------- the extract side
@dataclass(frozen=True)
class _View:
    """What the hub holds after the weeks: per child its week values and pattern, the links."""

    children: pl.DataFrame  # person, pattern, v0..v{n-1} (null where not shipped that week)
    links: pl.DataFrame  # child, adult, relset
    adults: pl.DataFrame  # adult, pattern


def _patterns(weeks: pl.Expr, n_weeks: int) -> pl.Expr:
    """Inside ``agg``: the bit pattern of the week indices in ``weeks``."""
    return weeks.unique().replace_strict({i: 1 << i for i in range(n_weeks)}, return_dtype=pl.Int64).sum()


def _view(hubs: Sequence[HubExtract], attributes: list[str]) -> _View:
    n = len(hubs)
    long = []
    for i, hub in enumerate(hubs):
        schema = hub.children.schema
        attrs = [_extract_attribute(a, schema[a]) for a in attributes]
        long.append(hub.children.select("person", pl.lit(i, pl.Int32).alias("w"),
                                        (_h(*attrs) if attrs else pl.lit(1, pl.UInt64)).alias("v")))
    values = pl.concat(long).pivot(on="w", index="person", values="v")
    values = values.rename({str(i): f"v{i}" for i in range(n) if str(i) in values.columns}).with_columns(
        pl.lit(None, pl.UInt64).alias(f"v{i}") for i in range(n) if str(i) not in values.columns)
    pattern = pl.sum_horizontal(pl.col(f"v{i}").is_not_null().cast(pl.Int64) * (1 << i) for i in range(n))
    children = values.select("person", pattern.alias("pattern"), *(f"v{i}" for i in range(n)))
    has_type = all("relation" in h.relations.columns for h in hubs)
    relations = pl.concat([h.relations.select("child", "adult",
                                              pl.col("relation") if has_type else pl.lit("").alias("relation"),
                                              pl.lit(i, pl.Int32).alias("w")) for i, h in enumerate(hubs)])
    links = _relset(relations.lazy(), "child", "adult", "relation").collect()
    adults = relations.group_by("adult").agg(_patterns(pl.col("w"), n).alias("pattern"))
    return _View(children=children, links=links, adults=adults)


# --------------------------------------------------------------------------- attack A
@dataclass(frozen=True)
class AnonymityReport:
    """Model A's result: anonymity-set sizes of the shipped children and adults.

    ``sizes`` has one row per shipped person: ``person``, ``kind`` (``child`` | ``adult``),
    ``k`` (the anonymity-set size), ``match`` (the register number of the one match when
    ``k == 1``) and, given the truth, ``right`` (the one match is that person).
    """

    weeks: list[str]
    attributes: list[str]
    ignored: list[str]
    relation_types: bool
    sizes: pl.DataFrame = field(repr=False, compare=False)

    def bins(self, kind: str) -> dict[str, int]:
        return _bins(self.sizes.filter(pl.col("kind") == kind)["k"])

    def shipped(self, kind: str) -> int:
        return int((self.sizes["kind"] == kind).sum())

    def unique(self, kind: str) -> int:
        return int(((self.sizes["kind"] == kind) & (self.sizes["k"] == 1)).sum())

    def reidentified(self, kind: str) -> int | None:
        """Shipped persons of ``kind`` whose one match is right (None without the truth)."""
        if "right" not in self.sizes.columns:
            return None
        return int(((self.sizes["kind"] == kind) & self.sizes["right"]).sum())

    def share(self, kind: str) -> float:
        """Re-identified share of shipped ``kind`` (unique matches when the truth is not known)."""
        hits = self.reidentified(kind)
        return (self.unique(kind) if hits is None else hits) / max(self.shipped(kind), 1)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"weeks": self.weeks, "attributes": self.attributes, "ignored": self.ignored,
                               "relation_types": self.relation_types}
        for kind in ("child", "adult"):
            out[kind] = {"shipped": self.shipped(kind), "bins": self.bins(kind), "unique": self.unique(kind),
                         "reidentified": self.reidentified(kind), "share": round(self.share(kind), 6)}
        return out


def _shows_every_child(hubs: Sequence[HubExtract]) -> bool:
    """Whether the extracts ship every child of a shipped adult (format version 2 does).

    Later formats ship only some of them (the children the week can draft), so the children an
    adult shows are then a part of its family in the register, matched as a sub-multiset.
    """
    return all(int(h.manifest.get("version", 2)) <= 2 for h in hubs)


def _masks(most: int) -> pl.DataFrame:
    """``n``, ``mask``, ``j``: for families of n = 1..most children, each non-empty subset (mask)
    and the positions j it holds (a small constant table)."""
    rows = [(n, mask, j) for n in range(1, most + 1) for mask in range(1, 1 << n) for j in range(n) if mask >> j & 1]
    return pl.DataFrame(rows, schema={"n": pl.UInt32, "mask": pl.Int64, "j": pl.UInt32}, orient="row")


def _families(elements: pl.DataFrame, pattern: int, whole: bool) -> pl.DataFrame:
    """``adult``, ``mask``, ``key``, ``child``, ``relset``, ``e``: each adult's family signature(s)
    and who is in them.

    ``elements`` holds ``adult``, ``child``, ``relset`` and ``e`` (the child's code with the
    relation types). With ``whole`` one signature per adult (the multiset of all its elements,
    ``mask`` 0); otherwise one per sub-multiset (families of more than :data:`_MOST_CHILDREN`
    children count with their first ones), each naming the children in it.
    """
    if whole:
        keys = elements.group_by("adult").agg(pl.col("e").sort().alias("l")).select(
            "adult", _h(pl.lit(pattern, pl.Int64), pl.col("l").hash(_SEED)).alias("key"))
        return elements.join(keys, on="adult").select("adult", pl.lit(0, pl.Int64).alias("mask"), "key", "child",
                                                      "relset", "e")
    ranked = elements.sort("adult", "e", "child").with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt32).over("adult").alias("j"),
        pl.len().over("adult").cast(pl.UInt32).clip(upper_bound=_MOST_CHILDREN).alias("n"),
    ).filter(pl.col("j") < _MOST_CHILDREN)
    subsets = ranked.join(_masks(_MOST_CHILDREN), on=["n", "j"])
    keys = subsets.group_by("adult", "mask").agg(pl.col("e").sort().alias("l")).select(
        "adult", "mask", _h(pl.lit(pattern, pl.Int64), pl.col("l").hash(_SEED)).alias("key"))
    return subsets.join(keys, on=["adult", "mask"]).select("adult", "mask", "key", "child", "relset", "e")


def _own_keys(values: pl.DataFrame, patterns: list[int], n: int, key: str) -> pl.DataFrame:
    """``key`` column → (``key``, ``own``) for each pattern: what the weeks of the pattern showed of
    the person's own attributes; only persons who were a child in one of those weeks."""
    out = []
    for pattern in patterns:
        weeks = [w for w in range(n) if pattern >> w & 1]
        child = pl.any_horizontal(pl.col(f"v{w}") != _NOT_A_CHILD for w in weeks)
        out.append(values.filter(child).select(key, _pattern_code(pattern, n).alias("own")))
    return pl.concat(out) if out else pl.DataFrame(schema={key: values.schema[key], "own": pl.UInt64})


def _sizes_by_patterns(hubs: Sequence[HubExtract], register: Register, attributes: list[str], max_age: int,
                       whole: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Model A when the child attributes change with the week (an age): per observation pattern
    (the weeks a person was shipped), what those weeks showed; ``person``, ``k``, ``match`` for the
    shipped children and for the shipped adults."""
    weeks = [IsoWeek.parse(h.week) for h in hubs]
    n = len(weeks)
    view = _view(hubs, attributes)
    reg = _register_values(register, weeks, attributes, max_age)
    values = [f"v{i}" for i in range(n)]
    if whole:  # a child of a shipped adult missing in one of its weeks was no child then
        filled = [pl.col(v).fill_null(_NOT_A_CHILD) for v in values]
    else:  # ... or not shipped that week: take the nearest week's value
        filled = [pl.coalesce(*(values[j] for j in sorted(range(n), key=lambda j: (abs(j - i), j)))).alias(v)
                  for i, v in enumerate(values)]

    # 1. Adults: the multiset of their children's codes (with the relation types), over the
    # adult's weeks, in the extract and (whole or as any part of a family) in the register.
    ext_links = view.links.join(view.adults, on="adult").join(
        view.children.select(pl.col("person").alias("child"), *values), on="child", how="left"
    ).with_columns(filled)
    reg_links = _register_links(register, hubs).join(reg.rename({"number": "child"}), on="child")
    ext_families, reg_families = [], []
    for pattern in view.adults.get_column("pattern").unique().sort().to_list():
        code = _h(_pattern_code(pattern, n), pl.col("relset")).alias("e")
        ext = ext_links.filter(pl.col("pattern") == pattern).select("adult", "child", "relset", code)
        ext_families.append(_families(ext, pattern, True).select("adult", "key", "child", "relset"))
        in_weeks = pl.any_horizontal(pl.col(f"v{w}") != _NOT_A_CHILD for w in range(n) if pattern >> w & 1)
        found = _families(reg_links.filter(in_weeks).select("adult", "child", "relset", code), pattern, whole)
        reg_families.append(found.join(ext_families[-1].select("key").unique(), on="key", how="semi")
                            .select("adult", "key", "child", "relset").unique())
    ext_fam = pl.concat(ext_families)
    reg_fam = pl.concat(reg_families).rename({"adult": "adult_r", "child": "x"})
    adult_class = reg_fam.group_by("key").agg(pl.col("adult_r").n_unique().alias("k"),
                                              pl.col("adult_r").first().alias("match"))

    # 2. Children: their own code over their weeks, and their links (relation types, adult's signature).
    ext_lk = ext_fam.select("child", "adult", _h(pl.col("relset"), pl.col("key")).alias("lk")).unique()
    reg_lk = reg_fam.select("x", "adult_r", _h(pl.col("relset"), pl.col("key")).alias("lk")).unique()
    child_patterns = view.children.get_column("pattern").unique().sort().to_list()
    ext_own = pl.concat([view.children.filter(pl.col("pattern") == p).select(
        pl.col("person").alias("child"), _pattern_code(p, n).alias("own")) for p in child_patterns])
    reg_own = _own_keys(reg, child_patterns, n, "number").rename({"number": "x"}).join(
        ext_own.select("own").unique(), on="own", how="semi")
    # the class of each (own code, link): register children with that code and such a link
    classes = reg_lk.join(reg_own, on="x").group_by("own", "lk").agg(pl.col("x").n_unique().alias("size"))
    bound = (ext_lk.join(ext_own, on="child").join(classes, on=["own", "lk"], how="left")
             .with_columns(pl.col("size").fill_null(0))
             .group_by("child").agg(pl.col("size").min(), pl.col("lk").sort_by("size", "lk").first(),
                                    pl.col("own").first()))
    alone = ext_own.join(ext_lk.select("child").unique(), on="child", how="anti").join(
        reg_own.group_by("own").agg(pl.len().alias("k"), pl.col("x").first().alias("match")), on="own", how="left")


    # 3. Candidates of the children with a small class: every link must hold, with multiplicity.
    small = bound.filter(pl.col("size").is_between(1, _PAIR_CAP))
    start = small.join(reg_lk.select("x", "lk").unique(), on="lk").join(reg_own, on=["x", "own"], how="semi")
    return _finish(view.children.select("person"), view.adults.select(pl.col("adult").alias("person")),
                   start.select("child", "x"), bound, small, alone.select("child", "k", "match"), ext_lk, reg_lk,
                   ext_fam.select("adult", "key").unique().join(adult_class, on="key").select("adult", "k", "match"))


def _finish(children: pl.DataFrame, adults: pl.DataFrame, start: pl.DataFrame, bound: pl.DataFrame,
            small: pl.DataFrame, alone: pl.DataFrame, ext_lk: pl.DataFrame, reg_lk: pl.DataFrame,
            adult_class: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Steps common to both ways of model A: the candidates of the children with a small class,
    refined through their adults; ``person``, ``k``, ``match`` of the children and of the adults.

    ``start``: (``child``, ``x``) pairs whose own attributes and smallest link agree; ``bound``:
    ``child`` and its smallest class ``size``; ``small``: the children enumerated; ``alone``: children
    without links (``child``, ``k``, ``match``); ``ext_lk`` / ``reg_lk``: the links (child, adult,
    ``lk``) in the extract and in the register (``x``, ``adult_r``, ``lk``); ``adult_class``: per
    extract adult its class size ``k`` and ``match`` from the family signatures.
    """
    need = ext_lk.group_by("child", "lk").len("m")
    have = reg_lk.group_by("x", "lk").len("mx")
    n_lk = need.group_by("child").len("n_lk")
    pairs = (start.join(need, on="child").join(have, on=["x", "lk"])
             .filter(pl.col("mx") >= pl.col("m")).group_by("child", "x").len("hit")
             .join(n_lk, on="child").filter(pl.col("hit") == pl.col("n_lk")).select("child", "x"))

    # Refine: an adult's candidate must have, for each of its children with candidates, one
    # of them linked the same way; a child's candidate must have a candidate of each of its adults.
    cand_adults = pl.DataFrame(schema={"adult": pl.String, "adult_r": pl.Int64})
    n_adults = ext_lk.group_by("child").agg(pl.col("adult").n_unique().alias("na"))
    for _ in range(_ROUNDS):
        steps = pairs.join(ext_lk, on="child").join(reg_lk, on=["x", "lk"])
        n_children = steps.group_by("adult").agg(pl.col("child").n_unique().alias("nc"))
        cand_adults = (steps.group_by("adult", "adult_r").agg(pl.col("child").n_unique().alias("hit"))
                       .join(n_children, on="adult").filter(pl.col("hit") == pl.col("nc")).select("adult", "adult_r"))
        refined = (steps.join(cand_adults, on=["adult", "adult_r"], how="semi")
                   .group_by("child", "x").agg(pl.col("adult").n_unique().alias("hit"))
                   .join(n_adults, on="child").filter(pl.col("hit") == pl.col("na")).select("child", "x"))
        if refined.height == pairs.height:
            break
        pairs = refined

    # Sizes: counted candidates where they were listed, otherwise the smallest class (a bound).
    listed = pairs.group_by("child").agg(pl.len().alias("k"), pl.col("x").first().alias("match"))
    bounded = bound.join(small.select("child"), on="child", how="anti").select(
        "child", pl.col("size").alias("k"), pl.lit(None, pl.Int64).alias("match"))
    found = pl.concat([listed, bounded, alone], how="vertical_relaxed")
    children = children.join(found.rename({"child": "person"}), on="person", how="left")
    refined_adults = cand_adults.group_by("adult").agg(pl.len().alias("k_r"), pl.col("adult_r").first().alias("m_r"))
    smaller = pl.col("k_r").is_not_null() & (pl.col("k_r") < pl.col("k"))
    adults = (adults.join(adult_class.rename({"adult": "person"}), on="person", how="left")
              .join(refined_adults.rename({"adult": "person"}), on="person", how="left")
              .select("person", pl.when(smaller).then(pl.col("k_r")).otherwise(pl.col("k")).alias("k"),
                      pl.when(smaller).then(pl.col("m_r")).otherwise(pl.col("match")).alias("match")))
    return children, adults


def _register_spans(register: Register, weeks: Sequence[IsoWeek], attributes: list[str],
                    max_age: int) -> pl.DataFrame:
    """Per register person who is a child on the Sunday of some of ``weeks``: ``x`` (the number),
    ``m`` (the hash of the week-independent child attributes) and ``s``, ``t``: the first and the
    last week index at which the person is a child (age only grows, so it is one in between)."""
    birth = pl.col("birth_date")
    young = register.people.filter(age_on(birth, weeks[0].sunday) <= max_age, age_on(birth, weeks[-1].sunday) >= 0)
    unborn = pl.sum_horizontal((age_on(birth, w.sunday) < 0).cast(pl.Int32) for w in weeks)
    grown = pl.sum_horizontal((age_on(birth, w.sunday) > max_age).cast(pl.Int32) for w in weeks)
    attrs = [_ATTRIBUTES[a](weeks[-1].sunday).alias(a) for a in attributes]
    return young.select(pl.col("number").alias("x"), (_h(*attrs) if attrs else pl.lit(1, pl.UInt64)).alias("m"),
                        unborn.alias("s"), (len(weeks) - 1 - grown).alias("t"))


def _shown_spans(hubs: Sequence[HubExtract], attributes: list[str]) -> pl.DataFrame:
    """Per shipped child: ``child``, ``m`` (its attributes' hash, or a value no register child has
    when two weeks showed different ones) and ``a``, ``b``: the first and last week index shipped."""
    long = []
    for i, hub in enumerate(hubs):
        attrs = [_extract_attribute(a, hub.children.schema[a]) for a in attributes]
        long.append(hub.children.select(pl.col("person").alias("child"), pl.lit(i, pl.Int32).alias("w"),
                                        (_h(*attrs) if attrs else pl.lit(1, pl.UInt64)).alias("v")))
    return pl.concat(long).group_by("child").agg(
        pl.when(pl.col("v").n_unique() == 1).then(pl.col("v").first()).otherwise(pl.lit(_NOT_A_CHILD, pl.UInt64))
        .alias("m"), pl.col("w").min().alias("a"), pl.col("w").max().alias("b"))


def _typed(hubs: Sequence[HubExtract]) -> bool:
    """Whether the extracts show the relation types of their links."""
    return all("relation" in h.relations.columns for h in hubs)


def _register_links(register: Register, hubs: Sequence[HubExtract]) -> pl.DataFrame:
    """The register's links as the extracts can be compared with them: without their relation
    types when the extracts show none."""
    return register.links if _typed(hubs) else register.links.with_columns(pl.lit("").alias("relset"))


def _links(hubs: Sequence[HubExtract]) -> pl.DataFrame:
    """``child``, ``adult``, ``relset``: every (child, adult) link of the weeks, with the relation
    types any week showed (none when the extract has no relation column)."""
    relation = pl.col("relation") if _typed(hubs) else pl.lit("").alias("relation")
    relations = pl.concat([h.relations.select("child", "adult", relation) for h in hubs])
    return _relset(relations.lazy(), "child", "adult", "relation").collect()


_COVERS: Final = (pl.col("s") <= pl.col("a")) & (pl.col("t") >= pl.col("b"))
"""A register child (a child from week ``s`` to ``t``) can be a shipped one (shipped from ``a`` to ``b``)."""


def _sizes_by_spans(hubs: Sequence[HubExtract], register: Register, attributes: list[str], max_age: int,
                    whole: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Model A when the child attributes do not change with the week (no age): a shipped child
    shows its attributes and the span of weeks it was shipped, and can be any register child with
    those attributes who is a child throughout that span. Family signatures therefore leave the
    span out (one signature per family, whatever the weeks), and the spans are checked on the
    candidates; ``person``, ``k``, ``match`` for the shipped children and for the shipped adults.
    """
    n = len(hubs)
    kids = _shown_spans(hubs, attributes)
    links = _links(hubs)
    reg = _register_spans(register, [IsoWeek.parse(h.week) for h in hubs], attributes, max_age)

    # 1. Adults: the multiset of their children's attributes with the relation types, in the
    # extract and (whole or as any part of a family) in the register; then the spans, checked on
    # the register families of the same signature.
    ext_el = links.join(kids, on="child").with_columns(_h(pl.col("m"), pl.col("relset")).alias("e"))
    ext_fam = _families(ext_el.select("adult", "child", "relset", "e"), 0, True)
    reg_el = _register_links(register, hubs).rename({"child": "x"}).join(reg, on="x").with_columns(
        _h(pl.col("m"), pl.col("relset")).alias("e"))
    if not whole:  # a part of a family matches only with elements the extract shows
        reg_el = reg_el.join(ext_el.select("e").unique(), on="e", how="semi")
    reg_fam = (_families(reg_el.select("adult", pl.col("x").alias("child"), "relset", "e"), 0, whole)
               .join(ext_fam.select("key").unique(), on="key", how="semi")
               .rename({"adult": "adult_r", "child": "x"}).join(reg.select("x", "s", "t"), on="x"))
    upper = reg_fam.group_by("key").agg(pl.col("adult_r").n_unique().alias("k_up"))
    # families whose children are children in every week fit any span: a lower bound
    lower = (reg_fam.group_by("adult_r", "mask", "key").agg(((pl.col("s") == 0) & (pl.col("t") == n - 1)).all()
                                                             .alias("whole_span"))
             .filter("whole_span").group_by("key").agg(pl.col("adult_r").n_unique().alias("k_low")))
    adult_keys = ext_fam.select("adult", "key").unique().join(upper, on="key", how="left").join(
        lower, on="key", how="left").with_columns(pl.col("k_up").fill_null(0), pl.col("k_low").fill_null(0))
    checked = adult_keys.filter((pl.col("k_up") <= _PAIR_CAP) | (pl.col("k_low") < 2)).select("adult")
    # each shipped child has a register child of its element whose span covers it, and each
    # register child of the part covers one of them (the one-to-one match, relaxed)
    fit = (ext_fam.join(checked, on="adult", how="semi").join(kids.select("child", "a", "b"), on="child")
           .join(reg_fam.select("key", "adult_r", "mask", "x", "e", "s", "t"), on=["key", "e"])
           .with_columns(_COVERS.alias("ok")))
    per_child = fit.group_by("adult", "adult_r", "mask", "child").agg(pl.col("ok").any())
    per_x = fit.group_by("adult", "adult_r", "mask", "x").agg(pl.col("ok").any())
    bad = pl.concat([per_child.filter(~pl.col("ok")).select("adult", "adult_r", "mask"),
                     per_x.filter(~pl.col("ok")).select("adult", "adult_r", "mask")]).unique()
    verified = per_child.select("adult", "adult_r", "mask").unique().join(
        bad, on=["adult", "adult_r", "mask"], how="anti").select("adult", "adult_r").unique()
    adult_class = pl.concat([
        checked.join(verified.group_by("adult").agg(pl.len().alias("k"), pl.col("adult_r").first().alias("match")),
                     on="adult", how="left").with_columns(pl.col("k").fill_null(0)),
        adult_keys.join(checked, on="adult", how="anti").select(
            "adult", pl.col("k_up").alias("k"), pl.lit(None, pl.Int64).alias("match")),
    ], how="vertical_relaxed")

    # 2. Children: their attributes and span, and their links (relation types, adult's signature).
    ext_lk = ext_fam.select("child", "adult", _h(pl.col("relset"), pl.col("key")).alias("lk")).unique()
    reg_lk = reg_fam.select("x", "adult_r", _h(pl.col("relset"), pl.col("key")).alias("lk")).unique()
    classes = (reg_lk.select("x", "lk").unique().join(reg, on="x")
               .group_by("lk", "m", "s", "t").len("size"))
    sized = (ext_lk.select("child", "lk").unique().join(kids, on="child")
             .join(classes, on=["lk", "m"], how="left").filter(_COVERS.fill_null(False))
             .group_by("child", "lk").agg(pl.col("size").sum()))
    bound = (ext_lk.select("child", "lk").unique().join(sized, on=["child", "lk"], how="left")
             .with_columns(pl.col("size").fill_null(0))
             .group_by("child").agg(pl.col("size").min(), pl.col("lk").sort_by("size", "lk").first()))
    lonely = kids.join(ext_lk.select("child").unique(), on="child", how="anti")
    alone = (lonely.join(reg.group_by("m", "s", "t").len("size"), on="m", how="left").filter(_COVERS.fill_null(False))
             .group_by("child").agg(pl.col("size").sum().alias("k")))
    alone = lonely.select("child").join(alone, on="child", how="left").with_columns(pl.col("k").fill_null(0))
    alone_match = (alone.filter(pl.col("k") == 1).join(kids, on="child").join(reg, on="m").filter(_COVERS)
                   .select("child", pl.col("x").alias("match")))
    alone = alone.join(alone_match, on="child", how="left")

    # 3. Candidates of the children with a small class, by their smallest link.
    small = bound.filter(pl.col("size").is_between(1, _PAIR_CAP))
    start = (small.select("child", "lk").join(reg_lk.select("x", "lk").unique(), on="lk")
             .join(kids, on="child").join(reg, on=["x", "m"]).filter(_COVERS).select("child", "x"))
    adults = links.select(pl.col("adult").alias("person")).unique()
    return _finish(kids.select(pl.col("child").alias("person")), adults, start, bound, small,
                   alone.select("child", "k", "match"), ext_lk, reg_lk, adult_class.select("adult", "k", "match"))


def register_attack(hubs: Sequence[HubExtract], register: Register, *,
                    truth: pl.DataFrame | None = None) -> AnonymityReport:
    """Model A over the weeks of ``hubs`` (oldest first; one week or several under one key).

    ``truth`` (``person``, ``number``: the register number behind each pseudonym, from
    :func:`truth`) only marks which unique matches are right.
    """
    hubs = sorted(hubs, key=lambda h: IsoWeek.parse(h.week).monday)
    max_age = int(hubs[-1].manifest.get("catalogue", {}).get("child_max_age", 17))
    whole = _shows_every_child(hubs)
    attributes, ignored = _child_attributes(hubs)
    by = _sizes_by_patterns if any(a.startswith("age") for a in attributes) else _sizes_by_spans
    children, adults = by(hubs, register, attributes, max_age, whole)
    sizes = pl.concat([children.with_columns(pl.lit("child").alias("kind")),
                       adults.with_columns(pl.lit("adult").alias("kind"))], how="vertical_relaxed").select(
        "person", "kind", pl.col("k").fill_null(0).cast(pl.Int64),
        pl.when(pl.col("k") == 1).then(pl.col("match")).cast(pl.Int64).alias("match"))
    if truth is not None:
        true = truth.select("person", pl.col("number").alias("_true"))
        sizes = sizes.join(true, on="person", how="left").with_columns(
            (pl.col("match") == pl.col("_true")).fill_null(False).alias("right")).drop("_true")
    return AnonymityReport(weeks=[h.week for h in hubs], attributes=attributes, ignored=ignored,
                           relation_types=_typed(hubs), sizes=sizes)


def truth(register: Register, keystore: KeyStore, key_id: str | None = None) -> pl.DataFrame:
    """``person``, ``number``: the pseudonym under ``key_id`` of every register person who could
    be shipped (anyone under 19, anyone with a child). Needs the secret: for measuring only."""
    youngest = register.people.get_column("birth_date").max()
    recent = pl.col("birth_date") >= pl.lit(youngest).dt.offset_by("-20y")
    numbers = pl.concat([
        register.people.filter(recent).get_column("number"),
        register.links.get_column("adult"), register.links.get_column("child"),
    ]).unique().drop_nulls().sort()
    persons = Pseudonymiser(keystore, key_id).persons_distinct_normalised(numbers.cast(pl.String).str.zfill(10))
    return pl.DataFrame({"person": persons, "number": numbers})


# --------------------------------------------------------------------------- attack B
@dataclass(frozen=True)
class PressReport:
    """Model B's result: press-known events pinned to the extract's incidents.

    ``known``: sampled raw events that are in the extract (by the truth; without it, those with a
    candidate); ``bins``: their candidate-set sizes; ``pinned``: one candidate, the right one;
    ``exposed``: events with a person whose pseudonym the hub names with probability > 1/10 (one
    over the persons in that role on the candidates); ``max_guess``: the highest such probability.
    """

    share: float
    keys: list[str]
    known: int
    bins: dict[str, int]
    pinned: int
    exposed: int
    max_guess: float

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def _events(hub: HubExtract) -> pl.DataFrame:
    """The extract's events with what it shows of each (``incidents`` before format 4, ``events`` since)."""
    tables = hub.tables
    return tables["events"] if "events" in tables else tables["incidents"]


def _on_events(hub: HubExtract) -> pl.DataFrame:
    """``event_ref``, ``person``, ``role``: who the extract shows on each event, in which role
    (``""`` where it shows none)."""
    tables = hub.tables
    on = tables["signals"] if "signals" in tables else tables["incident_persons"]
    role = pl.col("role") if "role" in on.columns else pl.lit("")
    return on.select("event_ref", "person", role.alias("role")).unique()


def _shown_events(hub: HubExtract, earlier: Sequence[HubExtract]) -> pl.DataFrame:
    """The latest extract's events as the hub knows them after all its weeks: the clear columns,
    ``registered_week`` from an extract that flagged the event ``in_week`` (null when none did), and
    ``persons``: how many persons the extract shows on it."""
    events = _events(hub)
    if "in_week" in events.columns:
        flagged = pl.concat([_events(h).filter(pl.col("in_week")).select(
            "event_ref", pl.lit(h.week).alias("registered_week")) for h in [*earlier, hub]]).unique(
            "event_ref", keep="first")
        events = events.drop("in_week").join(flagged, on="event_ref", how="left")
    persons = _on_events(hub).group_by("event_ref").agg(pl.col("person").n_unique().alias("persons"))
    return events.join(persons, on="event_ref", how="left").with_columns(pl.col("persons").fill_null(0))


def _press_keys(events: pl.DataFrame) -> tuple[list[tuple[str, pl.Expr, pl.Expr]], list[str]]:
    """(name, on the extract, on a raw event) for each attribute the extract shows that the press
    knows: date and hour of an ``occurred_at``, the municipality, the district, the codes; and
    the ``*_week`` columns, which the press matches with the ISO week of the event's date (a null
    week, never flagged as registered in an extract's week, matches any)."""
    keys: list[tuple[str, pl.Expr, pl.Expr]] = []
    schema = events.schema
    occurred = pl.col("occurred_at")
    if isinstance(schema.get("occurred_at"), pl.Datetime):
        keys.append(("date", occurred.dt.date(), occurred.dt.date()))
        keys.append(("hour", occurred.dt.hour(), occurred.dt.hour()))
    for name in ("municipality", "district", "incident_code", "offence_code"):
        if name in schema:
            keys.append((name, pl.col(name).cast(pl.String).fill_null(""), pl.col(name).cast(pl.String).fill_null("")))
    weeks = [name for name in schema if name.endswith("_week")]
    return keys, weeks


def press_attack(hub: HubExtract, register: Register, *, share: float = 0.02, seed: int = 0,
                 keystore: KeyStore | None = None, earlier: Sequence[HubExtract] = (),
                 persons: bool = False) -> PressReport:
    """Model B: the press knows date, hour, municipality and kind of ``share`` of the raw events
    (with ``persons``, also how many persons the police registered on each).

    The hub matches each to the events of ``hub`` that show the same: the clear attributes, the
    week (and, with ``persons``, no more persons than the event involved). ``earlier`` are the
    hub's extracts of earlier weeks (under the same key): an event flagged as registered in one
    of them has that registration week.
    """
    shown = _shown_events(hub, earlier)
    keys, weeks = _press_keys(shown)
    press = register.incidents.sample(fraction=share, seed=seed).with_row_index("press")
    if keystore is not None:
        refs = Pseudonymiser(keystore, hub.key_id).events(press["district"], press["incident_id"])
        press = press.with_columns(refs.alias("true_ref")).join(
            _events(hub).select(pl.col("event_ref").alias("true_ref")), on="true_ref", how="semi")
    names = [k[0] for k in keys]
    ext = shown.select("event_ref", *(e.alias(n) for n, e, _ in keys), *weeks, "persons")
    raw_week = pl.col("occurred_at").dt.strftime("%G-W%V")
    known = press.select("press", *(["true_ref"] if keystore is not None else []),
                         *(r.alias(n) for n, _, r in keys), *(raw_week.alias(f"{w}_raw") for w in weeks),
                         pl.col("persons").alias("persons_raw"))
    cands = known.join(ext, on=names, how="inner", nulls_equal=True) if names else known.join(ext, how="cross")
    cands = cands.filter((pl.col("persons") <= pl.col("persons_raw")) | (not persons),
                         *((pl.col(w) == pl.col(f"{w}_raw")) | pl.col(w).is_null() for w in weeks))
    if keystore is None:
        known = known.join(cands.select("press").unique(), on="press", how="semi")
    size = known.select("press").join(cands.group_by("press").len("k"), on="press", how="left").with_columns(
        pl.col("k").fill_null(0))
    pinned_q = cands.group_by("press").agg(pl.len().alias("k"), pl.col("event_ref").first().alias("ref"))
    pinned_q = pinned_q.filter(pl.col("k") == 1)
    if keystore is not None:
        pinned_q = pinned_q.join(known.select("press", "true_ref"), on="press").filter(
            pl.col("ref") == pl.col("true_ref"))
    # The persons on each press event: the hub's chance to name each one's pseudonym.
    on = _on_events(hub)
    on_cand = cands.select("press", "event_ref").join(on, on="event_ref").select("press", "role", "person").unique()
    per_role = on_cand.group_by("press", "role").len("m")
    if keystore is not None:
        true_persons = known.select("press", pl.col("true_ref").alias("event_ref")).join(
            on, on="event_ref").select("press", "role", "person")
        guess = true_persons.join(on_cand, on=["press", "role", "person"], how="semi").join(
            per_role, on=["press", "role"])
    else:
        guess = per_role
    guess = guess.with_columns((1.0 / pl.col("m")).alias("p"))
    exposed = guess.filter(pl.col("p") > 0.1).select("press").n_unique()
    return PressReport(share=share, keys=[*names, *weeks, *(["persons"] if persons else [])], known=known.height,
                       bins=_bins(size["k"]),
                       pinned=pinned_q.height, exposed=exposed,
                       max_guess=float(guess.select(pl.col("p").max().fill_null(0.0)).item()))


# --------------------------------------------------------------------------- attack C
@dataclass(frozen=True)
class RotationReport:
    """Model C's result: old pseudonyms linked to new ones by structure alone.

    ``persons``: shipped persons under the old key; ``linked``: those whose colour after refinement
    is unique in both extracts; ``right``: linked to their own new pseudonym (None without the
    truth); ``rounds``: refinement rounds run.
    """

    persons: int
    linked: int
    right: int | None
    rounds: int

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def _colours(hub: HubExtract, rounds: int) -> tuple[pl.DataFrame, int]:
    """Colour refinement of the extract's graph: ``person``, ``colour`` after ``rounds`` rounds or
    when the colours stop splitting; and the rounds run."""
    inc = _events(hub)
    event_attrs = [c for c, t in inc.schema.items() if c != "event_ref" and t != pl.Binary]
    ec = inc.select("event_ref", _h(*(pl.col(c) for c in event_attrs)).alias("c"))
    child_attrs = [c for c, t in hub.children.schema.items() if c != "person" and t != pl.Binary]
    relation = pl.col("relation") if "relation" in hub.relations.columns else pl.lit("")
    ip = _on_events(hub)
    rel = hub.relations.select("child", "adult", relation.alias("rel"))
    persons = pl.concat([ip.get_column("person"), rel.get_column("child"), rel.get_column("adult"),
                         hub.children.get_column("person")]).unique().to_frame("person")
    pc = persons.join(hub.children.select("person", _h(pl.lit(1), *(pl.col(c) for c in child_attrs)).alias("c")),
                      on="person", how="left").with_columns(pl.col("c").fill_null(0))
    distinct = pc["c"].n_unique()
    done = 0
    for step in range(1, rounds + 1):
        done = step
        by_events = ip.join(ec, on="event_ref").group_by("person").agg(
            _h(pl.col("role"), pl.col("c")).sort().alias("l"))
        as_adult = rel.join(pc.rename({"person": "child"}), on="child").group_by("adult").agg(
            _h(pl.col("rel"), pl.col("c")).sort().alias("l")).rename({"adult": "person"})
        as_child = rel.join(pc.rename({"person": "adult"}), on="adult").group_by("child").agg(
            _h(pl.col("rel"), pl.col("c")).sort().alias("l")).rename({"child": "person"})
        new_pc = pc.select("person", "c")
        for name, part in (("e", by_events), ("a", as_adult), ("k", as_child)):
            new_pc = new_pc.join(part.select("person", pl.col("l").hash(_SEED).alias(name)), on="person", how="left")
        new_pc = new_pc.select("person", _h(pl.col("c"), pl.col("e").fill_null(0), pl.col("a").fill_null(0),
                                            pl.col("k").fill_null(0)).alias("c"))
        ec = ec.join(ip.join(pc, on="person").group_by("event_ref").agg(
            _h(pl.col("role"), pl.col("c")).sort().alias("l")).select("event_ref", pl.col("l").hash(_SEED).alias("l")),
            on="event_ref", how="left").select("event_ref", _h(pl.col("c"), pl.col("l").fill_null(0)).alias("c"))
        pc = new_pc
        now = pc["c"].n_unique()
        if now == distinct:
            break
        distinct = now
    return pc.rename({"c": "colour"}), done


def rotation_attack(old: HubExtract, new: HubExtract, *, rounds: int = 8,
                    truth_old: pl.DataFrame | None = None, truth_new: pl.DataFrame | None = None) -> RotationReport:
    """Model C: link ``old`` to ``new`` pseudonyms (one week under two keys) by structure alone.

    The truths (:func:`truth` under each key) only say which links are right.
    """
    a, ran_a = _colours(old, rounds)
    b, ran_b = _colours(new, rounds)
    unique_a = a.filter(pl.col("colour").is_unique())
    unique_b = b.filter(pl.col("colour").is_unique())
    links = unique_a.join(unique_b.rename({"person": "new"}), on="colour")
    right = None
    if truth_old is not None and truth_new is not None:
        right = links.join(truth_old, on="person").join(
            truth_new.rename({"person": "new", "number": "number_new"}), on="new").filter(
            pl.col("number") == pl.col("number_new")).height
    return RotationReport(persons=a.height, linked=links.height, right=right, rounds=max(ran_a, ran_b))


# --------------------------------------------------------------------------- command line
def _table(title: str, bins: dict[str, int], shipped: int) -> list[str]:
    lines = [title, f"  {'set size':>10}  {'persons':>9}  {'share':>8}"]
    lines += [f"  {label:>10}  {count:>9,}  {count / max(shipped, 1):>8.2%}" for label, count in bins.items()]
    return lines


def render(report: dict[str, Any]) -> str:
    """The report as text tables (``report`` is what ``--json`` prints)."""
    lines: list[str] = []
    for name, a in report["register"].items():
        weeks = a["weeks"] if len(a["weeks"]) <= 4 else [f"{a['weeks'][0]} .. {a['weeks'][-1]}"]
        lines.append(f"Model A (register), {name}: weeks {', '.join(weeks)}; child attributes "
                     f"{', '.join(a['attributes']) or 'none'}"
                     + (f" (not computable from a register: {', '.join(a['ignored'])})" if a["ignored"] else "")
                     + f"; relation types {'shown' if a['relation_types'] else 'absent'}")
        for kind, label in (("child", "shipped children"), ("adult", "shipped adults")):
            part = a[kind]
            lines += _table(f" {label}: {part['shipped']:,}", part["bins"], part["shipped"])
            what = "re-identified" if part["reidentified"] is not None else "unique (no truth given)"
            lines.append(f"  {what}: {part['reidentified'] if part['reidentified'] is not None else part['unique']:,}"
                         f" = {part['share']:.2%}")
    for name, what in (("press", ""), ("press_persons", ", and how many persons the police registered")):
        if name not in report:
            continue
        p = report[name]
        matched = ", ".join(p["keys"]) or "nothing"
        lines.append(f"Model B (press, {p['share']:.0%} of events known{what}; matched on {matched}):"
                     f" {p['known']:,} known events in the extract")
        lines += _table(" candidate events per known event", p["bins"], p["known"])
        lines.append(f"  pinned to the one right event: {p['pinned']:,} = {p['pinned'] / max(p['known'], 1):.2%}")
        lines.append(f"  events exposing a pseudonym with p > 1/10: {p['exposed']:,}; highest p {p['max_guess']:.3f}")
    if "rotation" in report:
        r = report["rotation"]
        right = "" if r["right"] is None else f", {r['right']:,} right"
        lines.append(f"Model C (rotation): {r['linked']:,} of {r['persons']:,} old pseudonyms linked to a new one"
                     f" ({r['linked'] / max(r['persons'], 1):.2%}{right}; {r['rounds']} refinement rounds)")
    return "\n".join(lines)


def _span_name(weeks: int) -> str:
    return "one week" if weeks == 1 else f"{weeks} weeks"


def measure(extracts: Sequence[HubExtract], register: Register, *, keystore: KeyStore | None = None,
            rotated: HubExtract | None = None, press_share: float = 0.02, seed: int = 0,
            spans: Sequence[int] | None = None) -> dict[str, Any]:
    """All three models on ``extracts`` (one or more weeks, one key): a JSON-ready summary.

    Model A runs once per span in ``spans`` on the latest that many weeks (default: the latest
    week, and all of them); model B on the latest week with all the earlier ones held, as
    documented (``press``) and with a press that also knows how many persons the police
    registered on each event (``press_persons``).
    """
    hubs = sorted(extracts, key=lambda h: IsoWeek.parse(h.week).monday)
    latest = hubs[-1]
    truths = {k: truth(register, keystore, k) for k in {h.key_id for h in hubs}} if keystore else {}
    report: dict[str, Any] = {"register": {}}
    for span in sorted({min(max(s, 1), len(hubs)) for s in (spans or (1, len(hubs)))}):
        report["register"][_span_name(span)] = register_attack(
            hubs[-span:], register, truth=truths.get(latest.key_id)).summary()
    for name, persons in (("press", False), ("press_persons", True)):
        report[name] = press_attack(latest, register, share=press_share, seed=seed, keystore=keystore,
                                    earlier=hubs[:-1], persons=persons).summary()
    if rotated is not None:
        new_truth = truth(register, keystore, rotated.key_id) if keystore else None
        report["rotation"] = rotation_attack(latest, rotated, truth_old=truths.get(latest.key_id),
                                             truth_new=new_truth).summary()
    return report


def _spans(text: str) -> list[int]:
    try:
        spans = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of week counts, such as 1,4,52") from None
    if not spans or min(spans) < 1:
        raise argparse.ArgumentTypeError("week counts are 1 or more")
    return spans


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m socialsearch.privacy_report",
        description="Measure what a hub that also holds the population register (and press knowledge) "
                    "singles out in hub extracts; prints set sizes and shares, never an identifier.")
    parser.add_argument("extract", nargs="+", type=Path, help="hub extract folder(s), one per week, one key")
    parser.add_argument("--register", required=True, type=Path,
                        help="raw extract folder (population, relations, incidents)")
    parser.add_argument("--keys", type=Path, help="the full keystore: only to check which unique matches are right")
    parser.add_argument("--rotated", type=Path, help="the latest week's extract again, under a rotated key (model C)")
    parser.add_argument("--press-share", type=float, default=0.02, help="share of raw events the press knows")
    parser.add_argument("--seed", type=int, default=0, help="seed of the press sample")
    parser.add_argument("--spans", type=_spans, default=None,
                        help="model A over the latest N weeks for each N of this comma-separated list "
                             "(default: 1 and all the extracts given)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    try:
        hubs = [read_hub(p) for p in args.extract]
        if len({h.key_id for h in hubs}) > 1:
            raise SocialsearchError("the extracts were made under different keys; give one key's weeks")
        rotated = read_hub(args.rotated) if args.rotated else None
        keystore = KeyStore.load(args.keys) if args.keys else None
        report = measure(hubs, load_register(args.register), keystore=keystore, rotated=rotated,
                         press_share=args.press_share, seed=args.seed, spans=args.spans)
    except SocialsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
