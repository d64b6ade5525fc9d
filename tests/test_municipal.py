"""Exact values sealed for the receiving municipality (socialsearch.crypto.municipal, socialsearch open).

Known answers of the constructions used (RFC 7748 X25519, RFC 5869 HKDF, AES-GCM from the GCM
specification; AES-SIV's RFC 5297 answers are in tests/test_native.py), then the promises: only
the receiving municipality's key opens a value, another municipality's or the hub's cannot, a
changed or moved value is refused, equal values never seal alike, every sealed value has one size.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from socialsearch import keys_municipality_add, keys_municipality_init, open_drafts, pseudonymise, run
from socialsearch.catalogue import load_catalogue
from socialsearch.crypto import vault
from socialsearch.crypto.keys import KeyStore, keys_export, keys_show
from socialsearch.crypto.municipal import (
    PLAINTEXT_BYTES,
    MunicipalKey,
    MunicipalSealer,
    open_data_key,
    open_details,
    plaintext,
)
from socialsearch.errors import KeyStoreError, VaultError
from socialsearch.geography import geography
from socialsearch.hub.drafts import ROLE_DA
from socialsearch.station.extracts import read_raw

WEEK = "2026-W47"
H = bytes.fromhex


# ----------------------------------------------------------------------------- known answers
def test_x25519_rfc7748_section_6_1() -> None:
    alice = X25519PrivateKey.from_private_bytes(H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    bob = X25519PrivateKey.from_private_bytes(H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
    alice_public = H("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    bob_public = H("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    assert alice.public_key().public_bytes_raw() == alice_public
    assert bob.public_key().public_bytes_raw() == bob_public
    shared = H("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert alice.exchange(bob.public_key()) == shared == bob.exchange(alice.public_key())


def test_hkdf_sha256_rfc5869_test_cases_1_and_3() -> None:
    okm = HKDF(hashes.SHA256(), 42, H("000102030405060708090a0b0c"), H("f0f1f2f3f4f5f6f7f8f9")).derive(b"\x0b" * 22)
    assert okm == H("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    from socialsearch.crypto.keys import hkdf  # the project's one derivation: no salt

    assert hkdf(b"\x0b" * 22, b"", 42) == H(
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")


@pytest.mark.parametrize(("key", "iv", "plain", "aad", "cipher_and_tag"), [
    # The Galois/Counter Mode of Operation (McGrew and Viega, NIST submission), test cases 13, 14, 16
    ("00" * 32, "00" * 12, "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
    ("00" * 32, "00" * 12, "00" * 16, "", "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"),
    ("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
     "76fc6ece0f4e1768cddf8853bb2d551b"),
])
def test_aes_256_gcm_known_answers(key: str, iv: str, plain: str, aad: str, cipher_and_tag: str) -> None:
    assert AESGCM(H(key)).encrypt(H(iv), H(plain), H(aad) or None) == H(cipher_and_tag)


# ------------------------------------------------------------------------------------- keys
def test_a_municipality_key_pair_is_private_and_never_overwritten(tmp_path: Path) -> None:
    public = keys_municipality_init(tmp_path / "kk", "101")
    assert public.municipality == "101" and public.key_id.startswith("m")
    assert (tmp_path / "kk" / "municipality.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "kk").stat().st_mode & 0o777 == 0o700
    assert MunicipalKey.load(tmp_path / "kk").public == public
    with pytest.raises(KeyStoreError, match="refusing to overwrite"):
        keys_municipality_init(tmp_path / "kk", "101")
    (tmp_path / "kk" / "municipality.key").chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        MunicipalKey.load(tmp_path / "kk")
    with pytest.raises(KeyStoreError, match="not a kommunekode"):
        keys_municipality_init(tmp_path / "x", "999")


def test_the_station_holds_public_keys_and_keys_show_lists_them(tmp_path: Path) -> None:
    store = KeyStore.init(tmp_path / "keys")
    first = keys_municipality_init(tmp_path / "kk", "101")
    keys_municipality_add(store.directory, tmp_path / "kk" / "municipality.pub")
    keys_municipality_add(store.directory, tmp_path / "kk" / "municipality.pub")  # the same key again: fine
    shown = keys_show(store.directory)
    assert shown["municipalities"] == {"101": {"key_id": first.key_id,
                                               "public_key": base64.b64encode(first.public_key).decode()}}
    keys_municipality_init(tmp_path / "kk2", "101")
    with pytest.raises(KeyStoreError, match="--force"):
        keys_municipality_add(store.directory, tmp_path / "kk2" / "municipality.pub")
    keys_municipality_add(store.directory, tmp_path / "kk2" / "municipality.pub", force=True)
    station = keys_export(store.directory, tmp_path / "station", "station")
    assert station.municipal_public_keys == KeyStore.load(store.directory).municipal_public_keys
    hub = keys_export(store.directory, tmp_path / "hub", "hub")
    assert hub.municipal_public_keys == {}  # the hub seals nothing for municipalities


# ---------------------------------------------------------------------------------- sealing
def _sealer(tmp_path: Path, code: str = "101") -> tuple[MunicipalSealer, MunicipalKey]:
    keys_municipality_init(tmp_path / code, code)
    key = MunicipalKey.load(tmp_path / code)
    return MunicipalSealer({code: key.public}, WEEK), key


def _texts(refs: list[str], ages: list[int]) -> pl.Series:
    frame = pl.DataFrame({"ref": refs, "age": ages})
    return frame.select(plaintext({"ref": pl.col("ref"), "age": pl.col("age")})).to_series()


def test_equal_values_never_seal_alike_and_every_value_has_one_size(tmp_path: Path) -> None:
    sealer, key = _sealer(tmp_path)
    refs = pl.Series(["101.aaaa", "101.bbbb", "101.c"])
    sealed = sealer.seal(pl.Series(["101"] * 3), _texts(refs.to_list(), [9, 9, 17]), "child")
    assert sealed.bin.size().to_list() == [16 + PLAINTEXT_BYTES["child"]] * 3  # the ages' and refs' lengths do not show
    assert sealed.n_unique() == 3
    again, _ = MunicipalSealer({"101": key.public}, WEEK), None
    assert again.seal(pl.Series(["101"] * 3), _texts(refs.to_list(), [9, 9, 17]), "child").to_list() != \
        sealed.to_list()  # another extract of the same values: other data key, unrelated blobs
    data_key = open_data_key(sealer.sealed_keys()["101"], key, WEEK)
    opened = open_details(sealed, data_key, "child", refs)
    assert [v["age"] for v in opened.to_list()] == [9, 9, 17]


def test_only_the_receiving_municipality_opens(tmp_path: Path) -> None:
    sealer, key = _sealer(tmp_path)
    sealer.seal(pl.Series(["101"]), _texts(["101.a"], [4]), "child")
    sealed_key = sealer.sealed_keys()["101"]
    other = MunicipalKey.load(tmp_path / "461") if keys_municipality_init(tmp_path / "461", "461") else None
    assert other is not None
    with pytest.raises(VaultError, match="municipality 101"):
        open_data_key(sealed_key, other, WEEK)
    # another municipality that pretends to be 101 still cannot: the blob is sealed to 101's key
    with pytest.raises(VaultError, match="does not authenticate"):
        vault.open_sealed_with(base64.b64decode(sealed_key["sealed"]), other.private_key)
    # the hub, and even the key custodian, hold no municipal private key
    custodian = KeyStore.init(tmp_path / "custodian")
    with pytest.raises(VaultError):
        vault.open_sealed(base64.b64decode(sealed_key["sealed"]), custodian)
    keys_municipality_init(tmp_path / "101b", "101")  # a second key pair of 101 is not the one sealed to
    with pytest.raises(VaultError, match="sealed to key"):
        open_data_key(sealed_key, MunicipalKey.load(tmp_path / "101b"), WEEK)
    with pytest.raises(VaultError, match="does not authenticate"):  # another week's key is bound to its week
        open_data_key(sealed_key, key, "2026-W48")


def test_a_changed_or_moved_value_is_refused(tmp_path: Path) -> None:
    sealer, key = _sealer(tmp_path)
    refs = pl.Series(["101.a", "101.b"])
    sealed = sealer.seal(pl.Series(["101", "101"]), _texts(refs.to_list(), [3, 12]), "child")
    data_key = open_data_key(sealer.sealed_keys()["101"], key, WEEK)
    flipped = bytearray(sealed[0])
    flipped[20] ^= 1
    with pytest.raises(VaultError, match="do not authenticate"):
        open_details(pl.Series([bytes(flipped), sealed[1]], dtype=pl.Binary), data_key, "child", refs)
    with pytest.raises(VaultError, match="another row"):
        open_details(sealed.reverse(), data_key, "child", refs)
    with pytest.raises(VaultError, match="wrong length"):  # a child's value offered as an event's
        open_details(sealed, data_key, "event", refs)
    longer = sealer.seal(pl.Series(["101", "101"]), _texts(refs.to_list(), [3, 12]), "signal")
    with pytest.raises(VaultError, match="do not authenticate"):  # a signal row's value offered as a child's size
        open_details(longer.bin.slice(0, 16 + PLAINTEXT_BYTES["child"]), data_key, "child", refs)


def test_a_value_is_padded_to_its_size_in_bytes_not_characters(tmp_path: Path) -> None:
    """A label with æ, ø and å has more UTF-8 bytes than characters: the sealed size stays one."""
    sealer, key = _sealer(tmp_path)
    refs = pl.Series(["101.a", "101.b"])
    texts = pl.DataFrame({"ref": refs, "label": ["Vold", "Trusler mod børn på skolen æøå"]}).select(
        plaintext({"ref": pl.col("ref"), "label": pl.col("label")})).to_series()
    sealed = sealer.seal(pl.Series(["101", "101"]), texts, "event")
    assert sealed.bin.size().to_list() == [16 + PLAINTEXT_BYTES["event"]] * 2
    opened = open_details(sealed, open_data_key(sealer.sealed_keys()["101"], key, WEEK), "event", refs)
    assert opened.struct.field("label").to_list() == ["Vold", "Trusler mod børn på skolen æøå"]
    with pytest.raises(ValueError, match="longer"):
        sealer.seal(pl.Series(["101"]), pl.Series(["x" * (PLAINTEXT_BYTES["event"] + 1)]), "event")


# ------------------------------------------------------------------------------ end to end
@pytest.fixture
def sealed_run(scenario: Path, catalogue_file: Path, tmp_path: Path) -> dict[str, Path]:
    """The hand-made scenario through station and hub, with key pairs of 101 and 461 at the station."""
    store = KeyStore.init(tmp_path / "keys")
    for code in ("101", "461", "851"):
        keys_municipality_init(tmp_path / f"m{code}", code)
    for code in ("101", "461"):
        keys_municipality_add(store.directory, tmp_path / f"m{code}" / "municipality.pub")
    keys_export(store.directory, tmp_path / "hub-keys", "hub")
    pseudonymise(scenario, tmp_path / "pseudo", store.directory, week=WEEK, catalogue=catalogue_file)
    run(tmp_path / "pseudo", WEEK, tmp_path / "out", tmp_path / "state", tmp_path / "hub-keys",
        catalogue=catalogue_file, new_state=True)
    return {"raw": scenario, "out": tmp_path / "out" / WEEK, "root": tmp_path, "catalogue": catalogue_file}


def _local(column: str) -> pl.Expr:
    return pl.col(column).dt.to_string("%Y-%m-%dT%H:%M:%S%:z")


def test_open_fills_in_the_exact_values_and_the_hub_never_had_them(sealed_run: dict[str, Path]) -> None:
    out, root = sealed_run["out"], sealed_run["root"]
    drafts = json.loads((out / "101" / "drafts.json").read_text(encoding="utf-8"))
    assert all("age" not in d["child"] and d["sealed"]["child"] and d["reason"] is None for d in drafts)
    assert all(set(s) == {"event_ref", "person", "new", "in_week", "sealed"}
               and len(base64.b64decode(s["sealed"]["event"])) == 16 + PLAINTEXT_BYTES["event"]
               and len(base64.b64decode(s["sealed"]["signal"])) == 16 + PLAINTEXT_BYTES["signal"]
               for d in drafts for s in d["signals"])
    assert all(p["link"] is None for d in drafts for p in d["persons"])
    sealed_page = (out / "101" / "drafts.html").read_text(encoding="utf-8")
    assert "forseglet til kommunen" in sealed_page and "socialsearch open" in sealed_page
    # the page as it arrives names no role, tie, code, category or police district
    words = [*ROLE_DA.values(), "Barnets far", "Barnets mor", "1100", "2100",
             *(c.label for c in load_catalogue(sealed_run["catalogue"]).categories),
             *(d.name for d in geography().districts)]
    assert not [w for w in words if w in sealed_page]
    report = open_drafts(out / "101", root / "m101")
    assert (report["drafts"], report["opened"], report["without_exact_values"]) == (1, 1, 0)
    [opened] = json.loads((out / "101" / "drafts.opened.json").read_text(encoding="utf-8"))
    assert opened["child"]["age"] == 11  # A, worked out by hand in tests/test_e2e.py
    raw = read_raw(sealed_run["raw"]).incidents.select(
        "district", _local("occurred_at"), _local("registered_at"), "municipality")
    shown = {(s["district"], s["occurred_at"], s["registered_at"], s["municipality"]) for s in opened["signals"]}
    assert len(shown) == 4 and shown <= set(raw.rows())
    assert [s["registered_at"] for s in opened["signals"]] == sorted(s["registered_at"] for s in opened["signals"])
    page = (out / "101" / "drafts.opened.html").read_text(encoding="utf-8")
    assert "11 år" in page and " kl. " in page and "forseglet til kommunen" not in page
    assert "mistænkt" in page and "Barnets far" in page
    [d] = json.loads((out / "461" / "drafts.json").read_text(encoding="utf-8"))
    open_drafts(out / "461", root / "m461", root / "elsewhere")
    assert json.loads((root / "elsewhere" / "drafts.opened.json").read_text(encoding="utf-8"))[0]["child"]["age"] == 7


def test_another_municipality_cannot_open_and_a_refused_open_writes_nothing(sealed_run: dict[str, Path]) -> None:
    out, root = sealed_run["out"], sealed_run["root"]
    with pytest.raises(VaultError, match="municipality 101"):
        open_drafts(out / "101", root / "m461")
    copy = root / "copy"
    shutil.copytree(out / "101", copy)
    docs = json.loads((copy / "drafts.json").read_text(encoding="utf-8"))
    signals = docs[0]["signals"]
    first = next(s for s in signals if s["event_ref"] != signals[0]["event_ref"])
    signals[0]["sealed"], first["sealed"] = first["sealed"], signals[0]["sealed"]  # two events swapped
    (copy / "drafts.json").write_text(json.dumps(docs), encoding="utf-8")
    with pytest.raises(VaultError, match="another row"):
        open_drafts(copy, root / "m101")
    assert not (copy / "drafts.opened.json").exists() and not (copy / "drafts.opened.html").exists()


def test_a_municipality_without_a_key_gets_its_drafts_and_is_told(scenario: Path, catalogue_file: Path,
                                                                  tmp_path: Path) -> None:
    store = KeyStore.init(tmp_path / "keys")
    keys_municipality_init(tmp_path / "m101", "101")
    keys_municipality_add(store.directory, tmp_path / "m101" / "municipality.pub")
    run(scenario, WEEK, tmp_path / "out", tmp_path / "state", store.directory, catalogue=catalogue_file,
        new_state=True)
    [d] = json.loads((tmp_path / "out" / WEEK / "461" / "drafts.json").read_text(encoding="utf-8"))
    assert d["sealed"] is None and all(s["sealed"] is None for s in d["signals"])
    page = (tmp_path / "out" / WEEK / "461" / "drafts.html").read_text(encoding="utf-8")
    assert "kommunen har ingen nøgle hos politiet" in page
    keys_municipality_init(tmp_path / "m461", "461")
    report = open_drafts(tmp_path / "out" / WEEK / "461", tmp_path / "m461")
    assert (report["opened"], report["without_exact_values"]) == (0, 1)
