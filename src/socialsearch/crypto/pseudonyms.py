"""Keyed pseudonyms: HMAC-SHA256 once per distinct value, joined back, compact encodings.

Never ``pl.Expr.hash``: it is unkeyed (anyone can hash all ~3.7e8 CPR numbers and invert it)
and not stable across Polars versions.

Encodings (``docs/privacy.md``); ``<kid>`` is the key id, ``b64u`` base64url without padding:

============  ===========================================  =================================
what          format                                       MAC input (HMAC-SHA256)
============  ===========================================  =================================
person        ``<kid>.<b64u(first 16 bytes)>``  (32 chars)  normalised CPR, 10 ASCII digits
event         ``e.<kid>.<b64u(first 16 bytes)>`` (34)       ``<len(district)>:<district>:<id>``
draft id      ``D<week>-<kid>-<hex(first 8 bytes)>`` (35)   ``<week>:<child pseudonym>``
============  ===========================================  =================================

Each uses its own HKDF sub-key of the same keyset key (``person``, ``event``, ``draft``), so a
hub that holds only the ``draft`` sub-key can make draft ids but no person pseudonyms.

Speed: each *distinct* value is hashed once, by the native kernel ``socialsearch.crypto._native``
(Rust: RFC 2104 HMAC-SHA256 with the SHA-256 states after the key's inner and outer pad blocks
computed once, so a CPR number costs two SHA-256 compressions, SHA-NI where the CPU has it).
The kernel reads the Polars column in place through the Arrow PyCapsule interface, works on
``SOCIALSEARCH_THREADS`` threads (default: every usable CPU) without the GIL, and writes the
finished pseudonym text, which Polars takes over without a copy: Python does no per-value
work. See ``docs/performance-pseudonyms.md``.
"""

from __future__ import annotations

import hmac
import os
import re

import polars as pl

from ..errors import UsageError
from ..identifiers import normalise_cpr
from . import _native
from .keys import KeyStore

__all__ = [
    "Pseudonymiser",
    "default_threads",
    "hmac_sha256",
    "hmac_unique",
    "verify_mac",
]

_WEEK = re.compile(r"^\d{4}-W\d{2}$")


# ------------------------------------------------------------------------------ HMAC core
def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of one message (the scalar reference; :func:`hmac_unique` is the bulk path)."""
    return hmac.digest(key, message, "sha256")


def verify_mac(expected: bytes, actual: bytes) -> bool:
    """Compare two MACs in constant time (never with ``==``)."""
    return hmac.compare_digest(expected, actual)


def default_threads() -> int:
    """Threads of the native kernels: ``SOCIALSEARCH_THREADS``, else every usable CPU."""
    env = os.environ.get("SOCIALSEARCH_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise UsageError(f"SOCIALSEARCH_THREADS={env!r}: expected a whole number of threads") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _threads(workers: int | None) -> int:
    return default_threads() if workers is None else max(1, int(workers))


def _macs(values: pl.Series, key: bytes, workers: int | None, prefix: bytes = b"", encoding: str = "raw") -> pl.Series:
    """The native kernel over a String or Binary column: ``prefix`` + encoded HMAC per value.

    ``encoding`` is ``"raw"`` (32 bytes, Binary), ``"base64url16"`` (base64url of the first
    16 bytes, String) or ``"hex8"`` (hex of the first 8 bytes, String). Nulls stay null.
    """
    if values.dtype not in (pl.String, pl.Binary):
        values = values.cast(pl.String)
    return pl.Series(_native.hmac_sha256(key, values, prefix, encoding, _threads(workers)))


def _distinct(values: pl.Series) -> pl.Series:
    """The distinct non-null values; ``values`` itself when it has no nulls and no repeats.

    Returning the very same object lets :func:`_join_back` skip the join (an identity table
    of distinct numbers is the common case at a source station).
    """
    if values.null_count() == 0:
        uniq = values.unique(maintain_order=False)  # order is irrelevant: see the return
        return values if len(uniq) == len(values) else uniq
    return values.drop_nulls().unique(maintain_order=False)


def _join_back(values: pl.Series, uniq: pl.Series, encoded: pl.Series) -> pl.Series:
    """Map each of ``values`` to the ``encoded`` of its equal in ``uniq`` (null when none)."""
    if uniq is values:
        return encoded
    table = pl.DataFrame({"v": uniq, "out": encoded})
    joined = values.rename("v").to_frame().join(table, on="v", how="left", maintain_order="left")
    return joined.get_column("out")


def hmac_unique(values: pl.Series, key: bytes, *, workers: int | None = None, prefix: bytes = b"",
                encoding: str = "raw") -> pl.Series:
    """HMAC-SHA256 (``Binary``, 32 bytes) of each value; each distinct value is hashed once.

    Strings are hashed as UTF-8; nulls stay null. ``workers`` is the number of threads
    (default :func:`default_threads`). ``encoding="base64url16"`` or ``"hex8"`` gives text
    instead, ``prefix`` followed by the encoded leading bytes (the pseudonym formats).

    Examples
    --------
    >>> import polars as pl, hmac
    >>> out = hmac_unique(pl.Series(["a", None, "a"]), b"key")
    >>> out[0] == out[2] == hmac.digest(b"key", b"a", "sha256"), out[1]
    (True, None)
    """
    uniq = _distinct(values)
    return _join_back(values, uniq, _macs(uniq, key, workers, prefix, encoding)).rename(values.name)


# ------------------------------------------------------------------------------- the API
class Pseudonymiser:
    """Keyed pseudonyms for persons, events and drafts under one keyset key.

    ``key_id`` defaults to the keystore's primary key. Person and event pseudonyms need a
    keystore with the secret (station or full); draft ids need only the ``draft`` sub-key,
    so a hub keystore can make them.

    Examples
    --------
    >>> import tempfile, pathlib, polars as pl
    >>> from socialsearch.crypto.keys import KeyStore
    >>> ks = KeyStore.init(pathlib.Path(tempfile.mkdtemp()) / "k")
    >>> p = Pseudonymiser(ks)
    >>> a, b, c = p.persons(pl.Series(["010190-1234", "0101901234", "bad"]))
    >>> a == b, a.startswith(ks.primary_key_id + "."), c
    (True, True, None)
    """

    def __init__(self, keystore: KeyStore, key_id: str | None = None, *, workers: int | None = None) -> None:
        """``workers``: threads of the native kernel (default :func:`default_threads`)."""
        self._keystore = keystore
        self._key_id = keystore.primary_key_id if key_id is None else key_id
        keystore.key_status(self._key_id)  # KeyStoreError for an unknown id
        self._workers = workers

    def __repr__(self) -> str:
        return f"Pseudonymiser(key_id={self._key_id!r})"

    @property
    def key_id(self) -> str:
        return self._key_id

    def _encode(
        self, purpose: str, values: pl.Series, prefix: bytes, *, encoding: str = "base64url16", distinct: bool = False
    ) -> pl.Series:
        """``prefix`` + encoded MAC of each distinct value, joined back; ``distinct=True``
        promises that ``values`` has no repeats (skips a pass)."""
        uniq = values if distinct else _distinct(values)
        key = self._keystore.subkey(purpose, self._key_id)
        return _join_back(values, uniq, _macs(uniq, key, self._workers, prefix, encoding))

    def persons(self, cpr: pl.Series) -> pl.Series:
        """Person pseudonyms ``<kid>.<22 chars>`` of CPR numbers (normalised first; invalid → null).

        Each distinct raw spelling is normalised once and each distinct normalised number is
        hashed once, so ``"010190-1234"`` and ``"0101901234"`` get the same pseudonym.
        """
        raw = cpr.cast(pl.String).rename("v")
        spellings = _distinct(raw)
        # normalised numbers as Int64: joining on integers costs half of joining on strings
        number = spellings.to_frame("v").select(normalise_cpr(pl.col("v")).cast(pl.Int64)).to_series()
        numbers = _distinct(number)
        digits = numbers.cast(pl.String).str.zfill(10)
        encoded = self._encode("person", digits, f"{self._key_id}.".encode(), distinct=True)
        per_spelling = _join_back(number, numbers, encoded)
        return _join_back(raw, spellings, per_spelling).rename(cpr.name)

    def persons_distinct_normalised(self, cpr: pl.Series) -> pl.Series:
        """Like :meth:`persons` for values already normalised (``normalise_cpr``), distinct and
        non-null — the identity table of a source station — skipping the de-duplication and
        normalisation passes. The pseudonyms are the same as :meth:`persons` gives."""
        return self._encode("person", cpr.cast(pl.String), f"{self._key_id}.".encode(), distinct=True).rename(
            cpr.name
        )

    def events(self, district: pl.Series, incident_id: pl.Series) -> pl.Series:
        """Event references ``e.<kid>.<22 chars>`` of (district, journal number); null if either is."""
        msg = pl.DataFrame({"d": district.cast(pl.String), "i": incident_id.cast(pl.String)}).select(
            pl.concat_str([pl.col("d").str.len_bytes().cast(pl.String), pl.col("d"), pl.col("i")], separator=":")
        ).to_series()
        return self._encode("event", msg, f"e.{self._key_id}.".encode()).rename("event_ref")

    def draft_ids(self, children: pl.Series, week: str) -> pl.Series:
        """Draft ids ``D<week>-<kid>-<16 hex>``: stable for the same child pseudonym, week and key."""
        week = str(week)
        if not _WEEK.match(week):
            raise UsageError(f"week {week!r}: expected an ISO week such as 2026-W47")
        msg = children.cast(pl.String).to_frame("c").select(
            pl.concat_str([pl.lit(f"{week}:"), pl.col("c")])
        ).to_series()
        return self._encode("draft", msg, f"D{week}-{self._key_id}-".encode(), encoding="hex8").rename(
            "draft_id"
        )
