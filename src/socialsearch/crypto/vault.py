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

Sealed value (AES-SIV, RFC 5297, deterministic; the layout of ``cryptography``'s ``AESSIV``)::

    out = SIV (16 bytes, also the authentication tag) || AES-CTR ciphertext of the UTF-8 value
    key = HKDF-SHA256(data key, info = b"socialsearch/v2/vault/value-key"), 64 bytes
          (AES-SIV-CMAC with two AES-256 keys)
    associated data = [b"socialsearch/v2/vault/value"]

The native kernel ``socialsearch.crypto._native`` (RustCrypto ``aes-siv``, AES-NI where the CPU has
it) seals and opens whole columns in parallel, reading and writing them in place through the
Arrow PyCapsule interface. Equal values give equal ciphertexts (as pseudonyms already
reveal); lengths are revealed exactly (a CPR number seals to 26 bytes).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._atomic import write_bytes_atomic
from ..errors import KeyStoreError, VaultError
from . import _native
from .keys import KeyStore, hkdf
from .pseudonyms import default_threads

__all__ = [
    "event_reference_text",
    "open_data_key",
    "open_mapping",
    "open_sealed",
    "open_sealed_with",
    "open_values",
    "read_vault",
    "seal",
    "seal_data_key",
    "seal_values",
    "sealed_key_id",
    "split_event_references",
    "vault_document",
    "write_vault",
]

_MAGIC = b"SSV"
_VERSION = 1
_SEAL_INFO = b"socialsearch/v1/seal"
_VAULT_AAD = b"socialsearch/v1/vault-document"
_DATA_KEY_AAD = b"socialsearch/v1/data-key:"
_VALUE_KEY_INFO = b"socialsearch/v2/vault/value-key"
_VALUE_AD = b"socialsearch/v2/vault/value"


# ------------------------------------------------------------------ what is sealed
def event_reference_text(district: pl.Series, incident_id: pl.Series) -> pl.Series:
    """The raw value sealed for an event: ``<district>:<journal number>``."""
    return (district.cast(pl.String) + ":" + incident_id.cast(pl.String)).rename("event")


def split_event_references(texts: pl.Series) -> tuple[pl.Series, pl.Series]:
    """``(district, journal number)`` columns of opened :func:`event_reference_text` values."""
    parts = texts.cast(pl.String).str.split_exact(":", 1)
    return parts.struct.field("field_0").rename("district"), parts.struct.field("field_1").rename("journal")


_VAULT_FORMAT = "socialsearch-vault"
_VAULT_VERSION = 2


def vault_document(week: str, key_id: str, data_key: Mapping[str, str],
                   drafts: Mapping[str, Mapping[str, Mapping[str, str]]]) -> dict[str, Any]:
    """A week's vault document: per draft id, ``persons`` and ``events`` mapping each hub
    pseudonym or event reference to its sealed value (base64), with the station's sealed
    data key (``data_key``) that opens them. :func:`write_vault` seals it to the custodian."""
    return {"format": _VAULT_FORMAT, "version": _VAULT_VERSION, "week": week, "key_id": key_id,
            "data_key": dict(data_key), "drafts": {d: dict(e) for d, e in drafts.items()}}


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
    kid = _parse(blob)[0]
    try:
        private = keystore.custodian_private_key(kid)
    except KeyStoreError as exc:
        raise VaultError(f"cannot open: {exc}") from None
    return open_sealed_with(blob, private, aad)


def open_sealed_with(blob: bytes, private: X25519PrivateKey, aad: bytes = b"") -> bytes:
    """Open a blob made by :func:`seal` with the private key it was sealed to (a municipality's
    key pair, :mod:`socialsearch.crypto.municipal`); :class:`VaultError` as :func:`open_sealed`."""
    _, header, eph_pub, nonce, body = _parse(blob)
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
def _value_key(data_key: bytes) -> bytes:
    """The 64-byte AES-SIV key of the sealed values, derived from the vault data key."""
    if len(data_key) < 16:
        raise VaultError("the vault data key is too short (expected keystore.subkey('vault'))")
    return hkdf(data_key, _VALUE_KEY_INFO, 64)


def seal_values(values: pl.Series, data_key: bytes) -> pl.Series:
    """Encrypt each String value under ``data_key`` (AES-SIV: deterministic, authenticated);
    nulls stay null.

    Examples
    --------
    >>> import polars as pl
    >>> sealed = seal_values(pl.Series(["0101901234", None, "KBH:2026-1"]), b"k" * 32)
    >>> sealed.dtype, [None if b is None else len(b) for b in sealed]
    (Binary, [26, None, 26])
    >>> open_values(sealed, b"k" * 32).to_list()
    ['0101901234', None, 'KBH:2026-1']
    """
    key = _value_key(data_key)
    sealed = _native.aes_siv_seal(key, values.cast(pl.String), [_VALUE_AD], default_threads())
    return pl.Series(sealed).rename(values.name)


def open_values(sealed: pl.Series, data_key: bytes) -> pl.Series:
    """Decrypt a column made by :func:`seal_values`; :class:`VaultError` if any value is damaged."""
    key = _value_key(data_key)
    column = sealed.cast(pl.Binary)
    if (column.bin.size() < 16).any():
        raise VaultError("a sealed value has an impossible length: the column is damaged or not sealed values")
    opened, bad = _native.aes_siv_open(key, column, [_VALUE_AD], default_threads())
    if opened is None:
        raise VaultError(
            f"{bad} of {len(column) - column.null_count()} sealed values do not authenticate: the column is "
            "damaged, or it was sealed under another data key"
        )
    try:
        text = pl.Series(opened).cast(pl.String)
    except pl.exceptions.PolarsError:
        raise VaultError("an opened value is not valid UTF-8: the column is damaged") from None
    return text.rename(sealed.name)


def open_mapping(sealed: Mapping[str, str], data_key: bytes) -> dict[str, str]:
    """Open a vault entry's ``{pseudonym or event reference: base64 of seal_values output}``
    into ``{same key: raw value}`` (custodian only: ``data_key`` comes from :func:`open_data_key`)."""
    names = list(sealed)
    values = pl.Series("v", [base64.b64decode(sealed[n]) for n in names], dtype=pl.Binary)
    return dict(zip(names, open_values(values, data_key).to_list(), strict=True))
