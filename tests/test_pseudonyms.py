"""Keyed pseudonyms: RFC 4231 vectors, golden values, properties, thread counts."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import RFC4231

from socialsearch.crypto import _native, pseudonyms
from socialsearch.crypto.keys import KeyStore, keys_export, keys_rotate, pseudonym_key_id
from socialsearch.crypto.pseudonyms import Pseudonymiser, hmac_sha256, hmac_unique, verify_mac
from socialsearch.errors import KeyStoreError, UsageError

FIXED_KID = "k00c0ffee"
FIXED_SECRET = bytes(range(32))


def fixed_keystore(directory: Path) -> KeyStore:
    """A keystore whose only key is ``FIXED_KID`` with secret 00 01 02 ... 1f."""
    KeyStore.init(directory)
    path = directory / "keyset.json"
    data = json.loads(path.read_text())
    data["primary"] = FIXED_KID
    data["keys"][0].update(id=FIXED_KID, secret=base64.b64encode(FIXED_SECRET).decode())
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return KeyStore.load(directory)


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return fixed_keystore(tmp_path_factory.mktemp("fixed") / "keys")


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return KeyStore.init(tmp_path_factory.mktemp("other") / "keys")


# ---------------------------------------------------------------------------- RFC 4231


@pytest.mark.parametrize(("key", "data", "expected", "size"), RFC4231)
def test_rfc4231_known_answers(key: bytes, data: bytes, expected: str, size: int) -> None:
    assert hmac_sha256(key, data)[:size].hex() == expected
    out = hmac_unique(pl.Series([data, None, data], dtype=pl.Binary), key)
    assert out.dtype == pl.Binary
    assert out[0][:size].hex() == expected and out[2] == out[0] and out[1] is None
    # the native kernel itself, on one and on two threads
    for threads in (1, 2):
        out = pl.Series(_native.hmac_sha256(key, pl.Series([data], dtype=pl.Binary), threads=threads))
        assert out[0][:size].hex() == expected


def test_hmac_unique_strings_and_multibyte() -> None:
    values = pl.Series("v", ["a", "æøå", None, "a", ""])
    out = hmac_unique(values, b"k" * 32)
    assert out.name == "v"
    assert out.to_list() == [
        hmac.digest(b"k" * 32, v.encode(), "sha256") if v is not None else None
        for v in values.to_list()
    ]


def test_thread_counts_agree() -> None:
    values = pl.Series([f"{i:010d}" for i in range(20_000)] + ["æ" * 7])
    key = b"\x01" * 32
    serial = hmac_unique(values, key, workers=1)
    for workers in (2, 3):
        assert hmac_unique(values, key, workers=workers).to_list() == serial.to_list()
    assert serial[5] == hmac.digest(key, b"0000000005", "sha256")
    assert serial[-1] == hmac.digest(key, ("æ" * 7).encode(), "sha256")


def test_verify_mac() -> None:
    mac = hmac_sha256(b"k", b"m")
    assert verify_mac(mac, hmac_sha256(b"k", b"m"))
    assert not verify_mac(mac, hmac_sha256(b"k", b"n"))


# ----------------------------------------------------------------------------- golden
def test_golden_pseudonyms(fixed: KeyStore) -> None:
    # computed once with the hmac module: HKDF-SHA256(secret, info=b"socialsearch/v1/person")
    # as key, HMAC-SHA256 of the 10 digits, base64url of the first 16 bytes, no padding
    p = Pseudonymiser(fixed)
    assert p.key_id == FIXED_KID
    assert p.persons(pl.Series(["010190-1234", "3112993999", None, "999999-9999"])).to_list() == [
        "k00c0ffee.PbWCHNyX5WygOEqlzQOMkQ",
        "k00c0ffee.ovIoUO8ezgPf8SpjYgwpVw",
        None,
        None,
    ]
    # event: MAC of "3:KBH:2026-0001" under the "event" sub-key
    assert p.events(pl.Series(["KBH"]), pl.Series(["2026-0001"])).to_list() == [
        "e.k00c0ffee.FCqqTIw0nQ-Jz-eBwFo0RQ"
    ]
    # draft: first 8 bytes (hex) of the MAC of "2026-W47:<child pseudonym>" under "draft"
    assert p.draft_ids(pl.Series(["k00c0ffee.PbWCHNyX5WygOEqlzQOMkQ"]), "2026-W47").to_list() == [
        "D2026-W47-k00c0ffee-7e534190a352c4b4"
    ]


def test_golden_by_hand(fixed: KeyStore) -> None:
    sub = fixed.subkey("person")
    mac = hmac.digest(sub, b"0101901234", "sha256")
    expected = FIXED_KID + "." + base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")
    assert Pseudonymiser(fixed).persons(pl.Series(["0101901234"])).item() == expected


def test_hub_makes_draft_ids_only(fixed: KeyStore, tmp_path: Path) -> None:
    hub = KeyStore.load(keys_export(fixed.directory, tmp_path / "hub", "hub").directory)
    children = pl.Series(["k00c0ffee.PbWCHNyX5WygOEqlzQOMkQ", None])
    assert Pseudonymiser(hub).draft_ids(children, "2026-W47").to_list() == [
        "D2026-W47-k00c0ffee-7e534190a352c4b4", None,
    ]
    with pytest.raises(KeyStoreError, match="no pseudonymisation secret"):
        Pseudonymiser(hub).persons(pl.Series(["0101901234"]))


def test_draft_ids_depend_on_week_and_child(fixed: KeyStore) -> None:
    p = Pseudonymiser(fixed)
    kids = pl.Series(["k00c0ffee.a", "k00c0ffee.b", "k00c0ffee.a"])
    w47, w48 = p.draft_ids(kids, "2026-W47").to_list(), p.draft_ids(kids, "2026-W48").to_list()
    assert w47[0] == w47[2] != w47[1]
    assert w47[0] != w48[0]
    with pytest.raises(UsageError):
        p.draft_ids(kids, "2026-47")


def test_events_unambiguous_and_null(fixed: KeyStore) -> None:
    p = Pseudonymiser(fixed)
    refs = p.events(pl.Series(["AB", "A", None, "AB"]), pl.Series(["C", "BC", "x", None])).to_list()
    assert refs[0] != refs[1]  # ("AB","C") vs ("A","BC")
    assert refs[2] is None and refs[3] is None
    assert all(r.startswith("e.k00c0ffee.") and len(r) == 34 for r in refs[:2])


def test_rotation_changes_pseudonyms_and_key_id(tmp_path: Path) -> None:
    store = KeyStore.init(tmp_path / "k")
    old = store.primary_key_id
    before = Pseudonymiser(store).persons(pl.Series(["0101901234"])).item()
    new = next(k for k in keys_rotate(store.directory).key_ids if k != old)
    store = keys_rotate(store.directory, promote=new)
    after = Pseudonymiser(store).persons(pl.Series(["0101901234"])).item()
    again_old = Pseudonymiser(store, old).persons(pl.Series(["0101901234"])).item()
    assert before == again_old != after
    ids = pl.DataFrame({"p": [before, after]}).select(pseudonym_key_id("p"))["p"].to_list()
    assert ids == [old, new]
    with pytest.raises(KeyStoreError):
        Pseudonymiser(store, "k12345678")


# ------------------------------------------------------------------------- properties
@st.composite
def cprs(draw: st.DrawFn) -> str:
    day = draw(st.dates(date(1937, 1, 1), date(1999, 12, 31)))
    return f"{day:%d%m%y}{draw(st.integers(0, 3))}{draw(st.integers(0, 999)):03d}"


@settings(max_examples=25, deadline=None)
@given(st.lists(cprs(), min_size=1, max_size=40))
def test_properties(fixed: KeyStore, other: KeyStore, numbers: list[str]) -> None:
    dashed = [f"{c[:6]}-{c[6:]}" for c in numbers]
    p, q = Pseudonymiser(fixed), Pseudonymiser(other)
    mine = p.persons(pl.Series(numbers)).to_list()
    assert p.persons(pl.Series(dashed)).to_list() == mine  # dashed == undashed
    assert p.persons(pl.Series(numbers)).to_list() == mine  # same key → same pseudonym
    theirs = q.persons(pl.Series(numbers)).to_list()
    for number, a, b in zip(numbers, mine, theirs, strict=True):
        assert a != b  # other key → other pseudonym
        assert number not in a and number not in b  # never the CPR digits
    assert len(set(mine)) == len(set(numbers))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=30))
def test_encodings_match_stdlib(fixed: KeyStore, texts: list[str]) -> None:
    """Each pseudonym is prefix + base64url (16 bytes) or hex (8 bytes) of ``hmac.digest``."""
    p = Pseudonymiser(fixed)
    series = pl.Series(texts)
    event_key, draft_key = fixed.subkey("event"), fixed.subkey("draft")
    refs = p.events(series, series).to_list()
    drafts = p.draft_ids(series, "2026-W47").to_list()
    for text, ref, draft in zip(texts, refs, drafts, strict=True):
        district = text.encode()
        mac = hmac.digest(event_key, str(len(district)).encode() + b":" + district + b":" + district, "sha256")
        assert ref == f"e.{FIXED_KID}." + base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")
        mac = hmac.digest(draft_key, b"2026-W47:" + text.encode(), "sha256")
        assert draft == f"D2026-W47-{FIXED_KID}-" + mac[:8].hex()


def test_persons_repeats_nulls_and_spellings(fixed: KeyStore) -> None:
    p = Pseudonymiser(fixed)
    a = "k00c0ffee.PbWCHNyX5WygOEqlzQOMkQ"  # 0101901234 (golden)
    b = "k00c0ffee.ovIoUO8ezgPf8SpjYgwpVw"  # 3112993999
    values = pl.Series("cpr", ["0101901234", None, "3112993999", "010190-1234", "bad", " 0101901234", "311299-3999"])
    assert p.persons(values).to_list() == [a, None, b, a, None, a, b]
    assert p.persons(values).name == "cpr"
    assert p.persons(pl.Series([], dtype=pl.String)).to_list() == []
    assert p.persons(pl.Series([None, None], dtype=pl.String)).to_list() == [None, None]


def test_threads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALSEARCH_THREADS", "3")
    assert pseudonyms.default_threads() == 3
    monkeypatch.setenv("SOCIALSEARCH_THREADS", "0")
    assert pseudonyms.default_threads() == 1
    monkeypatch.setenv("SOCIALSEARCH_THREADS", "many")
    with pytest.raises(UsageError, match="SOCIALSEARCH_THREADS"):
        hmac_unique(pl.Series(["a"]), b"k")
    monkeypatch.delenv("SOCIALSEARCH_THREADS")
    assert pseudonyms.default_threads() >= 1


def test_distinct_normalised_fast_path_gives_the_same_pseudonyms(tmp_path):
    import polars as pl

    from socialsearch.crypto.keys import KeyStore
    from socialsearch.crypto.pseudonyms import Pseudonymiser

    p = Pseudonymiser(KeyStore.init(tmp_path / "k"))
    raw = pl.Series("cpr", ["010190-1234", "0101901234", "3112991234", None, "bad"])
    normalised = pl.Series("cpr", ["0101901234", "3112991234"])
    slow = p.persons(raw)
    fast = p.persons_distinct_normalised(normalised)
    assert fast.to_list() == [slow[0], slow[2]]
    assert slow[0] == slow[1]
