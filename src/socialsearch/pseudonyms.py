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

Speed: Python touches each *distinct* value once, through a pre-keyed SHA-256 state that is
copied per value (RFC 2104 HMAC with the ipad/opad blocks hashed once), which is about 2-3x
``hmac.digest``. Large inputs are split across processes (``hashlib`` releases the GIL only
for inputs of 2 KiB and more, so threads do not help for 10-byte values). Encoding is
vectorised with NumPy and read back into Polars in one call. See
``docs/performance-pseudonyms.md``.
"""

from __future__ import annotations

import binascii
import hmac
import io
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from .errors import UsageError
from .identifiers import normalise_cpr
from .keys import KeyStore

__all__ = [
    "Pseudonymiser",
    "hmac_sha256",
    "hmac_unique",
    "verify_mac",
]

#: fewer distinct values than this are hashed in this process only (a worker costs ~0.1 s)
PARALLEL_THRESHOLD = 300_000
_WEEK = re.compile(r"^\d{4}-W\d{2}$")
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


# ------------------------------------------------------------------------------ HMAC core
def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of one message (the scalar reference; :func:`hmac_unique` is the bulk path)."""
    return hmac.digest(key, message, "sha256")


def verify_mac(expected: bytes, actual: bytes) -> bool:
    """Compare two MACs in constant time (never with ``==``)."""
    return hmac.compare_digest(expected, actual)


# The per-value loop is kept as source text so that exactly the same code runs in this process
# and in worker processes started with ``python -c``: those import only hashlib (no Polars, so
# they start in ~0.1 s) and, unlike multiprocessing's spawn, never re-import the caller's
# ``__main__``.
_WORKER_SOURCE = r'''
import hashlib


def hmac_buffer(key, data, lengths):
    """Concatenated HMAC-SHA256 digests (RFC 2104) of the values packed end to end in data.

    The ipad and opad blocks are hashed once; per value only the two pre-keyed SHA-256
    states are copied, fed and finalised.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    icopy = hashlib.sha256(bytes(b ^ 0x36 for b in block)).copy
    ocopy = hashlib.sha256(bytes(b ^ 0x5C for b in block)).copy
    out = []
    append = out.append
    pos = 0
    for n in lengths:
        a = icopy()
        a.update(data[pos:pos + n])
        pos += n
        b = ocopy()
        b.update(a.digest())
        append(b.digest())
    return b"".join(out)


if __name__ == "__main__":
    import struct
    import sys
    read = sys.stdin.buffer.read
    key_len, count, total = struct.unpack("<IQQ", read(20))
    key = read(key_len)
    lengths = memoryview(read(4 * count)).cast("I")
    sys.stdout.buffer.write(hmac_buffer(key, read(total), lengths))
    sys.stdout.buffer.flush()
'''
_NS: dict[str, Any] = {"__name__": "socialsearch.pseudonyms._worker"}
exec(compile(_WORKER_SOURCE, "<socialsearch.pseudonyms worker>", "exec"), _NS)  # noqa: S102
_hmac_buffer: Callable[[bytes, bytes, Sequence[int]], bytes] = _NS["hmac_buffer"]


def default_workers() -> int:
    """Processes for large inputs: ``SOCIALSEARCH_HMAC_WORKERS``, else the usable CPUs (at most 8)."""
    env = os.environ.get("SOCIALSEARCH_HMAC_WORKERS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _start_worker(key: bytes, data: bytes, lengths: np.ndarray) -> subprocess.Popen[bytes]:
    """Start a ``python -c`` worker on one chunk; the key travels over a pipe, never in argv or env.

    The whole input is written here, before this process starts hashing: the worker reads it
    at once, so the write takes milliseconds. (Feeding it from a thread while the main thread
    hashes does not work: every 64 KiB pipe write needs the GIL back from the hashing loop,
    which made the worker wait for the main thread.)
    """
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _WORKER_SOURCE],  # isolated: stdlib only, no site
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    header = struct.pack("<IQQ", len(key), len(lengths), len(data))
    try:
        proc.stdin.write(b"".join([header, key, lengths.astype("<u4").tobytes(), data]))
        proc.stdin.close()
    except OSError:  # the worker died; reported when its result is collected
        pass
    return proc


def _collect(proc: subprocess.Popen[bytes], count: int) -> bytes:
    """The worker's digests (32 bytes per value), or RuntimeError if it failed."""
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    proc.stderr.read()
    code = proc.wait()
    if code != 0 or len(out) != 32 * count:
        raise RuntimeError(f"an HMAC worker process failed (exit code {code})")
    return out


def _digests(data: bytes, lengths: np.ndarray, key: bytes, workers: int | None = None) -> np.ndarray:
    """``(n, 32)`` uint8 HMAC-SHA256 digests of the ``n`` values packed in ``data``.

    Inputs of :data:`PARALLEL_THRESHOLD` values or more are split into ``workers`` chunks:
    this process hashes the first while worker processes hash the others.
    """
    n = len(lengths)
    w = default_workers() if workers is None else max(1, workers)
    if w == 1 or n < PARALLEL_THRESHOLD:
        buf = _hmac_buffer(key, data, lengths.tolist())
    else:
        bounds = np.linspace(0, n, w + 1).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        procs = [
            _start_worker(
                key, data[offsets[bounds[i]] : offsets[bounds[i + 1]]], lengths[bounds[i] : bounds[i + 1]]
            )
            for i in range(1, w)
        ]
        try:
            parts = [_hmac_buffer(key, data[: offsets[bounds[1]]], lengths[: bounds[1]].tolist())]
            parts += [_collect(proc, int(bounds[i + 1] - bounds[i])) for i, proc in enumerate(procs, start=1)]
        finally:  # on any failure (or Ctrl-C) leave no worker behind
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        buf = b"".join(parts)
    return np.frombuffer(buf, dtype=np.uint8).reshape(n, 32)


# ------------------------------------------------------------------------ vectorised encoding
def _base64(raw: np.ndarray, *, urlsafe: bool = True) -> np.ndarray:
    """Base64 of each row of ``raw`` (n, k) without padding, as ASCII rows (n, ceil(4k/3)).

    Each row is zero-padded to a multiple of 3 bytes so that the whole buffer is encoded by
    one C call; the zero bits only fill the last character, exactly as in standard base64.
    """
    n, k = raw.shape
    width = -(-k // 3) * 3
    padded = np.zeros((n, width), np.uint8)
    padded[:, :k] = raw
    encoded = binascii.b2a_base64(padded.tobytes(), newline=False)
    if urlsafe:
        encoded = encoded.translate(_URLSAFE)
    return np.frombuffer(encoded, np.uint8).reshape(n, width // 3 * 4)[:, : -(-4 * k // 3)]


def _hex(raw: np.ndarray) -> np.ndarray:
    out = np.empty((raw.shape[0], raw.shape[1] * 2), np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out


def _ascii_rows(prefix: bytes, body: np.ndarray) -> pl.Series:
    """One String per row: ``prefix`` + the ASCII row of ``body``, built without a Python loop.

    The rows are written as newline-separated lines and parsed back by Polars' CSV reader,
    which is the fastest way into a String column without pyarrow.
    """
    n = body.shape[0]
    if n == 0:
        return pl.Series(dtype=pl.String)
    p = len(prefix)
    lines = np.empty((n, p + body.shape[1] + 1), np.uint8)
    lines[:, :p] = np.frombuffer(prefix, np.uint8)
    lines[:, p:-1] = body
    lines[:, -1] = 10
    frame = pl.read_csv(
        io.BytesIO(lines.tobytes()), has_header=False, schema={"v": pl.String},
        quote_char=None, separator="\x1f",
    )
    return frame.get_column("v")


def _distinct(values: pl.Series) -> pl.Series:
    """The distinct non-null values; ``values`` itself when it has no nulls and no repeats.

    Returning the very same object lets :func:`_join_back` skip the join (an identity table
    of distinct numbers is the common case at a source station).
    """
    if values.null_count() == 0:
        uniq = values.unique(maintain_order=False)  # order is irrelevant: see the return
        return values if len(uniq) == len(values) else uniq
    return values.drop_nulls().unique(maintain_order=False)


def _distinct_bytes(values: pl.Series, *, distinct: bool = False) -> tuple[pl.Series, bytes, np.ndarray]:
    """The distinct non-null values, packed end to end (UTF-8 for strings), and their lengths.

    ``distinct=True`` promises that ``values`` has no nulls and no repeats (skips a pass).
    """
    uniq = values if distinct else _distinct(values)
    if uniq.dtype == pl.Binary:
        raw = uniq.to_list()
        return uniq, b"".join(raw), np.fromiter(map(len, raw), np.int64, len(raw))
    text = uniq.cast(pl.String)
    lengths = text.str.len_bytes().to_numpy().astype(np.int64)
    data = text.str.join("").item().encode("utf-8") if len(text) else b""
    return uniq, data, lengths


def _join_back(values: pl.Series, uniq: pl.Series, encoded: pl.Series) -> pl.Series:
    """Map each of ``values`` to the ``encoded`` of its equal in ``uniq`` (null when none)."""
    if uniq is values:
        return encoded
    table = pl.DataFrame({"v": uniq, "out": encoded})
    joined = values.rename("v").to_frame().join(table, on="v", how="left", maintain_order="left")
    return joined.get_column("out")


def hmac_unique(values: pl.Series, key: bytes, *, workers: int | None = None) -> pl.Series:
    """HMAC-SHA256 (``Binary``, 32 bytes) of each value; each distinct value is hashed once.

    Strings are hashed as UTF-8; nulls stay null.

    Examples
    --------
    >>> import polars as pl, hmac
    >>> out = hmac_unique(pl.Series(["a", None, "a"]), b"key")
    >>> out[0] == out[2] == hmac.digest(b"key", b"a", "sha256"), out[1]
    (True, None)
    """
    uniq, data, lengths = _distinct_bytes(values)
    digests = _digests(data, lengths, key, workers)
    encoded = _ascii_rows(b"", _base64(digests, urlsafe=False)).str.pad_end(44, "=").str.decode("base64")
    return _join_back(values, uniq, encoded).rename(values.name)


# ------------------------------------------------------------------------------- the API
class Pseudonymiser:
    """Keyed pseudonyms for persons, events and drafts under one keyset key.

    ``key_id`` defaults to the keystore's primary key. Person and event pseudonyms need a
    keystore with the secret (station or full); draft ids need only the ``draft`` sub-key,
    so a hub keystore can make them.

    Examples
    --------
    >>> import tempfile, pathlib, polars as pl
    >>> from socialsearch.keys import KeyStore
    >>> ks = KeyStore.init(pathlib.Path(tempfile.mkdtemp()) / "k")
    >>> p = Pseudonymiser(ks)
    >>> a, b, c = p.persons(pl.Series(["010190-1234", "0101901234", "bad"]))
    >>> a == b, a.startswith(ks.primary_key_id + "."), c
    (True, True, None)
    """

    def __init__(self, keystore: KeyStore, key_id: str | None = None, *, workers: int | None = None) -> None:
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
        self, purpose: str, values: pl.Series, prefix: bytes, *, hex_bytes: int = 0, distinct: bool = False
    ) -> pl.Series:
        uniq, data, lengths = _distinct_bytes(values, distinct=distinct)
        digests = _digests(data, lengths, self._keystore.subkey(purpose, self._key_id), self._workers)
        body = _hex(digests[:, :hex_bytes]) if hex_bytes else _base64(digests[:, :16])
        return _join_back(values, uniq, _ascii_rows(prefix, body))

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
        return self._encode("draft", msg, f"D{week}-{self._key_id}-".encode(), hex_bytes=8).rename(
            "draft_id"
        )
