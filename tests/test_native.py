"""The Rust kernels of ``socialsearch._native``: RFC 4231 and RFC 5297 known answers, and
properties against the standard library's ``hmac`` and ``cryptography``'s ``AESSIV``."""

from __future__ import annotations

import base64
import hmac

import numpy as np
import polars as pl
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import RFC4231, RFC5297

from socialsearch.crypto import _native


def native_hmac(key: bytes, values: pl.Series, threads: int = 0) -> list[bytes | None]:
    return pl.Series(_native.hmac_sha256(key, values, threads=threads)).to_list()


def seal(key: bytes, values: list[bytes | None], ad: list[bytes], threads: int = 0) -> list[bytes | None]:
    return pl.Series(_native.aes_siv_seal(key, pl.Series(values, dtype=pl.Binary), ad, threads)).to_list()


def open_(key: bytes, values: list[bytes | None], ad: list[bytes], threads: int = 0) -> tuple[list[bytes] | None, int]:
    opened, bad = _native.aes_siv_open(key, pl.Series(values, dtype=pl.Binary), ad, threads)
    return (None if opened is None else pl.Series(opened).to_list()), bad


# ---------------------------------------------------------------------------- RFC 4231


@pytest.mark.parametrize(("key", "data", "expected", "size"), RFC4231)
@pytest.mark.parametrize("threads", [1, 2])
def test_rfc4231(key: bytes, data: bytes, expected: str, size: int, threads: int) -> None:
    out = native_hmac(key, pl.Series([data, None, data], dtype=pl.Binary), threads=threads)
    assert out[0] is not None and out[0][:size].hex() == expected
    assert out[1] is None and out[2] == out[0]


# ---------------------------------------------------------------------------- RFC 5297
A1 = RFC5297["A.1"]
A2 = RFC5297["A.2"]


def test_rfc5297_a1_deterministic() -> None:
    assert A1.nonce is None
    assert seal(A1.key, [A1.plaintext, None], A1.components()) == [A1.output, None]
    assert open_(A1.key, [A1.output, None], A1.components()) == ([A1.plaintext, None], 0)


def test_rfc5297_a2_nonce_is_the_last_associated_data_item() -> None:
    assert A2.nonce is not None and len(A2.associated_data) == 2
    ad = A2.components()
    assert seal(A2.key, [A2.plaintext], ad) == [A2.output]
    assert open_(A2.key, [A2.output], ad) == ([A2.plaintext], 0)
    assert open_(A2.key, [A2.output], A2.associated_data) == (None, 1)


# -------------------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(key=st.binary(max_size=140), values=st.lists(st.one_of(st.none(), st.binary(max_size=150)), max_size=40),
       threads=st.integers(1, 3))
def test_hmac_equals_hmac_digest(key: bytes, values: list[bytes | None], threads: int) -> None:
    expected = [None if v is None else hmac.digest(key, v, "sha256") for v in values]
    assert native_hmac(key, pl.Series(values, dtype=pl.Binary), threads=threads) == expected


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.text(max_size=30), max_size=30), prefix=st.text("abcdef0123.-", max_size=12))
def test_text_encodings_equal_the_standard_library(values: list[str], prefix: str) -> None:
    key = b"k" * 32
    series = pl.Series(values, dtype=pl.String)
    b64 = pl.Series(_native.hmac_sha256(key, series, prefix.encode(), "base64url16")).to_list()
    hx = pl.Series(_native.hmac_sha256(key, series, prefix.encode(), "hex8")).to_list()
    for value, got_b64, got_hex in zip(values, b64, hx, strict=True):
        mac = hmac.digest(key, value.encode(), "sha256")
        assert got_b64 == prefix + base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")
        assert got_hex == prefix + mac[:8].hex()


@settings(max_examples=40, deadline=None)
@given(key=st.sampled_from([32, 64]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       ad=st.lists(st.binary(max_size=40), max_size=4),
       values=st.lists(st.one_of(st.none(), st.binary(max_size=80)), max_size=30),
       threads=st.integers(1, 3))
def test_seal_equals_cryptography_and_opens(key: bytes, ad: list[bytes], values: list[bytes | None],
                                            threads: int) -> None:
    siv = AESSIV(key)
    expected = [None if v is None else siv.encrypt(v, ad) for v in values]
    sealed = seal(key, values, ad, threads)
    assert sealed == expected
    assert open_(key, sealed, ad, threads) == (values, 0)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.binary(max_size=40), min_size=1, max_size=20), data=st.data())
def test_tampering_is_detected(values: list[bytes], data: st.DataObject) -> None:
    key = bytes(range(64))
    sealed = seal(key, list(values), [b"ad"])
    i = data.draw(st.integers(0, len(sealed) - 1))
    target = sealed[i]
    assert target is not None
    bit = data.draw(st.integers(0, 8 * len(target) - 1))
    damaged = bytearray(target)
    damaged[bit // 8] ^= 1 << (bit % 8)
    sealed[i] = bytes(damaged)
    assert open_(key, sealed, [b"ad"]) == (None, 1)


# ------------------------------------------------------------------------ the interface
def test_chunked_and_sliced_columns() -> None:
    """Several Arrow arrays in one stream, and a slice (an array offset), read correctly."""
    key = b"key"
    a = pl.Series([f"a{i}" for i in range(5000)])
    b = pl.Series(["x" * 40, None, "b"])
    chunked = pl.concat([a, b], rechunk=False)
    assert chunked.n_chunks() == 2
    expected = [None if v is None else hmac.digest(key, v.encode(), "sha256") for v in chunked.to_list()]
    assert native_hmac(key, chunked, threads=2) == expected
    sliced = chunked.slice(4998, 4)
    assert native_hmac(key, sliced) == expected[4998:5002]
    large = pl.Series(["v" * 20, "w"], dtype=pl.String).cast(pl.Binary)
    assert native_hmac(key, large) == [hmac.digest(key, v, "sha256") for v in large.to_list()]


def test_empty_and_all_null() -> None:
    assert native_hmac(b"k", pl.Series([], dtype=pl.String)) == []
    assert native_hmac(b"k", pl.Series([None, None], dtype=pl.String)) == [None, None]
    assert seal(bytes(64), [], []) == []
    assert seal(bytes(64), [None], []) == [None]
    assert open_(bytes(64), [None], []) == ([None], 0)


def test_large_column_on_two_threads_equals_one() -> None:
    values = pl.Series([f"{i:010d}" for i in range(50_000)])
    one = pl.Series(_native.hmac_sha256(b"k" * 32, values, b"p.", "base64url16", 1))
    two = pl.Series(_native.hmac_sha256(b"k" * 32, values, b"p.", "base64url16", 2))
    assert one.dtype == pl.String and one.equals(two)
    assert one.n_unique() == len(values)


def test_errors() -> None:
    values = pl.Series(["a"])
    with pytest.raises(ValueError, match="32 or 64 bytes"):
        _native.aes_siv_seal(bytes(48), values, [])
    with pytest.raises(ValueError, match="string or binary"):
        _native.hmac_sha256(b"k", pl.Series([1, 2]))
    with pytest.raises(ValueError, match="__arrow_c_stream__"):
        _native.hmac_sha256(b"k", [b"a"])
    with pytest.raises(ValueError, match="encoding"):
        _native.hmac_sha256(b"k", values, b"", "base32")
    with pytest.raises(ValueError, match="ASCII"):
        _native.hmac_sha256(b"k", values, "æ".encode(), "hex8")
    with pytest.raises(ValueError, match="126"):
        _native.aes_siv_seal(bytes(64), values, [b""] * 127)
    array = _native.hmac_sha256(b"k", values)
    assert len(array) == 1
    assert repr(array) == f"<{type(array).__module__}.ArrowArray of 1 values>"
    pl.Series(array)
    with pytest.raises(RuntimeError, match="already handed over"):
        pl.Series(array)


def test_sha256_compressions_is_deterministic() -> None:
    one = _native.sha256_compressions(1000, 1)
    assert len(one) == 32 and one == _native.sha256_compressions(1000, 1)
    assert one != _native.sha256_compressions(1001, 1)


# ------------------------------------------------------------------ a key per row (scoping)


@pytest.mark.parametrize("threads", [1, 2])
def test_keyed_rfc4231_every_vector_in_one_call(threads: int) -> None:
    """Each RFC 4231 vector under its own key, the rows interleaved with nulls, in one call."""
    keys = [key for key, _, _, _ in RFC4231]
    rows = [(k, data) for k, (_, data, _, _) in enumerate(RFC4231)] * 2
    rows = rows[::-1] + [(0, None)]
    index = np.array([k for k, _ in rows], dtype=np.uint32)
    values = pl.Series([data for _, data in rows], dtype=pl.Binary)
    out = pl.Series(_native.hmac_sha256_keyed(keys, [b""] * len(keys), index, values, "raw", threads)).to_list()
    for (k, _), mac in zip(rows[:-1], out[:-1], strict=True):
        _, _, expected, size = RFC4231[k]
        assert mac is not None and mac[:size].hex() == expected
    assert out[-1] is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.text(max_size=60)), max_size=50),
       st.lists(st.binary(max_size=80), min_size=3, max_size=3))
def test_keyed_text_equals_the_standard_library(rows: list[tuple[int, str]], keys: list[bytes]) -> None:
    prefixes = [b"101.", b"851.e.", b""]
    index = np.array([k for k, _ in rows], dtype=np.uint32)
    out = pl.Series(_native.hmac_sha256_keyed(keys, prefixes, index, pl.Series([v for _, v in rows], dtype=pl.String),
                                              "base64url16"), dtype=pl.String).to_list()
    for (k, value), got in zip(rows, out, strict=True):
        mac = hmac.digest(keys[k], value.encode(), "sha256")[:16]
        assert got == prefixes[k].decode() + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_keyed_refuses_what_does_not_fit() -> None:
    values = pl.Series(["a"])
    with pytest.raises(ValueError, match="out of range"):
        _native.hmac_sha256_keyed([b"k"], [b""], np.array([1], dtype=np.uint32), values, "hex8")
    with pytest.raises(ValueError, match="one key index per value"):
        _native.hmac_sha256_keyed([b"k"], [b""], np.array([0, 0], dtype=np.uint32), values, "hex8")
    with pytest.raises(ValueError, match="one prefix per key"):
        _native.hmac_sha256_keyed([b"k"], [], np.array([0], dtype=np.uint32), values, "hex8")
