"""Keyed Bloom-filter encodings and the privacy-preserving fallback for people without a CPR.

Two halves, used in two trust domains (see ``docs/linkage.md``):

* :func:`encode_people` runs where the raw names live (a source station, or the
  pseudonymise stage in single-site mode). It adds keyed ``lk_*`` columns: a keyed Bloom
  filter of the normalised names and birth month/day, salted by birth year (``lk_bf``), a
  keyed birth-date blocking key (``lk_dob``) and four keyed *one-error* keys that bind the
  exact normalised name to a birth date with one part allowed to be wrong.
* :func:`resolve` runs at the hub, which holds no key: it gives incident persons whose
  CPR number is missing or invalid the pseudonym of the population person they match,
  with a match probability, or leaves them unresolved.

Matching in two passes:

1. block on ``lk_dob`` (same birth date) and classify by the field-wise Dice score of the
   Bloom filters (:func:`score_pairs`) against :data:`DEFAULT_THRESHOLD`, fixed in advance
   on FEBRL4;
2. for those still unresolved, block on the one-error keys (same normalised given name and
   surname; by default day and month swapped, on request also a wrong day, month or year,
   see :data:`PASS2_KEYS`); a query with more than one such candidate is left unresolved.

Assignment is one-to-one between distinct query identities (identical encodings are
deduplicated first, so the same person gets the same pseudonym on every event) and
population persons, greedily by score; ties are never broken by chance, they leave the
query unresolved.

Beside the product path, :func:`encode_records` and :func:`match_encoded` are a general
multi-field keyed CLK matcher (any fields, per-field weights, several keyed blocking keys)
for data with more identifiers than names and birth date; the product does not use them.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from socialsearch.errors import InputError, InputProblem

__all__ = [
    "BF_BITS",
    "DEFAULT_THRESHOLD",
    "BlockSpec",
    "FieldSpec",
    "LK_COLUMNS",
    "PASS2_KEYS",
    "PASS2_PROBABILITY",
    "LinkageResult",
    "candidate_pairs",
    "dice",
    "dice_pairs",
    "encode_people",
    "encode_records",
    "match_encoded",
    "match_probability",
    "normalise_name",
    "resolve",
    "score_pairs",
]

BF_BITS = 1024
"""Length of the Bloom filter in bits (16 uint64 words)."""
_WORDS = BF_BITS // 64
_HALF = _WORDS // 2
"""Words per half: words 0-7 hold the given name, words 8-15 the surname."""
_K_NAME = 10
"""Bit positions per name bigram."""
_K_DATE = 3
"""Bit positions per birth-date token (month, day), set in both halves."""

DEFAULT_THRESHOLD = 0.65
"""Pass-1 score threshold, fixed in advance on FEBRL4 by a stated rule (docs/linkage.md)."""

# Logistic of the pass-1 score, P(match | score), fitted once on all FEBRL4 pairs that share a
# birth year (4,557 links, 236,610 non-links; test key bytes(range(32))); fixed, not refitted.
_LOGIT_A = -9.12
_LOGIT_B = 18.51

PASS2_KEYS = ("dm",)
"""One-error keys used by default in pass 2: day and month swapped only.

A wrong day (``"ym"``), month (``"yd"``) or year (``"md"``) is opt-in: their cells are 31, 12
and ~100 dates wide, so a person in no register meets a unique exact namesake there far more
often (docs/linkage.md, Limits; measured in docs/performance-linkage.md)."""

PASS2_PROBABILITY = 0.90
"""Match probability given to a pass-2 match (exact name, one birth-date error)."""

LK_COLUMNS = ("lk_bf", "lk_dob", "lk_dob_ym", "lk_dob_yd", "lk_dob_md", "lk_dob_dm")
"""The encoding columns (without prefix) that :func:`encode_people` adds."""
_PASS2 = ("lk_dob_ym", "lk_dob_yd", "lk_dob_md", "lk_dob_dm")

# Danish letters first, so that å ≡ aa, æ ≡ ae, ø ≡ oe; then the German umlauts that
# appear in Danish names; remaining diacritics (é, ñ, ...) are stripped after NFKD.
_FOLD = {
    "å": "aa",
    "æ": "ae",
    "ø": "oe",
    "ä": "ae",
    "ö": "oe",
    "ü": "ue",
    "ß": "ss",
    "ð": "d",
    "þ": "th",
}


# --------------------------------------------------------------------------- normalisation


def normalise_name(expr: pl.Expr) -> pl.Expr:
    """Normalise a name column: NFC, lower case, Danish folding, no diacritics or punctuation.

    Hyphens and runs of whitespace become one space (callers remove or split on it);
    an empty result is null.

    Examples
    --------
    >>> df = pl.DataFrame({"n": ["Ærø", "AEROE", " Anne-Marie ", "José", "O'Brien", "."]})
    >>> df.select(normalise_name(pl.col("n")))["n"].to_list()
    ['aeroe', 'aeroe', 'anne marie', 'jose', 'obrien', None]
    """
    return _fold(expr, keep=r"a-z")


def _fold(expr: pl.Expr, *, keep: str) -> pl.Expr:
    """Lower case, Danish letters folded, accents dropped, characters outside ``keep`` (plus
    spaces and hyphens) removed, runs of spaces and hyphens made one space; empty → null."""
    e = expr.cast(pl.String).str.normalize("NFC").str.to_lowercase()
    e = e.str.replace_many(list(_FOLD), list(_FOLD.values()))
    e = e.str.normalize("NFKD").str.replace_all(r"\p{M}", "")
    e = e.str.replace_all(rf"[^{keep}\s\-]", "")
    e = e.str.replace_all(r"[\s\-]+", " ").str.strip_chars()
    return pl.when(e.str.len_chars() > 0).then(e)


def _date_digits(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Birth date as ``YYYYMMDD`` text (from Date, ``YYYY-MM-DD`` or ``YYYYMMDD``), else null.

    The date is not checked for calendar validity, so a typo such as month 13 still
    yields usable partial keys.
    """
    dtype = frame.schema[column]
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        s = pl.col(column).dt.strftime("%Y%m%d")
    else:
        s = pl.col(column).cast(pl.String).str.strip_chars().str.replace_all(r"[-/.\s]", "")
    return pl.when(s.str.contains(r"^\d{8}$")).then(s)


# --------------------------------------------------------------------------- keyed primitives


def _subkey(key: bytes, purpose: str) -> bytes:
    return hmac.digest(key, b"socialsearch/linkage/v1/" + purpose.encode(), "sha256")


def _hmac64(key: bytes, values: list[str]) -> np.ndarray:
    """First 64 bits of HMAC-SHA256 of each value (one HMAC per value given)."""
    raw = b"".join(hmac.digest(key, v.encode(), "sha256")[:8] for v in values)
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


_SIP_C = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def _siphash24(key: bytes, words: list[np.ndarray]) -> np.ndarray:
    """SipHash-2-4 (Aumasson & Bernstein 2012) of messages of ``8 * len(words)`` bytes.

    ``words`` are the little-endian 64-bit message words, one array each, all of the
    same length; the result is one 64-bit value per element. Vectorised over numpy.
    """
    k0, k1 = (np.uint64(int.from_bytes(key[i : i + 8], "little")) for i in (0, 8))
    n = len(words[0])
    v0 = np.full(n, np.uint64(_SIP_C[0]) ^ k0)
    v1 = np.full(n, np.uint64(_SIP_C[1]) ^ k1)
    v2 = np.full(n, np.uint64(_SIP_C[2]) ^ k0)
    v3 = np.full(n, np.uint64(_SIP_C[3]) ^ k1)

    tmp = np.empty(n, dtype=np.uint64)

    def rotl(x: np.ndarray, r: int) -> None:  # in place: x = rotl(x, r)
        np.right_shift(x, np.uint64(64 - r), out=tmp)
        np.left_shift(x, np.uint64(r), out=x)
        np.bitwise_or(x, tmp, out=x)

    def rounds(count: int) -> None:
        for _ in range(count):
            np.add(v0, v1, out=v0)
            rotl(v1, 13)
            np.bitwise_xor(v1, v0, out=v1)
            rotl(v0, 32)
            np.add(v2, v3, out=v2)
            rotl(v3, 16)
            np.bitwise_xor(v3, v2, out=v3)
            np.add(v0, v3, out=v0)
            rotl(v3, 21)
            np.bitwise_xor(v3, v0, out=v3)
            np.add(v2, v1, out=v2)
            rotl(v1, 17)
            np.bitwise_xor(v1, v2, out=v1)
            rotl(v2, 32)

    for m in words:
        m = m.astype(np.uint64, copy=False)
        np.bitwise_xor(v3, m, out=v3)
        rounds(2)
        np.bitwise_xor(v0, m, out=v0)
    b = np.uint64((8 * len(words) & 0xFF) << 56)
    np.bitwise_xor(v3, b, out=v3)
    rounds(2)
    np.bitwise_xor(v0, b, out=v0)
    np.bitwise_xor(v2, np.uint64(0xFF), out=v2)
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


# --------------------------------------------------------------------------- Bloom filters

_BYTE_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Number of set bits per row of a (n, words) uint64 array."""
    if hasattr(np, "bitwise_count"):
        return np.asarray(np.bitwise_count(words).sum(axis=1, dtype=np.int64))
    return np.asarray(_BYTE_POP[words.view(np.uint8)].reshape(len(words), -1).sum(axis=1, dtype=np.int64))


def dice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Dice coefficient ``2|a∧b| / (|a|+|b|)`` of two (n, words) uint64 arrays.

    Two empty filters have Dice 0.

    Examples
    --------
    >>> a = np.array([[0b1011]], dtype=np.uint64); b = np.array([[0b0011]], dtype=np.uint64)
    >>> dice(a, b).round(3).tolist()
    [0.8]
    """
    inter = _popcount(a & b)
    total = _popcount(a) + _popcount(b)
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 0.0)


def _token_patterns(key: bytes, tokens: list[str], k: int, bits: int = BF_BITS // 2) -> np.ndarray:
    """(n_tokens, bits/64) uint64: each token's k keyed positions in ``bits`` bits, one HMAC per token.

    Positions are independent 16-bit chunks of HMAC-SHA512 reduced to ``log2(bits)`` bits
    (random hashing, not double hashing, whose arithmetic progressions Niedermeyer et al.
    2014 exploited); hence ``k <= 32`` and ``bits`` a power of two. The default is one
    512-bit half of the product filter.
    """
    raw = b"".join(hmac.digest(key, t.encode(), "sha512") for t in tokens)
    pos = np.frombuffer(raw, dtype="<u2").reshape(len(tokens), 32)[:, :k].astype(np.int64)
    pos &= bits - 1
    out = np.zeros((len(tokens), bits // 64), dtype=np.uint64)
    rows = np.repeat(np.arange(len(tokens)), k)
    flat = pos.ravel()
    np.bitwise_or.at(out, (rows, flat >> 6), np.left_shift(np.uint64(1), (flat & 63).astype(np.uint64)))
    return out


def _bigrams(name: pl.Expr) -> pl.Expr:
    """Padded bigrams of a (space-free) name: ``"ib"`` -> ``["_i", "ib", "b_"]``."""
    padded = pl.concat_str(pl.lit("_"), name, pl.lit("_"))
    return padded.str.extract_all(r"(?s).").list.eval(
        pl.concat_str(pl.element(), pl.element().shift(-1))
    ).list.drop_nulls()


def _filters(
    key: bytes,
    label: str,
    salt: pl.Series,
    values: pl.Series,
    tokens: pl.Expr,
    k: int,
    bits: int = BF_BITS // 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Salted filters per distinct (salt, value); returns (patterns, row code or -1 per record).

    Tokens are computed once per distinct value, hashed once per (salt, distinct token),
    and each distinct (salt, value) gets the OR of its tokens' patterns
    (``np.bitwise_or.reduceat``); records are mapped to their pattern by a join.
    """
    frame = pl.DataFrame({"y": salt, "v": values})
    groups = frame.drop_nulls().unique()
    names = groups.select("v").unique().with_row_index("nid").with_columns(tok=tokens)
    years = groups.select("y").unique().with_row_index("yid")
    vocab = names.select(pl.col("tok").explode().drop_nulls().unique()).with_row_index("bid")
    name_tok = names.select("nid", "tok").explode("tok").drop_nulls("tok").join(vocab, on="tok")
    g = groups.join(names.select("v", "nid"), on="v").join(years, on="y").with_row_index("gid")
    ex = g.select("gid", "nid", "yid").join(name_tok.select("nid", "bid"), on="nid")
    present = ex.select("yid", "bid").unique().with_row_index("tid")
    present = present.join(years, on="yid").join(vocab, on="bid").sort("tid")
    combos = pl.concat_str(pl.lit(label + "\x1f"), "y", pl.lit("\x1f"), "tok")
    patterns = _token_patterns(key, present.select(combos).to_series().to_list(), k, bits)
    ex = ex.join(present.select("yid", "bid", "tid"), on=["yid", "bid"]).select("gid", "tid").sort("gid")
    gid = ex["gid"].to_numpy()
    tid = ex["tid"].to_numpy()
    out = np.zeros((g.height, bits // 64), dtype=np.uint64)
    step = 1 << 22
    s = 0
    while s < len(gid):
        e = min(s + step, len(gid))
        while e < len(gid) and gid[e] == gid[e - 1]:
            e += 1
        gg = gid[s:e]
        starts = np.flatnonzero(np.r_[True, gg[1:] != gg[:-1]])
        out[gg[starts]] = np.bitwise_or.reduceat(patterns[tid[s:e]], starts, axis=0)
        s = e
    codes = frame.join(
        g.select("y", "v", "gid"), on=["y", "v"], how="left", maintain_order="left"
    )["gid"]
    return out, codes.fill_null(-1).cast(pl.Int64).to_numpy()


def _per_distinct(
    values: pl.Series, exprs: dict[str, pl.Expr], hashed: tuple[str, str, bytes] | None = None
) -> pl.DataFrame:
    """Evaluate expressions on ``pl.col("v")`` once per distinct value; rows aligned with values.

    ``hashed = (out, column, key)`` adds ``out``: the 64-bit HMAC of ``column`` (0 where null),
    computed on the small distinct table.
    """
    table = values.unique().to_frame("v").with_columns(**exprs)
    if hashed is not None:
        out, col, key = hashed
        src = table[col].fill_null("")
        table = table.with_columns(pl.Series(out, _hmac64(key, src.to_list()), dtype=pl.UInt64))
        exprs = {**exprs, out: pl.col(out)}
    joined = values.to_frame("v").join(
        table, on="v", how="left", maintain_order="left", nulls_equal=True
    )
    return joined.select(list(exprs))


# --------------------------------------------------------------------------- encoding


def encode_people(
    frame: pl.DataFrame,
    *,
    given: str,
    surname: str,
    birth_date: str,
    key: bytes,
    prefix: str = "lk_",
) -> pl.DataFrame:
    """Add keyed linkage encodings to ``frame``, keeping every other column.

    Adds ``{prefix}bf`` (Array(UInt64, 16): the salted keyed Bloom filter) and the UInt64
    keys ``{prefix}dob``, ``{prefix}dob_ym``, ``{prefix}dob_yd``, ``{prefix}dob_md``,
    ``{prefix}dob_dm``. A row without a usable birth date or without any name gets nulls
    (it cannot be resolved); the one-error keys also need both names. The caller drops
    the raw name columns afterwards.

    Parameters
    ----------
    frame
        People with raw names and a birth date (Date, ``YYYY-MM-DD`` or ``YYYYMMDD``).
    given, surname, birth_date
        Column names in ``frame``.
    key
        The linkage key, ``keystore.subkey("linkage")`` (at least 16 bytes).
    prefix
        Prefix of the added columns.

    Examples
    --------
    >>> people = pl.DataFrame({"g": ["Åse"], "s": ["Møller-Hansen"], "b": ["1985-03-12"]})
    >>> out = encode_people(people, given="g", surname="s", birth_date="b", key=bytes(32))
    >>> [c for c in out.columns if c.startswith("lk_")]
    ['lk_bf', 'lk_dob', 'lk_dob_ym', 'lk_dob_yd', 'lk_dob_md', 'lk_dob_dm']
    """
    missing = [c for c in (given, surname, birth_date) if c not in frame.columns]
    if missing:
        raise InputError(
            [InputProblem("people to encode", c, "a column with this name") for c in missing]
        )
    if len(key) < 16:
        raise ValueError("the linkage key must be at least 16 bytes")

    # Normalise and hash once per distinct raw value, then join back (vectorised).
    g = normalise_name(pl.col("v"))
    gn = _per_distinct(
        frame[given].cast(pl.String),
        {"g_parts": g.str.split(" "), "g_full": g.str.replace_all(" ", "")},
        ("h_g", "g_full", _subkey(key, "given")),
    )
    sn = _per_distinct(
        frame[surname].cast(pl.String),
        {
            "s_parts": normalise_name(pl.col("v")).str.split(" "),
            "s_full": normalise_name(pl.col("v")).str.replace_all(" ", ""),
        },
        ("h_s", "s_full", _subkey(key, "surname")),
    )
    dob = frame.select(_date_digits(frame, birth_date)).to_series()
    k_date = _subkey(key, "date")
    y, m, d = (pl.col("v").str.slice(i, w) for i, w in ((0, 4), (4, 2), (6, 2)))
    parts = {
        "dob": pl.concat_str(pl.lit("dob|"), pl.col("v")),
        "ym": pl.concat_str(pl.lit("ym|"), y, m),
        "yd": pl.concat_str(pl.lit("yd|"), y, d),
        "md": pl.concat_str(pl.lit("md|"), m, d),
        "dm": pl.concat_str(pl.lit("dm|"), y, pl.min_horizontal(m, d), pl.max_horizontal(m, d)),
    }
    dates = dob.drop_nulls().unique().to_frame("v").with_columns(y=y, md_=pl.concat_str(m, d), **parts)
    for c in parts:  # one HMAC per distinct partial value (a few thousand)
        uniq = dates[c].unique()
        table = pl.DataFrame({c: uniq, "h": pl.Series(_hmac64(k_date, uniq.to_list()), dtype=pl.UInt64)})
        dates = dates.join(table, on=c, how="left").drop(c).rename({"h": c})
    dn = dob.to_frame("v").join(dates, on="v", how="left", maintain_order="left")
    norm = pl.concat([gn, sn, dn], how="horizontal")
    ok = norm.select(
        pl.col("v").is_not_null() & (pl.col("g_full").is_not_null() | pl.col("s_full").is_not_null())
    ).to_series()
    both = ok & norm["g_full"].is_not_null() & norm["s_full"].is_not_null()

    # Bloom filter, salted by the birth year. Given name in words 0-7, surname in words 8-15,
    # both halves with the same keyed positions (so a swapped given name and surname still
    # compare), month and day tokens in both halves.
    k_bf = _subkey(key, "bloom")
    bf = np.zeros((frame.height, _WORDS), dtype=np.uint64)
    for half, col in ((slice(0, _HALF), "g_parts"), (slice(_HALF, _WORDS), "s_parts")):
        ex = pl.DataFrame({"row": np.arange(frame.height), "y": norm["y"], "v": norm[col]})
        ex = ex.explode("v").drop_nulls()
        pats, codes = _filters(k_bf, "n", ex["y"], ex["v"], _bigrams(pl.col("v")), _K_NAME)
        rows = ex["row"].to_numpy()
        if len(rows):
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            bf[rows[starts], half] = np.bitwise_or.reduceat(pats[codes], starts, axis=0)
    date_tokens = pl.concat_list(
        pl.lit("m") + pl.col("v").str.slice(0, 2), pl.lit("d") + pl.col("v").str.slice(2, 2)
    )
    pats, codes = _filters(k_bf, "d", norm["y"], norm["md_"], date_tokens, _K_DATE)
    has = codes >= 0
    bf[has, :_HALF] |= pats[codes[has]]
    bf[has, _HALF:] |= pats[codes[has]]
    out: dict[str, pl.Series] = {
        f"{prefix}bf": pl.Series(bf, dtype=pl.Array(pl.UInt64, _WORDS)),
        f"{prefix}dob": norm["dob"],
    }

    # One-error keys: SipHash-2-4 under a sub-key of (HMAC(given), HMAC(surname), HMAC(part)).
    h_g = norm["h_g"].fill_null(0).to_numpy().astype(np.uint64)
    h_s = norm["h_s"].fill_null(0).to_numpy().astype(np.uint64)
    k_sip = _subkey(key, "one-error")[:16]
    cols = ("ym", "yd", "md", "dm")
    parts_np = [norm[c].fill_null(0).to_numpy().astype(np.uint64) for c in cols]
    # numpy ufuncs release the GIL: the four keys are computed on all cores
    with ThreadPoolExecutor(max_workers=min(len(cols), os.cpu_count() or 1)) as pool:
        keys = list(pool.map(lambda part: _siphash24(k_sip, [h_g, h_s, part]), parts_np))
    for c, v in zip(cols, keys, strict=True):
        out[f"{prefix}dob_{c}"] = pl.Series(v, dtype=pl.UInt64)

    enc = pl.DataFrame(out).with_columns(
        pl.when(ok).then(pl.col(f"{prefix}bf", f"{prefix}dob")),
        pl.when(both).then(pl.col([prefix + c.removeprefix("lk_") for c in _PASS2])),
    )
    return frame.drop([c for c in enc.columns if c in frame.columns]).hstack(enc)


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class LinkageResult:
    """Outcome of :func:`resolve`.

    ``persons`` is the input frame with ``person`` filled for matched rows and two more
    columns: ``resolved_by`` (``"cpr"``, ``"probabilistic"`` or null) and
    ``match_probability`` (Float64, null unless probabilistic). ``stats`` counts rows
    (``needing``, ``unresolvable``, ``attempted``, ``resolved``, ``unresolved``), distinct
    query identities (``identities``, ``pass1``, ``pass2``, ``ambiguous``) and
    candidate pairs (``candidates``, ``candidates_pass1``, ``candidates_pass2``).
    """

    persons: pl.DataFrame
    stats: dict[str, int] = field(default_factory=dict)


def match_probability(score: np.ndarray | pl.Expr) -> Any:
    """Calibrated P(match) of a pass-1 pair from its Dice coefficient (a fixed logistic)."""
    if isinstance(score, pl.Expr):
        return 1.0 / (1.0 + (-(_LOGIT_A + _LOGIT_B * score)).exp())
    return 1.0 / (1.0 + np.exp(-(_LOGIT_A + _LOGIT_B * np.asarray(score))))


def _filter_array(column: pl.Series) -> np.ndarray:
    """Non-null filters as a contiguous (n, 16) uint64 array (Array or List columns)."""
    arr = column.cast(pl.Array(pl.UInt64, _WORDS)).to_numpy()
    return np.ascontiguousarray(arr, dtype=np.uint64).reshape(-1, _WORDS)


def _check(frame: pl.DataFrame, what: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            [InputProblem(what, c, "a column with this name (run encode_people first)") for c in missing]
        )


def _assign(pairs: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """One-to-one greedy assignment of (q, p, score) pairs, best score first.

    In each round a pair is accepted when it is the unique best of its query and of its
    population person; a query (or person) whose best score is shared by several
    partners is ambiguous and dropped. Returns the accepted pairs and the ambiguous q ids.
    """
    accepted: list[pl.DataFrame] = []
    ambiguous: list[pl.Series] = []
    while pairs.height:
        ranked = pairs.with_columns(
            q_best=pl.col("score").max().over("q"),
            p_best=pl.col("score").max().over("p"),
        ).with_columns(
            q_ties=(pl.col("score") == pl.col("q_best")).sum().over("q"),
            p_ties=(pl.col("score") == pl.col("p_best")).sum().over("p"),
        )
        top = ranked.filter(
            (pl.col("score") == pl.col("q_best")) & (pl.col("score") == pl.col("p_best"))
        )
        take = top.filter((pl.col("q_ties") == 1) & (pl.col("p_ties") == 1)).select("q", "p", "score")
        amb_q = ranked.filter(pl.col("q_ties") > 1)["q"].unique()
        amb_p = top.filter(pl.col("p_ties") > 1)["p"].unique()
        if take.height == 0 and amb_q.len() == 0 and amb_p.len() == 0:  # pragma: no cover
            break
        accepted.append(take)
        ambiguous.append(amb_q)
        pairs = pairs.filter(
            ~pl.col("q").is_in(take["q"].implode())
            & ~pl.col("p").is_in(take["p"].implode())
            & ~pl.col("q").is_in(amb_q.implode())
            & ~pl.col("p").is_in(amb_p.implode())
        )
    empty = pl.DataFrame(schema={"q": pl.UInt32, "p": pl.UInt32, "score": pl.Float64})
    out = pl.concat(accepted) if accepted else empty
    amb = pl.concat(ambiguous).unique() if ambiguous else pl.Series("q", [], dtype=pl.UInt32)
    return out.cast({"q": pl.UInt32, "p": pl.UInt32, "score": pl.Float64}), amb


def _half_counts(x: np.ndarray) -> np.ndarray:
    """(n, 16) uint64 -> (n, 2) int64: set bits in the given-name half and in the surname half.

    Per-word counts (one byte each, at most 64) are summed eight at a time with a SWAR
    reduction on uint64 lanes: much faster than a numpy reduction over a length-8 axis.
    """
    if hasattr(np, "bitwise_count"):
        c = np.bitwise_count(x)
    else:  # pragma: no cover - numpy < 2
        c = _BYTE_POP[x.view(np.uint8)].reshape(len(x), _WORDS, 8).sum(axis=2, dtype=np.uint8)
    v = np.ascontiguousarray(c, dtype=np.uint8).view(np.uint64)  # (n, 2): 8 byte-counts each
    v = (v & _M8) + ((v >> _S8) & _M8)
    v = (v & _M16) + ((v >> _S16) & _M16)
    v = (v & _M32) + (v >> _S32)
    return v.astype(np.int64)


_M8, _M16, _M32 = (np.uint64(m) for m in (0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF, 0xFFFFFFFF))
_S8, _S16, _S32 = np.uint64(8), np.uint64(16), np.uint64(32)
_SWAP = np.r_[np.arange(_HALF, _WORDS), np.arange(_HALF)]


def score_pairs(qbf: np.ndarray, pbf: np.ndarray, q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Pass-1 score of the pairs (qbf[q[i]], pbf[p[i]]), vectorised in cache-sized chunks.

    The score is ``max(min(Dg, Ds), min(Dg×, Ds×))``: Dg and Ds are the Dice coefficients of
    the given-name halves and of the surname halves, Dg× and Ds× those with one record's
    halves swapped (given name and surname recorded the other way round). Taking the
    *minimum* over the fields means a shared given name cannot carry a different surname
    (Danish *-sen* surnames share most of their bigrams).
    """
    qc = _half_counts(qbf)
    pc = _half_counts(pbf)
    out = np.empty(len(q), dtype=np.float64)
    step = 1 << 15
    for lo in range(0, len(q), step):
        qi, pi = q[lo : lo + step], p[lo : lo + step]
        a, b = np.take(qbf, qi, axis=0), np.take(pbf, pi, axis=0)
        ca, cb = np.take(qc, qi, axis=0), np.take(pc, pi, axis=0)
        inter = _half_counts(a & b)
        inter_x = _half_counts(a & b[:, _SWAP])
        # column-wise arithmetic: numpy reductions over a length-2 axis are slow
        dg = 2.0 * inter[:, 0] / np.maximum(ca[:, 0] + cb[:, 0], 1)
        ds = 2.0 * inter[:, 1] / np.maximum(ca[:, 1] + cb[:, 1], 1)
        dgx = 2.0 * inter_x[:, 0] / np.maximum(ca[:, 0] + cb[:, 1], 1)
        dsx = 2.0 * inter_x[:, 1] / np.maximum(ca[:, 1] + cb[:, 0], 1)
        straight = np.minimum(dg, ds)
        swapped = np.minimum(dgx, dsx)
        out[lo : lo + step] = np.maximum(straight, swapped)
    return out


def resolve(
    persons: pl.DataFrame,
    population: pl.DataFrame,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    one_error: tuple[str, ...] = PASS2_KEYS,
    prefix: str = "lk_",
) -> LinkageResult:
    """Resolve incident persons without a valid CPR against the population by their encodings.

    Parameters
    ----------
    persons
        The hub's incident persons: ``person`` (null when the CPR is missing or invalid)
        and the ``lk_*`` columns of :func:`encode_people`.
    population
        ``person`` and the same ``lk_*`` columns, made with the same linkage key.
    threshold
        Score threshold of pass 1; the default is fixed in advance (docs/linkage.md).
    one_error
        Which one-error keys pass 2 uses, among ``"dm"`` (day and month swapped, the
        default), ``"ym"`` (wrong day), ``"yd"`` (wrong month) and ``"md"`` (wrong year);
        ``()`` turns pass 2 off. See :data:`PASS2_KEYS`.

    Returns
    -------
    LinkageResult
        Rows that had a pseudonym are untouched and marked ``resolved_by = "cpr"``.
    """
    cols = [prefix + c.removeprefix("lk_") for c in LK_COLUMNS]
    _check(persons, "incident_persons", ["person", *cols])
    _check(population, "population", ["person", *cols])
    bf, dob = prefix + "bf", prefix + "dob"
    unknown = sorted(set(one_error) - {"ym", "yd", "md", "dm"})
    if unknown:
        raise ValueError(f"unknown one-error keys {unknown}; choose among ym, yd, md, dm")
    pass2 = [f"{prefix}dob_{c}" for c in one_error]

    rows = persons.with_row_index("_row")
    need = rows.filter(pl.col("person").is_null())
    queries = need.filter(pl.col(bf).is_not_null())
    ident = queries.select(cols).unique(maintain_order=True).with_row_index("q")
    row_q = queries.select("_row", *cols).join(ident, on=cols, how="left", nulls_equal=True).select("_row", "q")

    # Only residents who share a block key with some query can become a candidate: keep just
    # those before the Bloom filters become arrays (thousands of rows, not the whole population).
    reachable = pl.any_horizontal(
        pl.col(c).is_in(ident.get_column(c).drop_nulls().implode()) for c in [dob, *pass2]
    )
    pop = population.filter(pl.col(bf).is_not_null() & pl.col("person").is_not_null() & reachable)
    pop = pop.select("person", *cols).with_row_index("p")
    qbf = _filter_array(ident[bf])
    pbf = _filter_array(pop[bf])

    # Pass 1: same birth date, Dice of the filters.
    cand1 = ident.select("q", dob).join(pop.select("p", dob), on=dob).select("q", "p")
    score = score_pairs(qbf, pbf, cand1["q"].to_numpy(), cand1["p"].to_numpy())
    pairs1 = cand1.with_columns(score=pl.Series(score)).filter(pl.col("score") >= threshold)
    got1, amb1 = _assign(pairs1)
    got1 = got1.with_columns(
        match_probability=match_probability(pl.col("score")), how=pl.lit("pass1")
    )

    # Pass 2: exact name, one birth-date error; several candidates = ambiguous.
    left = ident.filter(~pl.col("q").is_in(got1["q"].implode()) & ~pl.col("q").is_in(amb1.implode()))
    free = pop.filter(~pl.col("p").is_in(got1["p"].implode()))
    blocks = [
        left.select("q", pl.col(c).alias("k")).drop_nulls("k")
        .join(free.select("p", pl.col(c).alias("k")).drop_nulls("k"), on="k")
        .select("q", "p")
        for c in pass2
    ]
    empty = pl.DataFrame(schema={"q": pl.UInt32, "p": pl.UInt32})
    cand2 = pl.concat([empty, *blocks]).unique().with_columns(score=pl.lit(1.0))
    got2, amb2 = _assign(cand2)
    got2 = got2.with_columns(match_probability=pl.lit(PASS2_PROBABILITY), how=pl.lit("pass2"))

    matched = (
        pl.concat([got1, got2])
        .join(pop.select("p", pl.col("person").alias("_matched")), on="p")
        .join(row_q, on="q")
        .select("_row", "_matched", "match_probability")
    )
    out = (
        rows.join(matched, on="_row", how="left", maintain_order="left")
        .with_columns(
            resolved_by=pl.when(pl.col("person").is_not_null())
            .then(pl.lit("cpr"))
            .when(pl.col("_matched").is_not_null())
            .then(pl.lit("probabilistic")),
            match_probability=pl.col("match_probability").cast(pl.Float64),
            person=pl.coalesce("person", "_matched"),
        )
        .drop("_row", "_matched")
    )
    resolved = int(matched.height)
    stats = {
        "needing": need.height,
        "unresolvable": need.height - queries.height,
        "attempted": queries.height,
        "resolved": resolved,
        "unresolved": need.height - resolved,
        "identities": ident.height,
        "pass1": got1.height,
        "pass2": got2.height,
        "ambiguous": int(amb1.len() + amb2.len()),
        "candidates_pass1": cand1.height,
        "candidates_pass2": cand2.height,
        "candidates": cand1.height + cand2.height,
    }
    return LinkageResult(persons=out, stats=stats)


# --------------------------------------------------------------------------- multi-field CLKs
#
# A general keyed encoder and matcher for data that has more identifying fields than the
# product's names and birth date (addresses, other identifiers): one record-level CLK
# (Schnell, Bachteler & Reiher 2011) with a weight (k bit positions per token) per field,
# and keyed blocking keys. The product path (encode_people / resolve) does not use it.

Tokenizer = Literal["bigrams", "value", "digits"]
_TOKENIZERS = ("bigrams", "value", "digits")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a multi-field CLK.

    ``tokenizer``: ``"bigrams"`` (padded bigrams of each word of the normalised text),
    ``"value"`` (the whole normalised value, spaces removed, as one token) or ``"digits"``
    (each digit with its position, ``"1@0"``, ``"9@1"``...: one wrong digit changes one
    token). ``k`` is the number of bit positions per token (1-32): the field's weight.

    ``label``: by default a field's tokens are hashed under its column name, so the same text
    in two columns sets different bits. Columns given the same ``label`` hash their tokens
    under that one label instead, so a value moved between them (given name and surname
    swapped, address lines 1 and 2 swapped) sets the same bits; with the same tokenizer and
    ``k`` (required: tokenizer; advised: ``k``) the swap is invisible to the filter. Labels
    live in their own namespace: ``label="x"`` never collides with a column named ``x``.

    Examples
    --------
    >>> FieldSpec("surname", "bigrams", k=15)
    FieldSpec(column='surname', tokenizer='bigrams', k=15, label=None)
    >>> FieldSpec("given_name", label="name").label
    'name'
    """

    column: str
    tokenizer: Tokenizer = "bigrams"
    k: int = 10
    label: str | None = None

    def hash_label(self) -> str:
        """The label its tokens are hashed under (``f␟column``, or ``l␟label`` when shared)."""
        return "f\x1f" + self.column if self.label is None else "l\x1f" + self.label


@dataclass(frozen=True)
class BlockSpec:
    """A keyed blocking key: the normalised values of ``columns`` (each cut to its first
    ``length`` characters if given), joined and HMAC-ed. Null when any part is missing.

    With ``unordered=True`` the parts are sorted before they are joined, so the key does not
    change when values are swapped between the columns (given name and surname).

    Examples
    --------
    >>> BlockSpec("name2", ("given_name", "surname"), length=2)
    BlockSpec(name='name2', columns=('given_name', 'surname'), length=2, unordered=False)
    """

    name: str
    columns: tuple[str, ...]
    length: int | None = None
    unordered: bool = False


def _normalise_text(expr: pl.Expr) -> pl.Expr:
    """Like :func:`normalise_name`, but digits are kept (addresses, place names)."""
    return _fold(expr, keep=r"a-z0-9")


def _normalise_field(expr: pl.Expr, tokenizer: str) -> pl.Expr:
    if tokenizer == "digits":
        d = expr.cast(pl.String).str.replace_all(r"\D", "")
        return pl.when(d.str.len_chars() > 0).then(d)
    return _normalise_text(expr)


def _field_tokens(tokenizer: str) -> pl.Expr:
    """Token list of the normalised value in ``pl.col("v")``."""
    v = pl.col("v")
    if tokenizer == "bigrams":  # "_a_b_" has the bigrams of "_a_" and "_b_", none across
        return _bigrams(v.str.replace_all(" ", "_"))
    if tokenizer == "value":
        return pl.concat_list(v.str.replace_all(" ", ""))
    digits = v.str.extract_all(r"\d")
    return digits.list.eval(pl.concat_str(pl.element(), pl.lit("@"), pl.int_range(pl.len()).cast(pl.String)))


def _check_specs(frame: pl.DataFrame, fields: Sequence[FieldSpec], blocks: Sequence[BlockSpec],
                 salt: str | None, bits: int) -> None:
    wanted = [f.column for f in fields] + [c for b in blocks for c in b.columns]
    wanted += [salt] if salt is not None else []
    missing = sorted({c for c in wanted if c not in frame.columns})
    if missing:
        raise InputError([InputProblem("records to encode", c, "a column with this name") for c in missing])
    bad = [f"{f.column}: tokenizer {f.tokenizer!r}" for f in fields if f.tokenizer not in _TOKENIZERS]
    bad += [f"{f.column}: k={f.k}" for f in fields if not 1 <= f.k <= 32]
    if bad:
        raise ValueError(f"bad field specs ({'; '.join(bad)}); tokenizers {_TOKENIZERS}, 1 <= k <= 32")
    if bits < 64 or bits > 1 << 16 or bits & (bits - 1):
        raise ValueError("bits must be a power of two between 64 and 65536")
    names = [b.name for b in blocks]
    if len(set(names)) != len(names):
        raise ValueError("block names must be distinct")
    shared: dict[str, str] = {}
    for f in fields:
        if f.label is not None and shared.setdefault(f.label, f.tokenizer) != f.tokenizer:
            raise ValueError(f"fields sharing label {f.label!r} must use the same tokenizer")


def encode_records(
    frame: pl.DataFrame,
    fields: Sequence[FieldSpec],
    *,
    key: bytes,
    blocks: Sequence[BlockSpec] = (),
    salt: str | None = None,
    bits: int = BF_BITS,
    prefix: str = "clk_",
) -> pl.DataFrame:
    """Add a keyed multi-field CLK and keyed blocking keys to ``frame``, keeping every column.

    Adds ``{prefix}bf`` (``Array(UInt64, bits/64)``: one record-level Bloom filter holding
    every field, each token under a field label, with ``k`` positions of HMAC-SHA512 under
    a sub-key of ``key``) and one UInt64 ``{prefix}key_{name}`` per :class:`BlockSpec`
    (HMAC-SHA256, first 64 bits, under another sub-key). A record with no token at all gets
    a null filter. Normalisation, tokenisation and hashing run once per distinct value.

    ``salt`` names a column whose normalised value is hashed with every token (hardening
    as in :func:`encode_people`, where it is the birth year): filters with different salts
    cannot be compared, so choose a field that is rarely wrong. Default: no salt.

    Examples
    --------
    >>> people = pl.DataFrame({"name": ["Ib Holm"], "zip": ["8000"]})
    >>> out = encode_records(people, [FieldSpec("name"), FieldSpec("zip", "digits", 5)],
    ...                      key=bytes(32), blocks=[BlockSpec("zip", ("zip",))])
    >>> out.columns
    ['name', 'zip', 'clk_bf', 'clk_key_zip']
    """
    _check_specs(frame, fields, blocks, salt, bits)
    if len(key) < 16:
        raise ValueError("the linkage key must be at least 16 bytes")
    tokenizer = {f.column: f.tokenizer for f in fields}
    norm: dict[tuple[str, str], pl.Series] = {}

    def normalised(column: str) -> pl.Series:
        kind = tokenizer.get(column, "bigrams")
        if (column, kind) not in norm:
            v = _per_distinct(frame[column].cast(pl.String), {"n": _normalise_field(pl.col("v"), kind)})
            norm[(column, kind)] = v["n"]
        return norm[(column, kind)]

    salt_s = (
        normalised(salt).fill_null("") if salt is not None else pl.Series([""] * frame.height, dtype=pl.String)
    )
    k_bf = _subkey(key, "clk")
    bf = np.zeros((frame.height, bits // 64), dtype=np.uint64)
    for f in fields:
        pats, codes = _filters(
            k_bf, f.hash_label(), salt_s, normalised(f.column), _field_tokens(f.tokenizer), f.k, bits
        )
        has = codes >= 0
        bf[has] |= pats[codes[has]]
    nonempty = pl.Series(bf.any(axis=1))
    out: dict[str, pl.Series] = {f"{prefix}bf": pl.Series(bf, dtype=pl.Array(pl.UInt64, bits // 64))}

    k_block = _subkey(key, "clk-block")
    for b in blocks:
        parts = [normalised(c).str.replace_all(" ", "") for c in b.columns]
        if b.length is not None:
            parts = [p.str.slice(0, b.length) for p in parts]
        if b.unordered:  # sorted parts: a swap between the columns gives the same key
            whole = pl.all_horizontal([p.is_not_null() for p in parts])
            joined = pl.concat_list(parts).list.sort().list.join("\x1f")
            value = pl.select(
                pl.when(whole).then(pl.concat_str([pl.lit(b.name + "\x1fu"), joined], separator="\x1f"))
            ).to_series()
        else:
            value = pl.select(pl.concat_str([pl.lit(b.name), *parts], separator="\x1f")).to_series()
        out[f"{prefix}key_{b.name}"] = _per_distinct(
            value, {}, ("h", "v", k_block)
        )["h"].to_frame().select(pl.when(value.is_not_null()).then(pl.col("h"))).to_series()

    enc = pl.DataFrame(out).with_columns(pl.when(nonempty).then(pl.col(f"{prefix}bf")))
    return frame.drop([c for c in enc.columns if c in frame.columns]).hstack(enc)


def _row_counts(x: np.ndarray) -> np.ndarray:
    """Set bits per row of a (n, words) uint64 array, words a multiple of 8 (SWAR sum)."""
    if hasattr(np, "bitwise_count"):
        c = np.bitwise_count(x)
    else:  # pragma: no cover - numpy < 2
        c = _BYTE_POP[x.view(np.uint8)].reshape(len(x), x.shape[1], 8).sum(axis=2, dtype=np.uint8)
    v = np.ascontiguousarray(c, dtype=np.uint8).view(np.uint64)  # 8 byte-counts per lane
    v = (v & _M8) + ((v >> _S8) & _M8)
    v = (v & _M16) + ((v >> _S16) & _M16)
    v = (v & _M32) + (v >> _S32)
    total = v[:, 0].astype(np.int64)
    for j in range(1, v.shape[1]):  # a handful of columns: faster than a reduction
        total += v[:, j].astype(np.int64)
    return total


def dice_pairs(abf: np.ndarray, bbf: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Dice coefficient of the whole filters of the pairs (abf[i[n]], bbf[j[n]]), vectorised.

    Filters are (n, words) uint64 arrays with words a multiple of 8; computed in chunks of
    32,768 pairs (uint64 AND, ``np.bitwise_count``, a SWAR sum). Empty pairs score 0.
    """
    if abf.shape[1] % 8:
        return dice(np.take(abf, i, axis=0), np.take(bbf, j, axis=0))
    ca, cb = _row_counts(abf), _row_counts(bbf)
    out = np.empty(len(i), dtype=np.float64)
    step = 1 << 15
    for lo in range(0, len(i), step):
        ii, jj = i[lo : lo + step], j[lo : lo + step]
        inter = _row_counts(np.take(abf, ii, axis=0) & np.take(bbf, jj, axis=0))
        total = np.take(ca, ii) + np.take(cb, jj)
        out[lo : lo + step] = 2.0 * inter / np.maximum(total, 1)
    return out


def _dense_filters(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(row index of non-null filters, their (n, words) uint64 array)."""
    rows = np.flatnonzero(column.is_not_null().to_numpy())
    present = column.drop_nulls()
    if isinstance(column.dtype, pl.Array):
        words = column.dtype.size
    elif present.len():
        words = len(present[0])
    else:
        return rows, np.zeros((0, _WORDS), dtype=np.uint64)
    arr = present.cast(pl.Array(pl.UInt64, words)).to_numpy()
    return rows, np.ascontiguousarray(arr, dtype=np.uint64).reshape(-1, words)


def candidate_pairs(
    a: pl.DataFrame, b: pl.DataFrame, *, blocks: Sequence[str] | None = None, prefix: str = "clk_"
) -> pl.DataFrame:
    """Union of the pairs that share at least one keyed blocking key: columns ``a``, ``b``
    (UInt32 row indices). ``blocks`` are block names; default every ``{prefix}key_*``
    column present in both frames."""
    if blocks is None:
        cols = [c for c in a.columns if c.startswith(f"{prefix}key_") and c in b.columns]
    else:
        cols = [f"{prefix}key_{n}" for n in blocks]
        _check(a, "records a", cols)
        _check(b, "records b", cols)
    if not cols:
        raise ValueError("no blocking key: encode_records(..., blocks=[BlockSpec(...)]) first")
    ia, ib = a.select(cols).with_row_index("a"), b.select(cols).with_row_index("b")
    joins = [
        ia.select("a", pl.col(c).alias("k")).drop_nulls("k").join(
            ib.select("b", pl.col(c).alias("k")).drop_nulls("k"), on="k"
        ).select("a", "b")
        for c in cols
    ]
    return pl.concat(joins).unique().sort("a", "b")


def match_encoded(
    a: pl.DataFrame,
    b: pl.DataFrame,
    *,
    threshold: float,
    blocks: Sequence[str] | None = None,
    prefix: str = "clk_",
    one_to_one: bool = True,
) -> pl.DataFrame:
    """Match two frames of :func:`encode_records` encodings (same key, fields and bits).

    Candidates: pairs sharing any of the keyed blocking keys ``blocks`` (default: all).
    Score: Dice of the CLKs (:func:`dice_pairs`); pairs with score >= ``threshold`` are
    kept. With ``one_to_one`` (default) they are assigned greedily by score as in
    :func:`resolve`, ties left unmatched. The threshold belongs to a field schema and must
    be fixed in advance (see docs/linkage.md); there is no default.

    Returns
    -------
    pl.DataFrame
        ``a``, ``b`` (UInt32 row indices into the two frames) and ``score`` (Float64).

    Examples
    --------
    >>> f = [FieldSpec("name", "bigrams", 10)]
    >>> blk = [BlockSpec("n1", ("name",), length=1)]
    >>> ea = encode_records(pl.DataFrame({"name": ["Ib Holm", "Eva Lund"]}), f, key=bytes(32), blocks=blk)
    >>> eb = encode_records(pl.DataFrame({"name": ["Eva Lundt"]}), f, key=bytes(32), blocks=blk)
    >>> match_encoded(ea, eb, threshold=0.8).select("a", "b").rows()
    [(1, 0)]
    """
    bf = f"{prefix}bf"
    _check(a, "records a", [bf])
    _check(b, "records b", [bf])
    cand = candidate_pairs(a, b, blocks=blocks, prefix=prefix)
    ra, abf = _dense_filters(a[bf])
    rb, bbf = _dense_filters(b[bf])
    if len(abf) and len(bbf) and abf.shape[1] != bbf.shape[1]:
        raise ValueError("the two frames have filters of different lengths")
    pos_a = np.full(a.height, -1, dtype=np.int64)
    pos_a[ra] = np.arange(len(ra))
    pos_b = np.full(b.height, -1, dtype=np.int64)
    pos_b[rb] = np.arange(len(rb))
    i = pos_a[cand["a"].to_numpy()]
    j = pos_b[cand["b"].to_numpy()]
    ok = (i >= 0) & (j >= 0)
    score = np.zeros(len(i), dtype=np.float64)
    score[ok] = dice_pairs(abf, bbf, i[ok], j[ok])
    pairs = cand.with_columns(score=pl.Series(score)).filter(pl.col("score") >= threshold)
    if not one_to_one:
        return pairs
    got, _ = _assign(pairs.rename({"a": "q", "b": "p"}))
    return got.rename({"q": "a", "p": "b"}).sort("a")
