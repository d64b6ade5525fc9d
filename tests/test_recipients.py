"""Recipient-scoped pseudonyms (socialsearch.crypto.recipients): one value per municipality, stable."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from socialsearch.crypto.keys import KeyStore, keys_export
from socialsearch.crypto.recipients import recipient_key, scope_pseudonyms

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
