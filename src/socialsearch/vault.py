"""Sealing to the key custodian, and the per-value sealed columns.

Two layers (``docs/privacy.md``):

* :func:`seal` / :func:`open_sealed`: hybrid public-key encryption to the custodian's X25519
  key (ephemeral X25519, HKDF-SHA256, AES-256-GCM). Anyone with the public key can seal;
  only the custodian's private key opens. Used for the weekly vault file
  (:func:`write_vault`) and for the sources' vault data keys (:func:`seal_data_key`).
* :func:`seal_values` / :func:`open_values`: vectorised, deterministic authenticated
  encryption of a String column under a symmetric *data key* (``keystore.subkey("vault")``),
  so that a source station can ship each CPR number / ``district:journal`` next to its
  pseudonym, and a hub, which has no key, can still put it into the vault.

Sealed blob (version 1)::

    b"SSV" 0x01 | len(kid) (1 byte) | custodian key id (ASCII) | ephemeral public key (32)
    | nonce (12) | AES-256-GCM ciphertext and 16-byte tag
    key = HKDF-SHA256(X25519(eph, custodian), salt = eph_pub || custodian_pub,
                      info = b"socialsearch/v1/seal"); GCM AAD = header || caller's aad

Sealed value (SIV-style, deterministic)::

    P   = UTF-8 value || 0x80 || 0x00 ... to the next multiple of 16 bytes
    iv  = AES-CMAC(k_mac, P)                       (16 bytes; also the authentication tag)
    out = iv || P xor AES-CTR(k_enc, iv)           (standard 128-bit big-endian counter)
    k_mac, k_enc = HKDF-SHA256(data key, info = b"socialsearch/v1/vault/values/mac" | ".../enc")

Every step runs as one AES-ECB call over a NumPy buffer per block position, so millions of
values take seconds. Equal values give equal ciphertexts (as pseudonyms already reveal);
lengths are revealed to 16 bytes.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._atomic import write_bytes_atomic
from .errors import KeyStoreError, VaultError
from .keys import KeyStore, hkdf

__all__ = [
    "event_reference_text",
    "open_data_key",
    "open_mapping",
    "open_sealed",
    "open_values",
    "read_vault",
    "seal",
    "seal_data_key",
    "seal_values",
    "split_event_reference",
    "write_vault",
]

_MAGIC = b"SSV"
_VERSION = 1
_SEAL_INFO = b"socialsearch/v1/seal"
_VAULT_AAD = b"socialsearch/v1/vault-document"
_DATA_KEY_AAD = b"socialsearch/v1/data-key:"
_CHUNK = 262_144  # values per vectorised step (bounds the temporary index arrays to ~100 MB)


# ------------------------------------------------------------------ what is sealed
def event_reference_text(district: pl.Series, incident_id: pl.Series) -> pl.Series:
    """The raw value sealed for an event: ``<district>:<journal number>``."""
    return (district.cast(pl.String) + ":" + incident_id.cast(pl.String)).rename("event")


def split_event_reference(text: str) -> tuple[str, str]:
    """``(district, journal number)`` of an opened :func:`event_reference_text` value."""
    district, _, journal = text.partition(":")
    return district, journal


# --------------------------------------------------------------------------- public key
def _public(public_key: X25519PublicKey | bytes) -> X25519PublicKey:
    if isinstance(public_key, X25519PublicKey):
        return public_key
    try:
        return X25519PublicKey.from_public_bytes(bytes(public_key))
    except ValueError:
        raise VaultError("the custodian public key must be 32 raw X25519 bytes") from None


def _seal_key(shared: bytes, eph: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, eph + recipient, _SEAL_INFO).derive(shared)


def seal(plaintext: bytes, public_key: X25519PublicKey | bytes, key_id: str, aad: bytes = b"") -> bytes:
    """Encrypt ``plaintext`` so that only the custodian's private key (``key_id``) opens it.

    Examples
    --------
    >>> from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    >>> priv = X25519PrivateKey.generate()
    >>> blob = seal(b"secret", priv.public_key(), "c0123abcd")
    >>> blob[:4], len(blob) - len(b"secret")
    (b'SSV\\x01', 74)
    """
    kid = key_id.encode("ascii")
    if not 0 < len(kid) < 256:
        raise VaultError("the custodian key id must be 1-255 ASCII characters")
    recipient = _public(public_key)
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes_raw()
    key = _seal_key(eph.exchange(recipient), eph_pub, recipient.public_bytes_raw())
    nonce = secrets.token_bytes(12)
    header = _MAGIC + bytes([_VERSION, len(kid)]) + kid + eph_pub + nonce
    return header + AESGCM(key).encrypt(nonce, plaintext, header + aad)


def _parse(blob: bytes) -> tuple[str, bytes, bytes, bytes, bytes]:
    if len(blob) < 5 or blob[:3] != _MAGIC:
        raise VaultError("not a socialsearch sealed blob (wrong file, or its header is damaged)")
    if blob[3] != _VERSION:
        raise VaultError(f"sealed blob version {blob[3]} is not supported (this software reads version 1)")
    n = blob[4]
    end = 5 + n + 32 + 12
    if len(blob) < end + 16:
        raise VaultError("the sealed blob is truncated")
    try:
        kid = blob[5 : 5 + n].decode("ascii")
    except UnicodeDecodeError:
        raise VaultError("the sealed blob's header is damaged") from None
    return kid, blob[:end], blob[5 + n : 5 + n + 32], blob[end - 12 : end], blob[end:]


def sealed_key_id(blob: bytes) -> str:
    """The custodian key id a blob was sealed to (from its header; nothing is decrypted)."""
    return _parse(blob)[0]


def open_sealed(blob: bytes, keystore: KeyStore, aad: bytes = b"") -> bytes:
    """Open a blob made by :func:`seal` with the custodian's private key in ``keystore``.

    Raises :class:`VaultError` when the keystore has no (or another) custodian private key,
    or when the blob is damaged or the ``aad`` differs.
    """
    kid, header, eph_pub, nonce, body = _parse(blob)
    try:
        private = keystore.custodian_private_key(kid)
    except KeyStoreError as exc:
        raise VaultError(f"cannot open: {exc}") from None
    try:
        eph = X25519PublicKey.from_public_bytes(eph_pub)
        key = _seal_key(private.exchange(eph), eph_pub, private.public_key().public_bytes_raw())
        return AESGCM(key).decrypt(nonce, body, header + aad)
    except (InvalidTag, ValueError):
        raise VaultError(
            "the sealed blob does not authenticate: it is damaged, was changed, "
            "or belongs to another context"
        ) from None


# ------------------------------------------------------------------------ vault documents
def write_vault(
    path: str | Path, document: Mapping[str, Any], public_key: X25519PublicKey | bytes, key_id: str
) -> None:
    """Seal ``document`` (JSON) to the custodian and write it atomically (tmp + fsync + rename)."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    write_bytes_atomic(Path(path), seal(text.encode("utf-8"), public_key, key_id, _VAULT_AAD), mode=0o600)


def read_vault(path: str | Path, keystore: KeyStore) -> dict[str, Any]:
    """Open a vault file written by :func:`write_vault` (needs the custodian's private key)."""
    p = Path(path)
    try:
        blob = p.read_bytes()
    except OSError as exc:
        raise VaultError(f"cannot read the vault {p}: {exc.strerror}") from None
    try:
        document = json.loads(open_sealed(blob, keystore, _VAULT_AAD).decode("utf-8"))
    except VaultError as exc:
        raise VaultError(f"{p}: {exc}") from None
    if not isinstance(document, dict):
        raise VaultError(f"{p}: the vault does not hold a JSON object")
    return document


def seal_data_key(
    data_key: bytes, public_key: X25519PublicKey | bytes, custodian_key_id: str, *, key_id: str
) -> dict[str, str]:
    """The source's vault data key (``subkey("vault", key_id)``) sealed to the custodian, as JSON.

    ``key_id`` (the keyset key the data key belongs to) is bound to the blob as AAD.
    """
    blob = seal(data_key, public_key, custodian_key_id, _DATA_KEY_AAD + key_id.encode("ascii"))
    return {
        "format": "socialsearch-sealed-data-key",
        "version": "1",
        "key_id": key_id,
        "custodian_key_id": custodian_key_id,
        "sealed": base64.b64encode(blob).decode("ascii"),
    }


def open_data_key(sealed: Mapping[str, str], keystore: KeyStore) -> bytes:
    """Open a data key made by :func:`seal_data_key` (custodian only)."""
    try:
        blob = base64.b64decode(sealed["sealed"], validate=True)
        key_id = str(sealed["key_id"])
    except (KeyError, ValueError, TypeError):
        raise VaultError("the sealed data key is damaged (expected key_id and sealed)") from None
    return open_sealed(blob, keystore, _DATA_KEY_AAD + key_id.encode("ascii"))


# ------------------------------------------------------------------- per-value encryption
def _value_keys(data_key: bytes) -> tuple[bytes, bytes]:
    if len(data_key) < 16:
        raise VaultError("the vault data key is too short (expected keystore.subkey('vault'))")
    return (hkdf(data_key, b"socialsearch/v1/vault/values/mac"),
            hkdf(data_key, b"socialsearch/v1/vault/values/enc"))


def _ecb(key: bytes, blocks: np.ndarray) -> np.ndarray:
    """AES-ECB of every 16-byte row of ``blocks`` (m, 16) in one cipher call."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    out = enc.update(np.ascontiguousarray(blocks).tobytes()) + enc.finalize()
    return np.frombuffer(out, np.uint8).reshape(blocks.shape)


def _cmac(key: bytes, padded: np.ndarray) -> np.ndarray:
    """AES-CMAC (RFC 4493) of each row of ``padded`` (m, 16*nb): full blocks, so K1 applies."""
    l_block = _ecb(key, np.zeros((1, 16), np.uint8))[0]
    as_int = int.from_bytes(l_block.tobytes(), "big") << 1
    if l_block[0] & 0x80:
        as_int ^= 0x87
    k1 = np.frombuffer((as_int & ((1 << 128) - 1)).to_bytes(16, "big"), np.uint8)
    m, width = padded.shape
    state = np.zeros((m, 16), np.uint8)
    for j in range(width // 16):
        x = state ^ padded[:, 16 * j : 16 * (j + 1)]
        if j == width // 16 - 1:
            x ^= k1
        state = _ecb(key, x)
    return state


def _keystream(key: bytes, iv: np.ndarray, blocks: int) -> np.ndarray:
    """AES-CTR keystream (m, 16*blocks) from initial counters ``iv`` (128-bit big-endian)."""
    m = iv.shape[0]
    hi = np.ascontiguousarray(iv[:, :8]).view(">u8")[:, 0].astype(np.uint64)
    lo = np.ascontiguousarray(iv[:, 8:]).view(">u8")[:, 0].astype(np.uint64)
    ctr = np.empty((m, blocks, 16), np.uint8)
    for j in range(blocks):
        lo_j = lo + np.uint64(j)
        hi_j = hi + (lo_j < lo).astype(np.uint64)
        ctr[:, j, :8] = hi_j.astype(">u8").view(np.uint8).reshape(m, 8)
        ctr[:, j, 8:] = lo_j.astype(">u8").view(np.uint8).reshape(m, 8)
    return _ecb(key, ctr.reshape(m * blocks, 16)).reshape(m, blocks * 16)


def _binary_rows(rows: np.ndarray) -> pl.Series:
    """One Binary value per row of ``rows`` (m, w) (a sentinel byte keeps trailing zeros)."""
    m, w = rows.shape
    if m == 0:
        return pl.Series(dtype=pl.Binary)
    buf = np.empty((m, w + 1), np.uint8)
    buf[:, :w] = rows
    buf[:, w] = 1
    return pl.Series(buf.view(f"S{w + 1}").ravel()).bin.head(w)


def _pack(text: pl.Series, width: int) -> np.ndarray:
    """UTF-8 bytes of each value, 0x80, then zeros, in rows of ``width`` bytes."""
    m = len(text)
    lengths = text.str.len_bytes().to_numpy().astype(np.int64)
    data = np.frombuffer(text.str.join("").item().encode("utf-8"), np.uint8) if m else np.zeros(0, np.uint8)
    out = np.zeros((m, width), np.uint8)
    if m and (lengths == lengths[0]).all():
        out[:, : lengths[0]] = data.reshape(m, lengths[0])
    elif m:
        row = np.repeat(np.arange(m), lengths)
        within = np.arange(len(data)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out.reshape(-1)[row * width + within] = data
    out[np.arange(m), lengths] = 0x80
    return out


def _by_blocks(frame: pl.DataFrame, blocks: pl.Expr) -> list[tuple[int, pl.DataFrame]]:
    """Split ``frame`` into row chunks that share a block count."""
    parts = []
    tagged = frame.with_columns(_nb=blocks)
    for (nb,), group in tagged.group_by("_nb", maintain_order=True):
        for start in range(0, group.height, _CHUNK):
            parts.append((int(nb), group.slice(start, _CHUNK)))
    return parts


def _reassemble(n: int, pieces: list[pl.DataFrame], dtype: pl.DataType, name: str) -> pl.Series:
    base = pl.DataFrame({"_i": pl.arange(0, n, eager=True, dtype=pl.UInt32)})
    if pieces:
        base = base.join(pl.concat(pieces), on="_i", how="left", maintain_order="left")
    else:
        base = base.with_columns(out=pl.lit(None, dtype=dtype))
    return base.get_column("out").cast(dtype).rename(name)


def seal_values(values: pl.Series, data_key: bytes) -> pl.Series:
    """Encrypt each String value under ``data_key`` (deterministic, authenticated); nulls stay null.

    Examples
    --------
    >>> import polars as pl
    >>> sealed = seal_values(pl.Series(["0101901234", None, "KBH:2026-1"]), b"k" * 32)
    >>> sealed.dtype, [None if b is None else len(b) for b in sealed]
    (Binary, [32, None, 32])
    >>> open_values(sealed, b"k" * 32).to_list()
    ['0101901234', None, 'KBH:2026-1']
    """
    k_mac, k_enc = _value_keys(data_key)
    text = values.cast(pl.String)
    frame = pl.DataFrame({"v": text}).with_row_index("_i").filter(pl.col("v").is_not_null())
    pieces = []
    for nb, part in _by_blocks(frame, pl.col("v").str.len_bytes() // 16 + 1):
        padded = _pack(part.get_column("v"), 16 * nb)
        iv = _cmac(k_mac, padded)
        cipher = padded ^ _keystream(k_enc, iv, nb)
        pieces.append(part.select("_i").with_columns(out=_binary_rows(np.concatenate([iv, cipher], axis=1))))
    return _reassemble(len(values), pieces, pl.Binary(), values.name)


def open_values(sealed: pl.Series, data_key: bytes) -> pl.Series:
    """Decrypt a column made by :func:`seal_values`; :class:`VaultError` if any value is damaged."""
    k_mac, k_enc = _value_keys(data_key)
    frame = pl.DataFrame({"v": sealed.cast(pl.Binary)}).with_row_index("_i").filter(pl.col("v").is_not_null())
    size = frame.get_column("v").bin.size()
    if ((size < 32) | (size % 16 != 0)).any():
        raise VaultError("a sealed value has an impossible length: the column is damaged or not sealed values")
    pieces = []
    bad = 0
    for nb, part in _by_blocks(frame, pl.col("v").bin.size() // 16 - 1):
        rows = np.frombuffer(b"".join(part.get_column("v").to_list()), np.uint8).reshape(part.height, 16 * (nb + 1))
        iv, cipher = rows[:, :16], rows[:, 16:]
        padded = cipher ^ _keystream(k_enc, iv, nb)
        expected = _cmac(k_mac, padded)
        if not hmac.compare_digest(expected.tobytes(), np.ascontiguousarray(iv).tobytes()):
            bad += int((expected != iv).any(axis=1).sum())
            continue
        # the value ends where its 0x80 marker is: the last non-zero byte (CMAC checked P)
        last = 16 * nb - 1 - np.argmax(padded[:, ::-1] != 0, axis=1)
        text = pl.DataFrame({"b": _binary_rows(padded), "n": last}).select(pl.col("b").bin.head(pl.col("n")))
        try:
            out = text.get_column("b").cast(pl.String)
        except pl.exceptions.PolarsError:
            raise VaultError("an opened value is not valid UTF-8: the column is damaged") from None
        pieces.append(part.select("_i").with_columns(out=out))
    if bad:
        raise VaultError(
            f"{bad} of {frame.height} sealed values do not authenticate: the column is damaged, "
            "or it was sealed under another data key"
        )
    return _reassemble(len(sealed), pieces, pl.String(), sealed.name)


def open_mapping(sealed: Mapping[str, str], data_key: bytes) -> dict[str, str]:
    """Open a vault entry's ``{pseudonym or event reference: base64 of seal_values output}``
    into ``{same key: raw value}`` (custodian only: ``data_key`` comes from :func:`open_data_key`)."""
    names = list(sealed)
    values = pl.Series("v", [base64.b64decode(sealed[n]) for n in names], dtype=pl.Binary)
    return dict(zip(names, open_values(values, data_key).to_list(), strict=True))
