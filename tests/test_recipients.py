"""Recipient-scoped pseudonyms (socialsearch.crypto.recipients): one value per municipality, stable."""

from __future__ import annotations

import base64
import functools
import hmac
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.crypto.keys import KeyStore, keys_export
from socialsearch.crypto.pseudonyms import hmac_unique
from socialsearch.crypto.recipients import recipient_key, scope_pseudonyms, scoped_frame

PERSONS = pl.List(pl.Struct({"pseudonym": pl.String, "link": pl.String}))


@pytest.fixture
def hub(tmp_path: Path) -> KeyStore:
    KeyStore.init(tmp_path / "keys")
    return keys_export(tmp_path / "keys", tmp_path / "hub", "hub")


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two children in two municipalities with the same father F on the same event E."""
    drafts = pl.DataFrame({
        "draft_id": ["d1", "d2"], "municipality": ["101", "461"], "child": ["kA", "kB"],
        "persons": [[{"pseudonym": "kF", "link": "father"}], [{"pseudonym": "kF", "link": "father"}]],
    }, schema_overrides={"persons": PERSONS})
    signals = pl.DataFrame({
        "draft_id": ["d1", "d2"], "child": ["kA", "kB"], "person": ["kF", "kF"], "event_ref": ["eE", "eE"],
        "municipality": ["851", "851"],  # where the event happened: not the recipient
    })
    return drafts, signals


def test_the_same_father_and_event_look_unrelated_in_two_municipalities(hub: KeyStore) -> None:
    drafts, signals = _frames()
    d, s = scope_pseudonyms(drafts, signals, hub, hub.primary_key_id)
    f101, f461 = (row[0]["pseudonym"] for row in d["persons"])
    assert f101.startswith("101.") and f461.startswith("461.") and f101[4:] != f461[4:]
    assert s["person"].to_list() == [f101, f461]
    e101, e461 = s["event_ref"].to_list()
    assert e101.startswith("101.e.") and e461.startswith("461.e.") and e101[6:] != e461[6:]
    assert d["child"].to_list() == s["child"].to_list()
    assert s["municipality"].to_list() == ["851", "851"]  # the event's own municipality stays
    assert len(f101) == len("101.") + 22


def test_stable_across_runs_and_keystores_of_the_same_key(tmp_path: Path, hub: KeyStore) -> None:
    drafts, signals = _frames()
    first = scope_pseudonyms(drafts, signals, hub, hub.primary_key_id)
    again = scope_pseudonyms(drafts, signals, KeyStore.load(tmp_path / "keys"), hub.primary_key_id)
    assert first[0].equals(again[0]) and first[1].equals(again[1])


def test_other_keys_give_other_values(tmp_path: Path, hub: KeyStore) -> None:
    KeyStore.init(tmp_path / "other")
    other = KeyStore.load(tmp_path / "other")
    assert recipient_key(hub, hub.primary_key_id, "101") != recipient_key(other, other.primary_key_id, "101")
    assert recipient_key(hub, hub.primary_key_id, "101") != recipient_key(hub, hub.primary_key_id, "147")


def test_no_drafts_no_values(hub: KeyStore) -> None:
    drafts, signals = _frames()
    d, s = scope_pseudonyms(drafts.head(0), signals.head(0), hub, hub.primary_key_id)
    assert d.height == 0 and s.height == 0 and d.columns == drafts.columns


def _one_call_per_recipient(values: pl.DataFrame, keystore: KeyStore, key_id: str) -> dict[tuple[str, str, str], str]:
    """The reference: each (municipality, kind) on its own, with the single-key HMAC kernel."""
    out = {}
    for (municipality, kind), group in values.group_by("_to", "kind"):
        prefix = f"{municipality}.e." if kind == "event" else f"{municipality}."
        key = recipient_key(keystore, key_id, str(municipality))
        macs = hmac_unique(group["value"], key, prefix=prefix.encode("ascii"), encoding="base64url16")
        out.update({(str(municipality), str(kind), v): m for v, m in zip(group["value"], macs, strict=True)})
    return out


@functools.cache
def _keystore() -> KeyStore:
    return KeyStore.init(Path(tempfile.mkdtemp()) / "keys")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["101", "147", "461", "851", "999"]), st.sampled_from(["person", "event"]),
                          st.text(min_size=0, max_size=70)), max_size=60, unique=True))
def test_one_native_call_for_every_recipient_equals_one_call_per_recipient(
        rows: list[tuple[str, str, str]]) -> None:
    values = pl.DataFrame(rows, schema={"_to": pl.String, "kind": pl.String, "value": pl.String}, orient="row")
    keystore = _keystore()
    got = scoped_frame(values, keystore, keystore.primary_key_id)
    assert got.columns == [*values.columns, "scoped"] and got.drop("scoped").equals(values)
    expected = _one_call_per_recipient(values, keystore, keystore.primary_key_id)
    assert dict(zip(got.select("_to", "kind", "value").rows(), got["scoped"], strict=True)) == expected


def test_batched_scoping_keeps_nulls_and_checks_against_the_hmac_definition(hub: KeyStore) -> None:
    values = pl.DataFrame({"_to": ["101", "101", "461"], "kind": ["person", "event", "person"],
                           "value": ["kF", None, "kF"]})
    got = scoped_frame(values, hub, hub.primary_key_id)["scoped"].to_list()
    key = recipient_key(hub, hub.primary_key_id, "461")
    mac = base64.urlsafe_b64encode(hmac.digest(key, b"kF", "sha256")[:16]).rstrip(b"=").decode("ascii")
    assert got[1] is None and got[2] == "461." + mac and got[0] != got[2]
