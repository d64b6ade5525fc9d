"""Exact values sealed for the receiving municipality: its key pair, and the sealing itself.

The hub extract carries each value only at the grain the weekly rule reads (the ISO week of
registration; no age, no event time or place). What a caseworker needs beyond that — the
child's exact age, each event's ``occurred_at``/``registered_at`` and municipality — is sealed
at the station for the municipality that will receive the draft, travels through the hub
untouched, and is opened by the municipality (``socialsearch open``). See ``docs/privacy.md``.

**Key pairs.** A municipality makes its own X25519 key pair (``socialsearch keys municipality
init --municipality 101 --keys DIR``); the private key never leaves it. Its public key goes to
the station (``keys municipality add``), into ``municipalities/<kommunekode>.pub`` of the
station's keystore.

**Sealing** (one extract, one municipality)::

    data key  = 32 random bytes, new for every extract and municipality
    sealed key = vault.seal(data key, municipality's public key, its key id,
                 aad = b"socialsearch/v3/municipal/data-key:" + kommunekode + b":" + week)
                 (ephemeral X25519, HKDF-SHA256, AES-256-GCM with a random nonce)
    value key = HKDF-SHA256(data key, info = b"socialsearch/v3/municipal/value-key"), 64 bytes
    value     = AES-SIV (RFC 5297) under the value key, associated data
                [b"socialsearch/v3/municipal/" + kind], kind "child" or "event", of the UTF-8
                JSON {"ref": <the pseudonym the municipality's drafts show>, ...values},
                padded with spaces to :data:`PLAINTEXT_BYTES`

Every plaintext under one data key names a different reference, and every extract draws new
data keys, so no two values are ever sealed alike: equal ages or equal times give unrelated
ciphertexts, within a week and across weeks. Padding makes every sealed value
``16 + PLAINTEXT_BYTES`` bytes, so a size says nothing. The ``ref`` binds a value to the child
or event it is shown with: :func:`open_details` refuses a value moved to another row.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ..errors import KeyStoreError, VaultError
from . import _native
from .keys import (
    MUNICIPALITIES_DIR,
    MunicipalPublicKey,
    check_municipality_code,
    check_permissions,
    hkdf,
    load_municipal_public_keys,
    municipal_key_id,
    write_private,
)
from .pseudonyms import default_threads
from .vault import open_sealed_with, seal

__all__ = [
    "KINDS",
    "MUNICIPALITIES_DIR",
    "MunicipalKey",
    "MunicipalPublicKey",
    "MunicipalSealer",
    "PLAINTEXT_BYTES",
    "keys_municipality_add",
    "keys_municipality_init",
    "load_municipal_public_keys",
    "open_data_key",
    "open_details",
    "open_statistics",
    "plaintext",
    "seal_statistics",
]

_PUBLIC_FILE: Final = "municipality.pub"
_PRIVATE_FILE: Final = "municipality.key"
PLAINTEXT_BYTES: Final[dict[str, int]] = {"child": 384, "event": 768, "signal": 1536, "statistics": 512}
"""Every sealed plaintext of a kind is padded to this many bytes, so its size says nothing: a
child's (age, rule, score, the persons' links: at most ~300), an event's (times, place,
district, its one or two codes with labels: at most ~600), a signal row's (each (role, link,
kind, code) the person gives the child on the event: at most 24 entries of ~60) and a draft's
statistics values (age, rule, categories, districts, newest registration)."""
KINDS: Final = ("child", "event", "signal")

_KEY_FORMAT = "socialsearch-municipal-private-key"
_SEALED_FORMAT = "socialsearch-sealed-municipal-key"
_DATA_KEY_AAD = b"socialsearch/v3/municipal/data-key:"
_VALUE_KEY_INFO = b"socialsearch/v3/municipal/value-key"
_VALUE_AD = b"socialsearch/v3/municipal/"
_STATISTICS_KEY_INFO = b"socialsearch/v4/statistics/value-key"
_STATISTICS_AD = b"socialsearch/v4/statistics"


# ------------------------------------------------------------------------------------ keys
@dataclass(frozen=True)
class MunicipalKey:
    """A municipality's key pair, loaded from its own keystore folder (never the station's)."""

    municipality: str
    key_id: str
    private_key: X25519PrivateKey = field(repr=False)

    @classmethod
    def load(cls, directory: str | Path) -> MunicipalKey:
        """Load ``DIR/municipality.key``; refuses a folder or file others can read or write."""
        d = Path(directory)
        path = d / _PRIVATE_FILE
        if not path.is_file():
            raise KeyStoreError(f"{path} is missing: is {d} a municipality's keystore? "
                                "(`socialsearch keys municipality init`)")
        check_permissions(d)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyStoreError(f"{path} holds a private key but is readable by group or others (mode {mode:04o}); "
                                f"fix it with: chmod 600 {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _KEY_FORMAT:
                raise ValueError
            private = X25519PrivateKey.from_private_bytes(base64.b64decode(data["private_key"], validate=True))
            municipality, kid = str(data["municipality"]), str(data["id"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise KeyStoreError(f"{path} is not a municipality's private key") from None
        if kid != municipal_key_id(private.public_key().public_bytes_raw()):
            raise KeyStoreError(f"{path}: the key id does not belong to the key (the file was changed)")
        return cls(municipality, kid, private)

    @property
    def public(self) -> MunicipalPublicKey:
        return MunicipalPublicKey(self.municipality, self.key_id, self.private_key.public_key().public_bytes_raw())


def keys_municipality_init(directory: str | Path, municipality: str) -> MunicipalPublicKey:
    """Create a municipality's key pair in ``directory`` (mode 0700, the private key 0600).

    Writes ``municipality.key`` (keep it) and ``municipality.pub`` (give it to the station).
    An existing key pair is never overwritten.
    """
    code = check_municipality_code(str(municipality))
    d = Path(directory)
    if (d / _PRIVATE_FILE).exists() or (d / _PUBLIC_FILE).exists():
        raise KeyStoreError(f"{d} already holds a municipality's key pair; refusing to overwrite it")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    private = X25519PrivateKey.generate()
    public = MunicipalPublicKey(code, municipal_key_id(private.public_key().public_bytes_raw()),
                                private.public_key().public_bytes_raw())
    raw = private.private_bytes_raw()
    write_private(d / _PRIVATE_FILE, {"format": _KEY_FORMAT, "version": 1, "municipality": code, "id": public.key_id,
                                      "private_key": base64.b64encode(raw).decode("ascii"),
                                      "created_at": datetime.now(UTC).isoformat(timespec="seconds")})
    write_private(d / _PUBLIC_FILE, public.to_json())
    return public


def keys_municipality_add(keys_dir: str | Path, public_file: str | Path, *, force: bool = False) -> MunicipalPublicKey:
    """Put a municipality's public key into a (station or full) keystore's ``municipalities/``.

    A key already held for that municipality is replaced only with ``force`` (a new key pair).
    """
    key = MunicipalPublicKey.read(Path(public_file))
    folder = Path(keys_dir) / MUNICIPALITIES_DIR
    if not (Path(keys_dir) / "keyset.json").is_file():
        raise KeyStoreError(f"{keys_dir} is not a keystore (`socialsearch keys init`)")
    target = folder / f"{key.municipality}.pub"
    if target.exists() and not force:
        held = MunicipalPublicKey.read(target)
        if held == key:
            return key
        raise KeyStoreError(f"{keys_dir} already holds key {held.key_id} of municipality {key.municipality}; "
                            "replace it only when forced (--force)")
    folder.mkdir(exist_ok=True, mode=0o700)
    write_private(target, key.to_json())
    return key


# ---------------------------------------------------------------------------------- sealing
def _value_key(data_key: bytes) -> bytes:
    return hkdf(data_key, _VALUE_KEY_INFO, 64)


def _key_aad(municipality: str, week: str) -> bytes:
    return _DATA_KEY_AAD + f"{municipality}:{week}".encode("ascii")


class MunicipalSealer:
    """Seals one extract's exact values, each for its recipient municipality.

    One fresh data key per municipality that gets a value (:meth:`sealed_keys` gives them
    sealed to each municipality's public key, for the manifest); values for a municipality
    without a public key stay null and the municipality is listed in :attr:`missing`.
    """

    def __init__(self, keys: Mapping[str, MunicipalPublicKey], week: str) -> None:
        self._keys = dict(keys)
        self._week = week
        self._data: dict[str, bytes] = {}
        self.missing: set[str] = set()

    def seal(self, recipients: pl.Series, plaintexts: pl.Series, kind: str) -> pl.Series:
        """Seal each plaintext (String, from :func:`plaintext`) for the recipient on its row.

        The loop is over the (at most 98) recipient municipalities; each group of values is
        sealed by the native AES-SIV kernel as one column.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        padded = _padded(plaintexts, kind)
        frame = pl.DataFrame({"to": recipients.cast(pl.String), "text": padded}).with_row_index("i")
        parts = [pl.DataFrame(schema={"i": pl.UInt32, "sealed": pl.Binary})]
        for (municipality,), group in frame.group_by("to"):
            code = str(municipality)
            if code not in self._keys:
                self.missing.add(code)
                continue
            data_key = self._data.setdefault(code, secrets.token_bytes(32))
            sealed = _native.aes_siv_seal(_value_key(data_key), group.get_column("text"),
                                          [_VALUE_AD + kind.encode("ascii")], default_threads())
            parts.append(group.select("i").with_columns(pl.Series(sealed).rename("sealed").cast(pl.Binary)))
        out = frame.select("i").join(pl.concat(parts), on="i", how="left").sort("i")
        return out.get_column("sealed").rename("details")

    def sealed_keys(self) -> dict[str, dict[str, str]]:
        """kommunekode → its data key sealed to its public key (what the manifest carries)."""
        out = {}
        for code, data_key in sorted(self._data.items()):
            key = self._keys[code]
            blob = seal(data_key, key.public_key, key.key_id, _key_aad(code, self._week))
            out[code] = {"format": _SEALED_FORMAT, "version": "1", "municipality": code, "key_id": key.key_id,
                         "week": self._week, "sealed": base64.b64encode(blob).decode("ascii")}
        return out


def _padded(plaintexts: pl.Series, kind: str) -> pl.Series:
    """The plaintexts padded with spaces to the size of their kind in UTF-8 bytes (a label with
    æ, ø or å has more bytes than characters); ValueError when one is longer."""
    size = PLAINTEXT_BYTES[kind]
    longest = plaintexts.str.len_bytes().max()
    if isinstance(longest, int) and longest > size:
        raise ValueError(f"a sealed {kind} plaintext is longer than PLAINTEXT_BYTES[{kind!r}]")
    text = pl.col("t")
    return plaintexts.to_frame("t").select(
        pl.concat_str(text, pl.lit(" " * size).str.slice(0, size - text.str.len_bytes()))).to_series()


def _statistics_key(data_key: bytes) -> bytes:
    return hkdf(data_key, _STATISTICS_KEY_INFO, 64)


def seal_statistics(plaintexts: pl.Series, data_key: bytes) -> pl.Series:
    """Seal each draft's statistics values (String, from :func:`plaintext`) for the key custodian.

    ``data_key`` is the extract's vault data key (``keystore.subkey("vault", key_id)``: only a
    keystore with the pseudonymisation secret derives it, never the hub's); the value key is
    HKDF-SHA256 of it with its own info, the values AES-SIV, padded to one size, and each names
    the draft it belongs to in its ``ref``.
    """
    sealed = _native.aes_siv_seal(_statistics_key(data_key), _padded(plaintexts, "statistics"),
                                  [_STATISTICS_AD], default_threads())
    return pl.Series(sealed).rename("statistics").cast(pl.Binary)


def open_statistics(sealed: pl.Series, data_key: bytes, refs: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Open a column of :func:`seal_statistics` values into JSON structs, each checked to name the
    draft ``refs`` shows on its row; :class:`VaultError` when one was changed or moved."""
    return _open(sealed, _statistics_key(data_key), _STATISTICS_AD, "statistics", refs, dtype)


def plaintext(columns: Mapping[str, pl.Expr]) -> pl.Expr:
    """The JSON text sealed for one row: ``{"ref": ..., name: value, ...}`` (``columns`` must
    begin with ``ref``; values are text or integers)."""
    return pl.struct([expr.alias(name) for name, expr in columns.items()]).struct.json_encode()


# ---------------------------------------------------------------------------------- opening
def open_data_key(sealed: Mapping[str, Any], key: MunicipalKey, week: str) -> bytes:
    """The data key of one week's values, opened with the municipality's private key.

    Raises :class:`VaultError` when the key is another municipality's or another key pair's,
    or when the sealed key was changed or belongs to another week.
    """
    try:
        municipality, kid = str(sealed["municipality"]), str(sealed["key_id"])
        blob = base64.b64decode(str(sealed["sealed"]), validate=True)
    except (KeyError, TypeError, ValueError):
        raise VaultError("the sealed municipal key is damaged (expected municipality, key_id and sealed)") from None
    if municipality != key.municipality:
        raise VaultError(f"these values are sealed for municipality {municipality}, and this is the key of "
                         f"municipality {key.municipality}")
    if kid != key.key_id:
        raise VaultError(f"these values are sealed to key {kid} of municipality {municipality}, and this keystore "
                         f"holds key {key.key_id}")
    return open_sealed_with(blob, key.private_key, _key_aad(municipality, week))


def open_details(sealed: pl.Series, data_key: bytes, kind: str, refs: pl.Series,
                 dtype: pl.DataType | None = None) -> pl.Series:
    """Open a column of sealed values (nulls stay null) into JSON structs and check that each
    names the reference ``refs`` shows on its row; :class:`VaultError` otherwise."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    return _open(sealed, _value_key(data_key), _VALUE_AD + kind.encode("ascii"), kind, refs, dtype)


def _open(sealed: pl.Series, value_key: bytes, associated: bytes, kind: str, refs: pl.Series,
          dtype: pl.DataType | None = None) -> pl.Series:
    column = sealed.cast(pl.Binary)
    present = column.is_not_null()
    if (column.filter(present).bin.size() != 16 + PLAINTEXT_BYTES[kind]).any():
        raise VaultError(f"a sealed {kind} value has the wrong length: it is damaged or not a sealed value")
    opened, bad = _native.aes_siv_open(value_key, column, [associated], default_threads())
    if opened is None:
        raise VaultError(f"{bad} sealed {kind} value(s) do not authenticate: they were changed, or they are "
                         "another week's or another municipality's")
    try:
        text = pl.Series(opened).cast(pl.String).str.strip_chars_end(" ")
        values = text.str.json_decode(dtype)
    except pl.exceptions.PolarsError:
        raise VaultError(f"an opened {kind} value is not what the station seals: it is damaged") from None
    frame = pl.DataFrame({"v": values, "ref": refs.cast(pl.String)})
    wrong = frame.filter(pl.col("v").is_not_null() & (pl.col("v").struct.field("ref") != pl.col("ref")))
    if wrong.height:
        raise VaultError(f"{wrong.height} sealed {kind} value(s) belong to another row than the one they are shown "
                         "with: the drafts were changed")
    return values
