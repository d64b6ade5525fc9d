"""The keystore: files and modes, rotation, HKDF sub-keys, hub/station exports, no secret leaks."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import polars as pl
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from socialsearch.crypto.keys import PURPOSES, KeyStore, keys_export, keys_rotate, pseudonym_key_id
from socialsearch.errors import KeyStoreError


def _secret(store: KeyStore, kid: str) -> bytes:
    data = json.loads((store.directory / "keyset.json").read_text())
    return base64.b64decode(next(k["secret"] for k in data["keys"] if k["id"] == kid))


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore.init(tmp_path / "keys")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_files_and_modes(store: KeyStore) -> None:
    d = store.directory
    assert _mode(d) == 0o700
    for name in ("keyset.json", "custodian.key", "custodian.pub"):
        assert _mode(d / name) == 0o600
    assert store.role == "full" and store.has_secret and store.has_custodian_private_key
    assert store.key_ids == (store.primary_key_id,)
    assert len(store.primary_key_id) == 9 and store.primary_key_id.startswith("k")
    assert len(_secret(store, store.primary_key_id)) == 32


def test_init_refuses_existing_keystore(store: KeyStore) -> None:
    with pytest.raises(KeyStoreError, match="already holds a keystore"):
        KeyStore.init(store.directory)


def test_load_round_trip(store: KeyStore) -> None:
    again = KeyStore.load(store.directory)
    assert again.primary_key_id == store.primary_key_id
    assert again.custodian_key_id == store.custodian_key_id
    for purpose in PURPOSES:
        assert again.subkey(purpose) == store.subkey(purpose)


@pytest.mark.parametrize("name", ["keyset.json", "custodian.key"])
def test_load_refuses_permissive_secret_files(store: KeyStore, name: str) -> None:
    path = store.directory / name
    os.chmod(path, 0o640)
    with pytest.raises(KeyStoreError, match="chmod 600") as info:
        KeyStore.load(store.directory)
    assert str(path) in str(info.value)


def test_load_missing(tmp_path: Path) -> None:
    # A wrong path is a wrong path: never answered with the command that makes a new secret.
    with pytest.raises(KeyStoreError, match="no keystore at .*nope .*check the path") as info:
        KeyStore.load(tmp_path / "nope")
    assert "keys init" not in str(info.value)


def test_subkey_is_hkdf_sha256_with_purpose_info(store: KeyStore) -> None:
    secret = _secret(store, store.primary_key_id)
    for purpose in PURPOSES:
        expected = HKDF(hashes.SHA256(), 32, None, b"socialsearch/v1/" + purpose.encode()).derive(secret)
        assert store.subkey(purpose) == expected
    assert len({store.subkey(p) for p in PURPOSES}) == len(PURPOSES)
    with pytest.raises(KeyStoreError, match="unknown key purpose"):
        store.subkey("other")
    with pytest.raises(KeyStoreError, match="not in the keystore"):
        store.subkey("person", "k00000000")


def test_repr_describe_and_errors_never_show_secrets(store: KeyStore) -> None:
    secret = _secret(store, store.primary_key_id)
    priv = json.loads((store.directory / "custodian.key").read_text())["private_key"]
    texts = [repr(store), str(store), json.dumps(store.describe())]
    for text in texts:
        assert base64.b64encode(secret).decode() not in text
        assert secret.hex() not in text
        assert priv not in text
    described = store.describe()
    assert described["primary"] == store.primary_key_id
    assert described["keys"][0] == {
        "id": store.primary_key_id, "status": "enabled", "primary": True,
        "created_at": described["keys"][0]["created_at"],
    }
    assert described["custodian"]["key_id"] == store.custodian_key_id
    assert len(base64.b64decode(described["custodian"]["public_key"])) == 32


def test_rotation_three_steps(store: KeyStore) -> None:
    old = store.primary_key_id
    old_person = store.subkey("person")
    added = keys_rotate(store.directory)
    new = next(k for k in added.key_ids if k != old)
    assert added.primary_key_id == old and added.key_status(new) == "enabled"
    with pytest.raises(KeyStoreError, match="primary"):
        keys_rotate(store.directory, disable=old)
    promoted = keys_rotate(store.directory, promote=new)
    assert promoted.primary_key_id == new
    disabled = keys_rotate(store.directory, disable=old)
    assert disabled.key_status(old) == "disabled"
    reloaded = KeyStore.load(store.directory)
    assert reloaded.key_ids == (old, new)
    assert reloaded.subkey("person", old) == old_person  # kept for re-identification and re-keying
    assert reloaded.subkey("person") != old_person
    assert _mode(store.directory / "keyset.json") == 0o600
    with pytest.raises(KeyStoreError, match="not in the keystore"):
        keys_rotate(store.directory, promote="k00000000")


def test_hub_export_holds_no_secret(store: KeyStore, tmp_path: Path) -> None:
    hub = keys_export(store.directory, tmp_path / "hub", "hub")
    assert hub.role == "hub" and not hub.has_secret and not hub.has_custodian_private_key
    assert not (tmp_path / "hub" / "custodian.key").exists()
    text = "".join(p.read_text() for p in (tmp_path / "hub").iterdir())
    secret = _secret(store, store.primary_key_id)
    assert base64.b64encode(secret).decode() not in text
    assert base64.b64encode(store.subkey("person")).decode() not in text
    loaded = KeyStore.load(tmp_path / "hub")
    assert loaded.subkey("draft") == store.subkey("draft")
    assert loaded.primary_key_id == store.primary_key_id
    assert loaded.custodian_key_id == store.custodian_key_id
    for purpose in ("person", "event", "vault"):
        with pytest.raises(KeyStoreError, match="no pseudonymisation secret"):
            loaded.subkey(purpose)
    with pytest.raises(KeyStoreError, match="no custodian private key"):
        loaded.custodian_private_key()
    with pytest.raises(KeyStoreError):
        keys_export(tmp_path / "hub", tmp_path / "station", "station")
    with pytest.raises(KeyStoreError, match="hub keystore"):
        keys_rotate(tmp_path / "hub")


def test_station_export(store: KeyStore, tmp_path: Path) -> None:
    keys_rotate(store.directory)
    station = KeyStore.load(keys_export(store.directory, tmp_path / "st", "station").directory)
    assert station.role == "station" and station.has_secret and not station.has_custodian_private_key
    assert not (tmp_path / "st" / "custodian.key").exists()
    for kid in store.key_ids:
        assert station.subkey("person", kid) == KeyStore.load(store.directory).subkey("person", kid)
    assert station.custodian_public_key.public_bytes_raw() == store.custodian_public_key.public_bytes_raw()
    with pytest.raises(KeyStoreError, match="already holds"):
        keys_export(store.directory, tmp_path / "st", "station")


def test_custodian_private_key(store: KeyStore) -> None:
    priv = store.custodian_private_key(store.custodian_key_id)
    assert priv.public_key().public_bytes_raw() == store.custodian_public_key.public_bytes_raw()
    with pytest.raises(KeyStoreError, match="custodian key"):
        store.custodian_private_key("c00000000")


def test_pseudonym_key_id() -> None:
    frame = pl.DataFrame({"p": ["k0a1b2c3d.abc", "e.k99999999.x", "D2026-W01-k0a1b2c3d-ff", None, "zzz"]})
    assert frame.select(pseudonym_key_id("p"))["p"].to_list() == [
        "k0a1b2c3d", "k99999999", "k0a1b2c3d", None, None,
    ]


def test_every_permission_problem_is_reported_at_once(store: KeyStore) -> None:
    d = store.directory
    os.chmod(d / "keyset.json", 0o644)
    os.chmod(d / "custodian.key", 0o640)
    os.chmod(d, 0o777)
    try:
        with pytest.raises(KeyStoreError) as info:
            KeyStore.load(d)
    finally:
        os.chmod(d, 0o700)
    message = str(info.value)
    assert "3 problems" in message
    assert f"{d / 'keyset.json'} holds secrets but is readable by group or others (mode 0644)" in message
    assert f"{d / 'custodian.key'} holds secrets but is readable by group or others (mode 0640)" in message
    assert f"{d} can be written by group or others (mode 0777)" in message
    assert f"fix them with: chmod 600 {d / 'keyset.json'} {d / 'custodian.key'} && chmod 700 {d}" in message


def test_export_force_replaces_an_export_but_never_a_full_keystore(store: KeyStore, tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    keys_export(store.directory, hub, "hub")
    keys_rotate(store.directory)
    with pytest.raises(KeyStoreError, match="--force"):
        keys_export(store.directory, hub, "hub")
    replaced = keys_export(store.directory, hub, "hub", force=True)
    assert KeyStore.load(hub).key_ids == replaced.key_ids == KeyStore.load(store.directory).key_ids
    assert _mode(hub / "keyset.json") == 0o600
    other = KeyStore.init(tmp_path / "other")
    with pytest.raises(KeyStoreError, match="custodian's private key"):
        keys_export(store.directory, other.directory, "hub", force=True)
    with pytest.raises(KeyStoreError, match="being exported"):
        keys_export(store.directory, store.directory, "station", force=True)
    assert KeyStore.load(other.directory).has_custodian_private_key
