"""Tests of socialsearch.linkage: normalisation, keyed encodings and the fallback resolver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.errors import InputError
from socialsearch.linkage import (
    DEFAULT_THRESHOLD,
    PASS2_PROBABILITY,
    BlockSpec,
    FieldSpec,
    _siphash24,
    candidate_pairs,
    dice,
    dice_pairs,
    encode_people,
    encode_records,
    match_encoded,
    normalise_name,
    resolve,
)

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def norm(values: list[str | None]) -> list[str | None]:
    return pl.DataFrame({"n": values}, schema={"n": pl.String}).select(normalise_name(pl.col("n")))["n"].to_list()


def enc(rows: list[tuple[str | None, str | None, str | None]], key: bytes = KEY) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={"g": pl.String, "s": pl.String, "b": pl.String}, orient="row")
    return encode_people(frame, given="g", surname="s", birth_date="b", key=key)


def population(rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    """rows: (person, given, surname, birth date)."""
    e = enc([r[1:] for r in rows])
    return e.with_columns(person=pl.Series([r[0] for r in rows])).drop("g", "s", "b")


def incident(rows: list[tuple[str | None, str | None, str | None, str | None]]) -> pl.DataFrame:
    """rows: (person or None, given, surname, birth date)."""
    e = enc([r[1:] for r in rows])
    return e.with_columns(
        person=pl.Series([r[0] for r in rows], dtype=pl.String),
        event_ref=pl.Series([f"e{i}" for i in range(len(rows))]),
    ).drop("g", "s", "b")


POP = population(
    [
        ("P1", "Anne-Marie", "Møller Hansen", "1985-03-12"),
        ("P2", "Jens", "Jensen", "1990-07-21"),
        ("P3", "Søren", "Ærø", "2001-11-04"),
        ("P4", "Jens", "Jensen", "1962-02-14"),
        ("P5", "Mette", "Kristensen", "2012-05-09"),
    ]
)


# --------------------------------------------------------------------------- normalisation


def test_normalise_danish_letters_and_aa() -> None:
    assert norm(["Ærø", "AERØ", "Aeroe"]) == ["aeroe", "aeroe", "aeroe"]
    assert norm(["Åse", "Aase", "AASE"]) == ["aase"] * 3
    assert norm(["Müller", "Søgård", "José", "O'Brien"]) == ["mueller", "soegaard", "jose", "obrien"]


def test_normalise_hyphens_spaces_and_empty() -> None:
    assert norm(["Møller-Hansen", " Møller  Hansen ", "Anne - Marie"]) == [
        "moeller hansen",
        "moeller hansen",
        "anne marie",
    ]
    assert norm(["", "...", None]) == [None, None, None]


def test_hyphen_space_and_double_given_names_encode_identically() -> None:
    e = enc(
        [
            ("Anne-Marie", "Møller-Hansen", "1985-03-12"),
            ("Anne Marie", "Moeller Hansen", "19850312"),
            ("ANNE  MARIE", "MØLLER - HANSEN", "1985-03-12"),
        ]
    )
    bf = e["lk_bf"].to_numpy()
    assert (bf[0] == bf[1]).all() and (bf[0] == bf[2]).all()
    for c in ("lk_dob", "lk_dob_ym", "lk_dob_yd", "lk_dob_md", "lk_dob_dm"):
        assert e[c].n_unique() == 1


def test_date_column_of_type_date_is_accepted() -> None:
    text = enc([("Jens", "Jensen", "1990-07-21")])
    frame = pl.DataFrame({"g": ["Jens"], "s": ["Jensen"]}).with_columns(b=pl.date(1990, 7, 21))
    dated = encode_people(frame, given="g", surname="s", birth_date="b", key=KEY)
    assert dated["lk_dob"].to_list() == text["lk_dob"].to_list()
    assert (dated["lk_bf"].to_numpy() == text["lk_bf"].to_numpy()).all()


# --------------------------------------------------------------------------- encodings


def test_encodings_deterministic_for_a_key_and_different_for_another() -> None:
    rows = [("Jens", "Jensen", "1990-07-21")]
    a, b, c = enc(rows), enc(rows), enc(rows, key=OTHER)
    assert (a["lk_bf"].to_numpy() == b["lk_bf"].to_numpy()).all()
    assert a.drop("lk_bf").equals(b.drop("lk_bf"))
    assert not (a["lk_bf"].to_numpy() == c["lk_bf"].to_numpy()).all()
    for col in ("lk_dob", "lk_dob_ym", "lk_dob_yd", "lk_dob_md", "lk_dob_dm"):
        assert a[col].item() != c[col].item()


def test_other_columns_kept_and_missing_data_gives_nulls() -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "g": ["Jens", None, "Mette", None],
            "s": ["Jensen", "Jensen", "Hansen", None],
            "b": ["1990-07-21", "1990-07-21", None, "1990-07-21"],
        }
    )
    e = encode_people(frame, given="g", surname="s", birth_date="b", key=KEY)
    assert e.columns[:4] == ["id", "g", "s", "b"]
    assert e["lk_bf"].is_null().to_list() == [False, False, True, True]
    assert e["lk_dob"].is_null().to_list() == [False, False, True, True]
    # the one-error keys bind both names
    assert e["lk_dob_ym"].is_null().to_list() == [False, True, True, True]


def test_filters_do_not_contain_plain_tokens() -> None:
    e = enc([("Jens", "Jensen", "1990-07-21")])
    raw = e["lk_bf"].to_numpy().astype("<u8").tobytes()
    for token in (b"jens", b"jensen", b"je", b"en", b"1990", b"0721"):
        assert token not in raw
    assert e["lk_bf"].dtype == pl.Array(pl.UInt64, 16)
    bits = int(np.bitwise_count(e["lk_bf"].to_numpy()).sum())
    assert 0 < bits < 1024


def test_missing_column_is_an_input_error() -> None:
    with pytest.raises(InputError, match="surname"):
        encode_people(pl.DataFrame({"g": ["a"], "b": ["1990-01-01"]}), given="g", surname="surname", birth_date="b", key=KEY)


def test_siphash_matches_reference_vector() -> None:
    """Aumasson & Bernstein's test key 00..0f, message 00..0f (vectors.h, entry 16)."""
    words = [np.array([int.from_bytes(bytes(range(i, i + 8)), "little")], dtype=np.uint64) for i in (0, 8)]
    out = _siphash24(bytes(range(16)), words)
    assert int(out[0]).to_bytes(8, "little").hex() == "db9bc2577fcc2a3f"


# --------------------------------------------------------------------------- resolution


def resolved(rows: list[tuple[str | None, str | None, str | None, str | None]]) -> pl.DataFrame:
    return resolve(incident(rows), POP).persons


def test_exact_name_resolves_with_high_probability() -> None:
    out = resolved([(None, "Anne Marie", "Moeller-Hansen", "1985-03-12")])
    assert out["person"].to_list() == ["P1"]
    assert out["resolved_by"].to_list() == ["probabilistic"]
    assert out["match_probability"].item() > 0.99


def test_typo_in_name_resolves() -> None:
    out = resolved([(None, "Anne Marie", "Møler Hansen", "1985-03-12")])
    assert out["person"].to_list() == ["P1"]
    assert DEFAULT_THRESHOLD <= 1.0 and out["match_probability"].item() > 0.5


def test_day_month_swapped_birth_date_resolves_in_pass_two() -> None:
    result = resolve(incident([(None, "Søren", "Aeroe", "2001-04-11")]), POP)
    assert result.persons["person"].to_list() == ["P3"]
    assert result.persons["match_probability"].item() == PASS2_PROBABILITY
    assert result.stats["pass2"] == 1 and result.stats["pass1"] == 0


def test_wrong_day_resolves_in_pass_two_only_when_asked() -> None:
    inc = incident([(None, "Mette", "Kristensen", "2012-05-19")])
    assert resolve(inc, POP).persons["person"].to_list() == [None]
    assert resolve(inc, POP, one_error=("ym",)).persons["person"].to_list() == ["P5"]


def test_wrong_month_resolves_in_pass_two_only_when_asked() -> None:
    inc = incident([(None, "Mette", "Kristensen", "2012-08-09")])
    assert resolve(inc, POP).persons["person"].to_list() == [None]
    assert resolve(inc, POP, one_error=("yd",)).persons["person"].to_list() == ["P5"]


def test_unknown_one_error_key_is_refused() -> None:
    with pytest.raises(ValueError, match="one-error"):
        resolve(incident([(None, "Ib", "Holm", "1990-07-21")]), POP, one_error=("xx",))


def test_wrong_year_resolves_only_when_asked() -> None:
    inc = incident([(None, "Mette", "Kristensen", "2011-05-09")])
    assert resolve(inc, POP).persons["person"].to_list() == [None]
    assert resolve(inc, POP, one_error=("ym", "yd", "md", "dm")).persons["person"].to_list() == ["P5"]


def test_namesake_one_error_away_with_two_candidates_is_ambiguous() -> None:
    pop = population([("A", "Ib", "Holm", "1990-07-21"), ("B", "Ib", "Holm", "1990-07-28")])
    result = resolve(incident([(None, "Ib", "Holm", "1990-07-25")]), pop, one_error=("ym",))
    assert result.persons["person"].to_list() == [None]
    assert result.stats["ambiguous"] == 1


def test_namesake_with_other_birth_date_is_not_matched() -> None:
    # Jens Jensen, but neither 1990-07-21 nor 1962-02-14 within one error
    out = resolved([(None, "Jens", "Jensen", "1975-10-03")])
    assert out["person"].to_list() == [None]
    assert out["resolved_by"].to_list() == [None]
    assert out["match_probability"].to_list() == [None]


def test_person_in_no_register_is_not_matched() -> None:
    out = resolved([(None, "Karoline", "Vestergaard", "1985-03-12"), (None, "Ib", "Holm", "1990-07-21")])
    assert out["person"].to_list() == [None, None]


def test_missing_birth_date_is_unresolvable() -> None:
    result = resolve(incident([(None, "Jens", "Jensen", None)]), POP)
    assert result.persons["person"].to_list() == [None]
    assert result.stats["unresolvable"] == 1 and result.stats["attempted"] == 0


def test_rows_with_valid_cpr_untouched() -> None:
    inc = incident([("X9", "Jens", "Jensen", "1990-07-21"), (None, "Jens", "Jensen", "1990-07-21")])
    out = resolve(inc, POP).persons
    assert out["person"].to_list() == ["X9", "P2"]
    assert out["resolved_by"].to_list() == ["cpr", "probabilistic"]
    assert out["match_probability"][0] is None
    assert out["event_ref"].to_list() == ["e0", "e1"]


def test_same_person_on_several_events_gets_same_pseudonym() -> None:
    result = resolve(incident([(None, "Jens", "Jensen", "1990-07-21")] * 3), POP)
    assert result.persons["person"].to_list() == ["P2"] * 3
    assert result.stats["identities"] == 1 and result.stats["resolved"] == 3


def test_one_to_one_between_identities_and_population() -> None:
    # two different spellings compete for P2; the exact one wins, the other is left unresolved
    out = resolved([(None, "Jens", "Jensen", "1990-07-21"), (None, "Jens", "Jenssen", "1990-07-21")])
    assert out["person"].to_list() == ["P2", None]


def test_identical_candidates_are_ambiguous() -> None:
    pop = population([("A", "Ib", "Holm", "1990-07-21"), ("B", "Ib", "Holm", "1990-07-21")])
    result = resolve(incident([(None, "Ib", "Holm", "1990-07-21")]), pop)
    assert result.persons["person"].to_list() == [None]
    assert result.stats["ambiguous"] == 1


def test_stats_count_rows() -> None:
    inc = incident(
        [
            ("X9", "Jens", "Jensen", "1990-07-21"),
            (None, "Mette", "Kristensen", "2012-05-09"),
            (None, "Ib", "Holm", "1990-07-21"),
            (None, None, None, None),
        ]
    )
    s = resolve(inc, POP).stats
    assert (s["needing"], s["attempted"], s["resolved"], s["unresolved"], s["unresolvable"]) == (3, 2, 1, 2, 1)
    assert s["candidates"] >= 2


# --------------------------------------------------------------------------- Dice


filters = st.lists(st.integers(0, 2**64 - 1), min_size=16, max_size=16).map(
    lambda v: np.array([v], dtype=np.uint64)
)


@settings(max_examples=100, deadline=None)
@given(filters, filters)
def test_dice_reflexive_and_symmetric(a: np.ndarray, b: np.ndarray) -> None:
    if a.any():
        assert dice(a, a)[0] == 1.0
    assert dice(a, b)[0] == dice(b, a)[0]
    assert 0.0 <= dice(a, b)[0] <= 1.0


def test_dice_by_hand() -> None:
    a = np.array([[0b1111, 0]], dtype=np.uint64)
    b = np.array([[0b0011, 1]], dtype=np.uint64)
    assert dice(a, b)[0] == pytest.approx(2 * 2 / (4 + 3))


def test_encodings_survive_parquet_and_list_columns(tmp_path: Path) -> None:
    path = tmp_path / "pop.parquet"
    POP.write_parquet(path)
    pop = pl.read_parquet(path)
    inc = incident([(None, "Jens", "Jensen", "1990-07-21")])
    as_list = inc.with_columns(pl.col("lk_bf").arr.to_list())
    assert resolve(as_list, pop).persons["person"].to_list() == ["P2"]


# --------------------------------------------------------------------------- multi-field CLKs

FIELDS = (
    FieldSpec("given", "bigrams", 8),
    FieldSpec("surname", "bigrams", 8),
    FieldSpec("street", "bigrams", 5),
    FieldSpec("zip", "digits", 6),
    FieldSpec("state", "value", 8),
    FieldSpec("dob", "digits", 12),
)
BLOCKS = (BlockSpec("zip", ("zip",)), BlockSpec("dob", ("dob",)), BlockSpec("name2", ("given", "surname"), length=2))
COLS = ("given", "surname", "street", "zip", "state", "dob")


def records(rows: list[tuple[str | None, ...]], key: bytes = KEY, **kw: object) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={c: pl.String for c in COLS}, orient="row")
    return encode_records(frame, FIELDS, key=key, blocks=BLOCKS, **kw)  # type: ignore[arg-type]


A = [
    ("Michaela", "Neumann", "Stanley Street", "4223", "nsw", "19151111"),
    ("Courtney", "Painter", "Pinkerton Circuit", "4560", "vic", "19161214"),
    ("Charles", "Green", "Salkauskas Crescent", "4566", "nsw", "19480930"),
]


def clk(frame: pl.DataFrame) -> np.ndarray:
    return frame["clk_bf"].to_numpy()


def test_records_columns_and_types() -> None:
    e = records(A)
    assert e.columns == [*COLS, "clk_bf", "clk_key_zip", "clk_key_dob", "clk_key_name2"]
    assert e["clk_bf"].dtype == pl.Array(pl.UInt64, 16)
    assert e["clk_key_zip"].dtype == pl.UInt64
    raw = clk(e).astype("<u8").tobytes()
    for token in (b"neumann", b"ne", b"4223", b"nsw", b"1915"):
        assert token not in raw


def test_multifield_exact_match_in_other_order() -> None:
    a, b = records(A), records(A[::-1])
    got = match_encoded(a, b, threshold=0.64)
    assert got.select("a", "b").rows() == [(0, 2), (1, 1), (2, 0)]
    assert got["score"].to_list() == [1.0, 1.0, 1.0]


def test_multifield_typos_still_match() -> None:
    b = records(
        [
            ("Michela", "Neuman", "Stanley St", "4223", "nsw", "19151111"),  # name typos, short street
            ("Courtney", "Painter", "Pinkerton Circuit", "4650", "vic", "19161214"),  # zip digits swapped
        ]
    )
    got = match_encoded(records(A), b, threshold=0.64)
    assert got.select("a", "b").rows() == [(0, 0), (1, 1)]
    assert all(0.64 <= s < 1.0 for s in got["score"])


def test_multifield_other_person_in_same_block_is_not_matched() -> None:
    # same zip and state (candidate pair), everything else different
    b = records([("Ib", "Holm", "Ny Vestergade", "4223", "nsw", "19870402")])
    assert candidate_pairs(records(A), b).rows() == [(0, 0)]
    assert match_encoded(records(A), b, threshold=0.64).height == 0
    loose = match_encoded(records(A), b, threshold=0.0, one_to_one=False)
    assert loose["score"].item() < 0.5


def test_multifield_not_in_any_block_is_not_compared() -> None:
    b = records([("Michaela", "Neumann", "Stanley Street", "9999", "nsw", None)])
    b = b.with_columns(clk_key_name2=pl.lit(None, pl.UInt64))  # drop the only shared key
    assert candidate_pairs(records(A), b).height == 0
    assert match_encoded(records(A), b, threshold=0.0).height == 0


def test_records_deterministic_for_a_key_and_different_for_another() -> None:
    a, b, c = records(A), records(A), records(A, key=OTHER)
    assert (clk(a) == clk(b)).all()
    assert a.equals(b)
    assert not (clk(a) == clk(c)).all(axis=1).any()
    for col in ("clk_key_zip", "clk_key_dob", "clk_key_name2"):
        assert not set(a[col]) & set(c[col])


def test_records_differ_from_the_product_encoding() -> None:
    """Domain-separated sub-keys: the CLK bits are not the product filter's bits."""
    frame = pl.DataFrame({"given": ["Jens"], "surname": ["Jensen"], "dob": ["19900721"]})
    people = encode_people(frame, given="given", surname="surname", birth_date="dob", key=KEY)
    rec = encode_records(frame, [FieldSpec("given"), FieldSpec("surname")], key=KEY)
    assert not (people["lk_bf"].to_numpy() == rec["clk_bf"].to_numpy()).all()


def test_tokenizers_normalise() -> None:
    e = records(
        [
            ("Anne-Marie", "Møller", "12 Main St.", "42-23", "NSW", "1915-11-11"),
            ("anne marie", "MOELLER", "12  main st", "4223", " nsw", "19151111"),
        ]
    )
    assert (clk(e)[0] == clk(e)[1]).all()
    assert e["clk_key_name2"].n_unique() == 1 and e["clk_key_dob"].n_unique() == 1


def test_digits_are_positional() -> None:
    """One wrong digit changes one of four zip tokens; a shifted number changes them all."""
    f = [FieldSpec("zip", "digits", 6)]
    e = encode_records(pl.DataFrame({"zip": ["4223", "4224", "2234"]}), f, key=KEY)
    bf = clk(e)
    d = dice(bf[[0, 0]], bf[[1, 2]])
    assert d[0] > 0.7 and d[1] < d[0]


def test_same_value_in_another_field_sets_other_bits() -> None:
    f = [FieldSpec("x", "value", 10), FieldSpec("y", "value", 10)]
    e = encode_records(pl.DataFrame({"x": ["holm", None], "y": [None, "holm"]}), f, key=KEY)
    assert dice(clk(e)[[0]], clk(e)[[1]])[0] < 0.3


def test_salt_separates_records() -> None:
    f = [FieldSpec("name")]
    frame = pl.DataFrame({"name": ["Ib Holm"] * 3, "year": ["1990", "1990", "1991"]})
    e = encode_records(frame, f, key=KEY, salt="year")
    assert (clk(e)[0] == clk(e)[1]).all()
    assert not (clk(e)[0] == clk(e)[2]).all()


def test_missing_values_give_nulls() -> None:
    e = records([(None, None, None, None, None, None), ("Ib", None, None, "8000", None, None)])
    assert e["clk_bf"].is_null().to_list() == [True, False]
    assert e["clk_key_zip"].is_null().to_list() == [True, False]
    assert e["clk_key_name2"].is_null().to_list() == [True, True]  # needs both names


def test_rows_without_filter_are_not_matched_and_lists_are_accepted() -> None:
    a = records([*A, ("Ib", None, None, "4223", None, None)])
    b = records([(None, None, None, "4223", None, None)]).with_columns(clk_bf=pl.lit(None, pl.List(pl.UInt64)))
    assert match_encoded(a, b, threshold=0.0).height == 0
    as_list = records(A).with_columns(pl.col("clk_bf").arr.to_list())
    assert match_encoded(a, as_list, threshold=0.64).select("a", "b").rows() == [(0, 0), (1, 1), (2, 2)]


def test_block_prefix_length() -> None:
    e = records([("Michaela", "Neumann", None, None, None, None), ("Michelle", "Newton", None, None, None, None)])
    assert e["clk_key_name2"].n_unique() == 1


def test_bad_specs_are_refused() -> None:
    frame = pl.DataFrame({"a": ["x"]})
    with pytest.raises(InputError, match="zz"):
        encode_records(frame, [FieldSpec("zz")], key=KEY)
    with pytest.raises(ValueError, match="k=40"):
        encode_records(frame, [FieldSpec("a", k=40)], key=KEY)
    with pytest.raises(ValueError, match="tokenizer"):
        encode_records(frame, [FieldSpec("a", "soundex")], key=KEY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="power of two"):
        encode_records(frame, [FieldSpec("a")], key=KEY, bits=1000)
    with pytest.raises(ValueError, match="16 bytes"):
        encode_records(frame, [FieldSpec("a")], key=b"short")
    with pytest.raises(ValueError, match="blocking key"):
        match_encoded(encode_records(frame, [FieldSpec("a")], key=KEY), encode_records(frame, [FieldSpec("a")], key=KEY), threshold=0.5)


def test_other_filter_length() -> None:
    e = records(A, bits=2048)
    assert e["clk_bf"].dtype == pl.Array(pl.UInt64, 32)
    assert match_encoded(e, records(A, bits=2048), threshold=0.64).height == 3


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**64 - 1), min_size=16, max_size=16), min_size=1, max_size=5))
def test_dice_pairs_equals_dice(rows: list[list[int]]) -> None:
    bf = np.array(rows, dtype=np.uint64)
    i, j = np.meshgrid(np.arange(len(bf)), np.arange(len(bf)))
    i, j = i.ravel(), j.ravel()
    assert np.allclose(dice_pairs(bf, bf, i, j), dice(bf[i], bf[j]))


# --------------------------------------------------------------------------- shared labels (swaps)

NAME_FIELDS = [FieldSpec("given", "bigrams", 8, label="name"), FieldSpec("surname", "bigrams", 8, label="name")]
SWAP = pl.DataFrame({"given": ["Michaela", "Neumann"], "surname": ["Neumann", "Michaela"]})


def test_shared_label_makes_a_given_surname_swap_invisible() -> None:
    shared = clk(encode_records(SWAP, NAME_FIELDS, key=KEY))
    assert (shared[0] == shared[1]).all()
    own = clk(encode_records(SWAP, [FieldSpec("given", "bigrams", 8), FieldSpec("surname", "bigrams", 8)], key=KEY))
    assert dice(own[[0]], own[[1]])[0] < 0.3  # without a label the swap looks like another person


def test_swapped_pair_scores_like_the_unswapped_one_under_a_shared_label() -> None:
    blk = [BlockSpec("name2", ("given", "surname"), length=2, unordered=True)]
    a = encode_records(pl.DataFrame({"given": ["Michaela"], "surname": ["Neumann"]}), NAME_FIELDS, key=KEY, blocks=blk)
    typo = pl.DataFrame({"given": ["Michela", "Neuman"], "surname": ["Neuman", "Michela"]})
    b = encode_records(typo, NAME_FIELDS, key=KEY, blocks=blk)
    got = match_encoded(a, b, threshold=0.5, one_to_one=False).sort("b")
    assert got["b"].to_list() == [0, 1]
    assert got["score"][0] == got["score"][1] and 0.5 < got["score"][0] < 1.0


def test_shared_label_filters_differ_by_key_and_from_column_labels() -> None:
    frame = SWAP.head(1)
    a, b = clk(encode_records(frame, NAME_FIELDS, key=KEY)), clk(encode_records(frame, NAME_FIELDS, key=OTHER))
    assert not (a == b).all()
    assert dice(a, b)[0] < 0.3
    # label "given" is its own namespace: not the bits of the column "given"
    lone = [FieldSpec("given", "bigrams", 8)]
    as_label = [FieldSpec("given", "bigrams", 8, label="given")]
    assert not (clk(encode_records(frame, lone, key=KEY)) == clk(encode_records(frame, as_label, key=KEY))).all()


def test_unlabelled_fields_unchanged_by_the_label_option() -> None:
    """label=None hashes under the column as before: the same bits as an explicit default spec."""
    assert FieldSpec("given").label is None
    old = encode_records(SWAP, [FieldSpec("given", "bigrams", 8)], key=KEY)
    new = encode_records(SWAP, [FieldSpec("given", "bigrams", 8, label=None)], key=KEY)
    assert old.equals(new)


def test_unordered_block_key_ignores_a_swap() -> None:
    blocks = [
        BlockSpec("u", ("given", "surname"), length=2, unordered=True),
        BlockSpec("o", ("given", "surname"), length=2),
    ]
    frame = pl.concat([SWAP, pl.DataFrame({"given": [None], "surname": ["Holm"]})])
    e = encode_records(frame, NAME_FIELDS, key=KEY, blocks=blocks)
    assert e["clk_key_u"][0] == e["clk_key_u"][1]
    assert e["clk_key_o"][0] != e["clk_key_o"][1]
    assert e["clk_key_u"][0] not in (e["clk_key_o"][0], e["clk_key_o"][1])
    assert e["clk_key_u"].is_null().to_list() == [False, False, True]


def test_shared_label_needs_one_tokenizer() -> None:
    bad = [FieldSpec("given", "bigrams", label="x"), FieldSpec("surname", "value", label="x")]
    with pytest.raises(ValueError, match="same tokenizer"):
        encode_records(SWAP, bad, key=KEY)
