"""``socialsearch open``: the municipality opens the exact values sealed for it in its drafts.

The drafts a municipality receives show each event by its ISO week of registration and the
child without an age: that is all the hub ever held. The station sealed the exact values (the
child's age; each event's ``occurred_at``, ``registered_at`` and municipality) for the
municipality (:mod:`socialsearch.crypto.municipal`); with its own key pair the municipality
opens them here and gets its page and JSON with the values filled in::

    socialsearch open --drafts OUT/2026-W47/101 --keys ./municipality-101-keys

writes ``drafts.opened.json`` and ``drafts.opened.html`` (to ``--out``, default the drafts
folder). Every value must authenticate and name the child or event it is shown with, or
nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from ._atomic import write_json_atomic, write_text_atomic
from .crypto.municipal import MunicipalKey, open_data_key, open_details
from .errors import UsageError, VaultError
from .hub.drafts import render_html

__all__ = ["open_drafts"]

_SIGNAL_ORDER = ("registered_at", "event_ref", "code", "person", "link", "role", "kind")


def _read(folder: Path) -> list[dict[str, Any]]:
    path = folder / "drafts.json"
    try:
        docs = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist: --drafts names a municipality's folder OUT/<week>/<kommunekode>") \
            from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} cannot be read as drafts ({type(exc).__name__})") from None
    if not isinstance(docs, list) or not all(isinstance(d, dict) and "draft_id" in d for d in docs):
        raise UsageError(f"{path} is not a list of drafts written by `socialsearch run`")
    return docs


def _blobs(values: list[str | None]) -> pl.Series:
    """base64 text → Binary (null stays null); :class:`VaultError` for text that is not base64."""
    try:
        return pl.Series(values, dtype=pl.String).str.decode("base64")
    except pl.exceptions.PolarsError:
        raise VaultError("a sealed value is not base64: the drafts were changed") from None


def open_drafts(drafts: str | Path, keys: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Open the sealed exact values of one municipality's drafts with its key pair ``keys``.

    Writes ``drafts.opened.json`` (the drafts with ``child.age`` and each signal's
    ``occurred_at``, ``registered_at`` and ``municipality``) and ``drafts.opened.html`` to
    ``out`` (default: the ``drafts`` folder). Returns counts and the two paths.

    Raises
    ------
    VaultError
        The key is another municipality's or another key pair's; a value was changed, moved to
        another row, or belongs to another week. Nothing is written then.
    """
    folder = Path(drafts)
    key = MunicipalKey.load(keys)
    docs = _read(folder)
    others = sorted({str(d.get("municipality")) for d in docs} - {key.municipality})
    if others:
        raise VaultError(f"{folder} holds drafts for municipality {', '.join(others)}, and {keys} is the key of "
                         f"municipality {key.municipality}")
    sealed = [d for d in docs if d.get("sealed")]
    keys_by_week: dict[str, bytes] = {}
    for doc in sealed:  # one week per folder: one data key, opened once
        week = str(doc["week"])
        if week not in keys_by_week:
            keys_by_week[week] = open_data_key(doc["sealed"]["key"], key, week)
    for week, data_key in keys_by_week.items():
        mine = [d for d in sealed if str(d["week"]) == week]
        ages = open_details(_blobs([d["sealed"].get("child") for d in mine]), data_key, "child",
                            pl.Series([d["child"]["pseudonym"] for d in mine], dtype=pl.String))
        for doc, value in zip(mine, ages.to_list(), strict=True):
            doc["child"]["age"] = None if value is None else value.get("age")
        signals = [s for d in mine for s in d.get("signals") or []]
        events = open_details(_blobs([s.get("sealed") for s in signals]), data_key, "event",
                              pl.Series([s["event_ref"] for s in signals], dtype=pl.String))
        for signal, value in zip(signals, events.to_list(), strict=True):
            if value is not None:
                signal.update(occurred_at=value["occurred_at"], registered_at=value["registered_at"],
                              municipality=value["municipality"])
    for doc in docs:
        doc.pop("sealed", None)
        for signal in doc.get("signals") or []:
            signal.pop("sealed", None)
        doc["signals"] = sorted(doc.get("signals") or [],
                                key=lambda s: tuple(str(s.get(k) or "") for k in _SIGNAL_ORDER))
    target = Path(out) if out is not None else folder
    week = str(docs[0]["week"]) if docs else folder.parent.name
    json_path, html_path = target / "drafts.opened.json", target / "drafts.opened.html"
    write_json_atomic(json_path, docs, indent=2, sort_keys=True)
    write_text_atomic(html_path, render_html(key.municipality, docs, week=week))
    return {"municipality": key.municipality, "drafts": len(docs), "opened": len(sealed),
            "without_exact_values": len(docs) - len(sealed), "json": str(json_path), "html": str(html_path)}
