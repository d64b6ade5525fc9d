"""``socialsearch open``: the municipality opens the exact values sealed for it in its drafts.

The drafts a municipality receives show the child, the persons and the events by pseudonym,
each event as new or known and registered in the week or earlier: that is all the hub ever
held in clear. The station sealed the rest for the municipality
(:mod:`socialsearch.crypto.municipal`): the child's age and why it was drafted (rule, score,
threshold, immediate categories); each event's date-times, place, week, police district and
codes; each person's roles and links to the child. With its own key pair the municipality opens
them here and gets its page and JSON as the station's search made them::

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
from .hub.drafts import build_documents, render_html

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


_CHILD = pl.Struct({"ref": pl.String, "age": pl.Int64, "rule": pl.String, "score": pl.Int64,
                    "threshold": pl.Int64, "immediate_categories": pl.List(pl.String)})
_ENTRY = pl.Struct({"role": pl.String, "link": pl.String, "kind": pl.String, "code": pl.String,
                    "resolved_by": pl.String, "match_probability": pl.Float64})
_SIGNAL = pl.Struct({"ref": pl.String, "signals": pl.List(_ENTRY)})
_CODE = pl.Struct({"kind": pl.String, "code": pl.String, "label": pl.String, "category": pl.String,
                   "category_label": pl.String, "weight": pl.Int64})
_EVENT = pl.Struct({"ref": pl.String, "occurred_at": pl.String, "registered_at": pl.String,
                    "municipality": pl.String, "registered_week": pl.String, "district": pl.String,
                    "codes": pl.List(_CODE)})


def _opened_frames(docs: list[dict[str, Any]], data_key: bytes) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """The drafts and signals of one week's sealed documents, opened: the frames the search
    made at the station (:data:`~socialsearch.hub.search.DRAFT_SCHEMA`, the signals' fields),
    and the immediate categories that made the immediate drafts."""
    children = open_details(_blobs([d["sealed"]["child"] for d in docs]), data_key, "child",
                            pl.Series([d["child"]["pseudonym"] for d in docs], dtype=pl.String), _CHILD)
    rows = [(d["draft_id"], d["child"]["pseudonym"], s["event_ref"], s["person"], bool(s["new"]),
             (s.get("sealed") or {}).get("signal"), (s.get("sealed") or {}).get("event"))
            for d in docs for s in d.get("signals") or []]
    frame = pl.DataFrame(rows, schema={"draft_id": pl.String, "child": pl.String, "event_ref": pl.String,
                                       "person": pl.String, "new": pl.Boolean, "signal": pl.String,
                                       "event": pl.String}, orient="row")
    refs = frame.select(pl.concat_str("child", "event_ref", "person", separator="/")).to_series()
    entries = open_details(_blobs(frame["signal"].to_list()), data_key, "signal", refs, _SIGNAL)
    events = open_details(_blobs(frame["event"].to_list()), data_key, "event", frame["event_ref"], _EVENT)
    if entries.null_count() or events.null_count():
        raise VaultError("a signal of the drafts carries no sealed values: the drafts were changed")
    signals = (
        frame.select("draft_id", "child", "event_ref", "person", "new")
        .with_columns(entries.struct.field("signals").alias("_entry"), events.alias("_event"))
        .explode("_entry").unnest("_entry").unnest("_event")
        .drop("ref").rename({"codes": "_codes"})
    )
    codes = (signals.select("event_ref", "_codes").unique("event_ref").explode("_codes").unnest("_codes"))
    signals = signals.drop("_codes").join(codes, on=["event_ref", "kind", "code"], how="left")
    links = (
        signals.select("draft_id", "person", "link").unique().sort("draft_id", "person", "link")
        .group_by("draft_id", maintain_order=True)
        .agg(pl.struct(pl.col("person").alias("pseudonym"), "link").alias("persons"))
    )
    drafts = (
        pl.DataFrame({"draft_id": [d["draft_id"] for d in docs], "week": [str(d["week"]) for d in docs],
                      "municipality": [d["municipality"] for d in docs],
                      "previous_drafts": [list(d.get("previous_drafts") or []) for d in docs]},
                     schema={"draft_id": pl.String, "week": pl.String, "municipality": pl.String,
                             "previous_drafts": pl.List(pl.String)})
        .with_columns(*(children.struct.field(name) for name in ("age", "rule", "score", "threshold")),
                      pl.Series("child", [d["child"]["pseudonym"] for d in docs], dtype=pl.String))
        .join(links, on="draft_id", how="left")
    )
    immediate = sorted(set(children.struct.field("immediate_categories").explode().drop_nulls().to_list()))
    return drafts, signals, immediate


def _open_week(docs: list[dict[str, Any]], data_key: bytes) -> list[dict[str, Any]]:
    """One week's sealed documents as the station's drafts, opened (see :func:`open_drafts`)."""
    drafts, signals, immediate = _opened_frames(docs, data_key)
    earlier = {e["draft_id"]: {"week": e.get("week"), "decision": e.get("decision")}
               for d in docs for e in d.get("earlier_drafts") or [] if "decision" in e}
    built = build_documents(signals, drafts, earlier=earlier, immediate_categories=immediate)
    return [doc for municipality in sorted(built) for doc in built[municipality]]


def open_drafts(drafts: str | Path, keys: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Open the sealed values of one municipality's drafts with its key pair ``keys``.

    Writes ``drafts.opened.json`` (the drafts as the station's search made them: the child's
    age, why it was drafted (rule, score, threshold, points, immediate categories), every
    signal's event (week, date-times, place, police district), code, category, weight, role and
    link, and the persons' links) and ``drafts.opened.html`` to ``out`` (default: the ``drafts``
    folder). Returns counts and the two paths.

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
    opened: dict[str, dict[str, Any]] = {}
    for week in sorted({str(d["week"]) for d in sealed}):  # one week per folder: one data key, opened once
        mine = [d for d in sealed if str(d["week"]) == week]
        data_key = open_data_key(mine[0]["sealed"]["key"], key, week)
        opened.update((d["draft_id"], d) for d in _open_week(mine, data_key))
    docs = [opened.get(d["draft_id"], d) for d in docs]
    for doc in docs:
        doc.pop("sealed", None)
        doc["signals"] = sorted(doc.get("signals") or [],
                                key=lambda s: tuple(str(s.get(k) or "") for k in _SIGNAL_ORDER))
    target = Path(out) if out is not None else folder
    week = str(docs[0]["week"]) if docs else folder.parent.name
    json_path, html_path = target / "drafts.opened.json", target / "drafts.opened.html"
    write_json_atomic(json_path, docs, indent=2, sort_keys=True)
    write_text_atomic(html_path, render_html(key.municipality, docs, week=week))
    return {"municipality": key.municipality, "drafts": len(docs), "opened": len(sealed),
            "without_exact_values": len(docs) - len(sealed), "json": str(json_path), "html": str(html_path)}
