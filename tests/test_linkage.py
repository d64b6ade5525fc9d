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
    _siphash24,
    dice,
    encode_people,
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
