"""Sealing to the custodian and per-value sealed columns: round trips, wrong keys, tampering."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.crypto import vault
from socialsearch.crypto.keys import KeyStore, hkdf, keys_export
from socialsearch.crypto.vault import (
    open_data_key,
    open_sealed,
    open_values,
    read_vault,
    seal,
    seal_data_key,
    seal_values,
    write_vault,
)
from socialsearch.errors import VaultError


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyStore, KeyStore, KeyStore]:
    """(full custodian keystore, its hub export, another full keystore)."""
    base = tmp_path_factory.mktemp("vault")
    full = KeyStore.init(base / "keys")
    hub = KeyStore.load(keys_export(full.directory, base / "hub", "hub").directory)
    other = KeyStore.init(base / "other")
    return full, hub, other


def test_seal_round_trip_and_header(keys: tuple[KeyStore, KeyStore, KeyStore]) -> None:
    full, _, _ = keys
    blob = seal(b"hello", full.custodian_public_key, full.custodian_key_id, aad=b"ctx")
    assert blob[:4] == b"SSV\x01"
    assert vault.sealed_key_id(blob) == full.custodian_key_id
    assert open_sealed(blob, full, aad=b"ctx") == b"hello"
    assert seal(b"hello", full.custodian_public_key, full.custodian_key_id) != seal(
        b"hello", full.custodian_public_key, full.custodian_key_id
    )  # ephemeral key and nonce are fresh every time
    raw = full.custodian_public_key.public_bytes_raw()
    assert open_sealed(seal(b"x", raw, full.custodian_key_id), full) == b"x"


def test_hub_cannot_open(keys: tuple[KeyStore, KeyStore, KeyStore]) -> None:
    full, hub, _ = keys
    blob = seal(b"hello", hub.custodian_public_key, hub.custodian_key_id)  # the hub can seal
    with pytest.raises(VaultError, match="no custodian private key"):
        open_sealed(blob, hub)
    assert open_sealed(blob, full) == b"hello"


def test_wrong_key_fails(keys: tuple[KeyStore, KeyStore, KeyStore]) -> None:
    full, _, other = keys
    blob = seal(b"hello", full.custodian_public_key, full.custodian_key_id)
    with pytest.raises(VaultError, match="custodian key"):
        open_sealed(blob, other)
    # sealed to another public key under this keystore's id: the tag does not verify
    forged = seal(b"hello", other.custodian_public_key, full.custodian_key_id)
    with pytest.raises(VaultError, match="does not authenticate"):
        open_sealed(forged, full)
    with pytest.raises(VaultError, match="does not authenticate"):
        open_sealed(seal(b"x", full.custodian_public_key, full.custodian_key_id, b"a"), full, b"b")


def test_tampering_fails(keys: tuple[KeyStore, KeyStore, KeyStore]) -> None:
    full, _, _ = keys
    blob = seal(b"some plaintext", full.custodian_public_key, full.custodian_key_id)
    for i in range(5 + len(full.custodian_key_id), len(blob)):
        damaged = bytearray(blob)
        damaged[i] ^= 0x01
        with pytest.raises(VaultError):
            open_sealed(bytes(damaged), full)
    for bad in (b"", b"XYZ\x01", blob[:40], b"SSV\x02" + blob[4:]):
        with pytest.raises(VaultError):
            open_sealed(bad, full)


def test_vault_file(keys: tuple[KeyStore, KeyStore, KeyStore], tmp_path: Path) -> None:
    full, hub, other = keys
    doc = {"week": "2026-W47", "drafts": {"D1": {"persons": {"p": "q"}}}, "name": "Søren"}
    path = tmp_path / "vault" / "2026-W47.vault"
    write_vault(path, doc, hub.custodian_public_key, hub.custodian_key_id)
    assert "Søren".encode() not in path.read_bytes() and b"2026-W47" not in path.read_bytes()
    assert read_vault(path, full) == doc
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no tmp file left
    for store in (hub, other):
        with pytest.raises(VaultError):
            read_vault(path, store)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(VaultError, match=str(path.name)):
        read_vault(path, full)
    with pytest.raises(VaultError, match="cannot read"):
        read_vault(tmp_path / "missing.vault", full)


def test_data_key(keys: tuple[KeyStore, KeyStore, KeyStore]) -> None:
    full, hub, _ = keys
    kid = full.primary_key_id
    sealed = seal_data_key(full.subkey("vault"), full.custodian_public_key, full.custodian_key_id, key_id=kid)
    assert sealed["key_id"] == kid and sealed["custodian_key_id"] == full.custodian_key_id
    assert open_data_key(sealed, full) == full.subkey("vault")
    with pytest.raises(VaultError):
        open_data_key(sealed, hub)
    with pytest.raises(VaultError):  # the key id is bound to the blob
        open_data_key({**sealed, "key_id": "k00000000"}, full)


# ---------------------------------------------------------------------------- per value
KEY = bytes(range(32))


def test_values_round_trip_nulls_and_lengths() -> None:
    values = pl.Series("cpr", ["0101901234", None, "", "x" * 15, "y" * 16, "KBH:2026-0001", "æøå\x00", None])
    sealed = seal_values(values, KEY)
    assert sealed.dtype == pl.Binary and sealed.name == "cpr"
    # AES-SIV: a 16-byte synthetic IV, then a ciphertext as long as the UTF-8 value
    assert [None if b is None else len(b) for b in sealed] == [26, None, 16, 31, 32, 29, 23, None]
    assert open_values(sealed, KEY).to_list() == values.to_list()
    assert seal_values(values, KEY).to_list() == sealed.to_list()  # deterministic
    assert seal_values(pl.Series([], dtype=pl.String), KEY).to_list() == []
    assert open_values(seal_values(pl.Series([None], dtype=pl.String), KEY), KEY).to_list() == [None]


def test_values_are_standard_aes_siv() -> None:
    """Each value is cryptography's AES-SIV (RFC 5297) under HKDF(data key), with the purpose as AD."""
    values = ["KBH:2026-000000042", "0101901234", "", "æøå"]
    siv = AESSIV(hkdf(KEY, b"socialsearch/v2/vault/value-key", 64))
    expected = [siv.encrypt(v.encode(), [b"socialsearch/v2/vault/value"]) for v in values]
    assert seal_values(pl.Series(values), KEY).to_list() == expected
    assert open_values(pl.Series(expected, dtype=pl.Binary), KEY).to_list() == values


def test_values_wrong_key_and_tampering() -> None:
    sealed = seal_values(pl.Series(["0101901234", "0202901234", None]), KEY)
    with pytest.raises(VaultError, match="2 of 2 sealed values do not authenticate"):
        open_values(sealed, bytes(32))
    rows = sealed.to_list()
    damaged = bytearray(rows[1])
    damaged[20] ^= 1
    with pytest.raises(VaultError, match="1 of 2") as info:
        open_values(pl.Series([rows[0], bytes(damaged), None]), KEY)
    assert "0101901234" not in str(info.value) and "0202901234" not in str(info.value)
    with pytest.raises(VaultError, match="1 of 2"):  # one byte short
        open_values(pl.Series([rows[0], rows[1][:-1]]), KEY)
    with pytest.raises(VaultError, match="impossible length"):
        open_values(pl.Series([rows[0][:15]]), KEY)
    with pytest.raises(VaultError, match="too short"):
        seal_values(pl.Series(["x"]), b"short")


def test_values_not_utf8_after_opening() -> None:
    siv = AESSIV(hkdf(KEY, b"socialsearch/v2/vault/value-key", 64))
    sealed = siv.encrypt(b"\xff\xfe", [b"socialsearch/v2/vault/value"])
    with pytest.raises(VaultError, match="not valid UTF-8"):
        open_values(pl.Series([sealed]), KEY)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=30))
def test_values_round_trip_property(values: list[str | None]) -> None:
    series = pl.Series(values, dtype=pl.String)
    assert open_values(seal_values(series, KEY), KEY).to_list() == values
