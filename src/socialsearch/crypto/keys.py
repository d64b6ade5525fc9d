"""The keystore: the pseudonymisation keyset, HKDF sub-keys and the custodian's X25519 key pair.

A keystore is a directory (mode 0700) of small JSON files (mode 0600)::

    keyset.json         Tink-style keyset: keys with id, status and created_at, one primary.
                        "full"/"station": each key holds its 256-bit secret;
                        "hub": each key holds only its derived "draft" sub-key.
    custodian.pub       the custodian's X25519 public key and its key id
    custodian.key       the custodian's X25519 private key (only in the "full" keystore)
    municipalities/     the municipalities' X25519 public keys, ``<kommunekode>.pub`` (station
                        and full keystores; ``socialsearch keys municipality add``)

Roles: ``full`` (made by :meth:`KeyStore.init`; the custodian keeps it), ``station`` (a source
station: secret keyset and public key, no private key) and ``hub`` (no pseudonymisation secret:
only the draft-id sub-keys and the public key). See ``docs/privacy.md``.

Secrets never appear in a ``repr``, in :meth:`KeyStore.describe` or in an error message.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()) / "keys"
>>> ks = KeyStore.init(d)
>>> len(ks.subkey("person"))
32
>>> hub = keys_export(d, d.parent / "hub-keys", "hub")
>>> hub.has_secret, len(hub.subkey("draft"))
(False, 32)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._signals import commit_point
from ..errors import KeyStoreError

__all__ = [
    "KeyStore",
    "KeyStoreRole",
    "MUNICIPALITIES_DIR",
    "MunicipalPublicKey",
    "PURPOSES",
    "check_municipality_code",
    "check_permissions",
    "hkdf",
    "keys_export",
    "keys_init",
    "keys_rotate",
    "keys_show",
    "load_municipal_public_keys",
    "municipal_key_id",
    "pseudonym_key_id",
    "write_private",
]

PURPOSES: tuple[str, ...] = ("person", "event", "draft", "recipient", "vault")
#: the sub-keys a hub keystore holds (derived by the custodian and exported; no secret)
_HUB_PURPOSES: tuple[str, ...] = ("draft", "recipient")
KeyStoreRole = Literal["full", "station", "hub"]

_KEYSET = "keyset.json"
_CUSTODIAN_PUB = "custodian.pub"
_CUSTODIAN_KEY = "custodian.key"
_FORMAT = "socialsearch-keyset"
_VERSION = 1
_INFO_PREFIX = b"socialsearch/v1/"
_KID = re.compile(r"^k[0-9a-f]{8}$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def hkdf(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) without salt: the one derivation used for every sub-key."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_private(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON atomically with mode 0600 (tmp file + fsync + rename), whatever the umask."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _owner_problem(path: Path, st: os.stat_result, what: str) -> str | None:
    if st.st_uid not in (os.geteuid(), 0):
        return f"{what} {path} belongs to another user (uid {st.st_uid})"
    return None


def _ownership_problems(directory: Path) -> list[str]:
    """What lets someone else replace a keystore file, as OpenSSH's StrictModes sees it: a file
    or folder owned by another user (not root), a file writable by group or others, and, for a
    file that is a symbolic link, every folder above its target (up to the keystore folder or
    the file system's root) that belongs to another user or that group or others may write
    without the sticky bit."""
    problems: list[str] = []
    root = directory.resolve()
    owner = _owner_problem(directory, directory.stat(), "the keystore folder")
    if owner:
        problems.append(owner)
    for name in (_KEYSET, _CUSTODIAN_KEY, _CUSTODIAN_PUB):
        path = directory / name
        if not path.exists():
            continue
        target = path.resolve()
        st = target.stat()
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{path} is not a regular file")
            continue
        owner = _owner_problem(path, st, "keystore file")
        if owner:
            problems.append(owner)
        if stat.S_IMODE(st.st_mode) & 0o022:
            problems.append(f"{path} can be written by group or others (mode {stat.S_IMODE(st.st_mode):04o})")
        if target.parent == root:
            continue
        for folder in (target.parent, *target.parent.parents):
            if folder == root:
                break
            fst = folder.stat()
            owner = _owner_problem(folder, fst, f"the folder holding the target of {path},")
            if owner:
                problems.append(owner)
            mode = stat.S_IMODE(fst.st_mode)
            if mode & 0o022 and not mode & stat.S_ISVTX:
                problems.append(f"{path} is a link into {folder}, which group or others can write (mode {mode:04o})")
    return problems


def check_permissions(directory: Path) -> None:
    """Refuse a keystore whose secrets others could read or replace, naming every problem at once.

    Secret files (``keyset.json``, ``custodian.key``) must be readable by the owner only, and
    the folder must not be writable by group or others (who could swap a file in); no file or
    folder on the way to a keystore file may belong to another user or be writable by others
    (:func:`_ownership_problems`).
    """
    problems: list[str] = []
    fixes: list[str] = []
    files: list[str] = []
    for name in (_KEYSET, _CUSTODIAN_KEY):
        path = directory / name
        if not path.is_file():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            problems.append(f"{path} holds secrets but is readable by group or others (mode {mode:04o})")
            files.append(str(path))
    if files:
        fixes.append("chmod 600 " + " ".join(files))
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o022:
        problems.append(f"{directory} can be written by group or others (mode {mode:04o})")
        fixes.append(f"chmod 700 {directory}")
    others = [p for p in _ownership_problems(directory) if p not in problems]
    if others:
        problems += others
        fixes.append("keep the keystore's files as regular files in a folder only you own and write")
    if not problems:
        return
    if len(problems) == 1:
        raise KeyStoreError(f"{problems[0]}; fix it with: {fixes[0]}")
    listed = "\n".join(f"  - {p}" for p in problems)
    raise KeyStoreError(f"the keystore {directory} is not private ({len(problems)} problems):\n{listed}\n"
                        f"fix them with: {' && '.join(fixes)}")


def _read_json(path: Path, *, secret: bool) -> dict[str, Any]:
    if not path.exists():
        raise KeyStoreError(f"no keystore at {path.parent} ({path.name} is missing) — check the path")
    if not path.is_file():
        raise KeyStoreError(f"{path} is not a regular file, so {path.parent} is not a keystore — check the path")
    if secret:
        check_permissions(path.parent)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"{path} cannot be read as a keystore file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise KeyStoreError(f"{path} is not a keystore file")
    return data


@dataclass(frozen=True)
class _Key:
    """One keyset entry; ``secret`` is None in a hub keystore (which holds ``draft`` and
    ``recipient`` sub-keys instead)."""

    id: str
    status: Literal["enabled", "disabled"]
    created_at: str
    secret: bytes | None = None
    draft: bytes | None = None
    recipient: bytes | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"_Key(id={self.id!r}, status={self.status!r})"

    def to_json(self) -> dict[str, str]:
        out = {"id": self.id, "status": self.status, "created_at": self.created_at}
        if self.secret is not None:
            out["secret"] = _b64(self.secret)
        if self.draft is not None:
            out["draft_subkey"] = _b64(self.draft)
        if self.recipient is not None:
            out["recipient_subkey"] = _b64(self.recipient)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path) -> _Key:
        try:
            kid, status = str(data["id"]), str(data["status"])
            secret = _unb64(data["secret"]) if "secret" in data else None
            draft = _unb64(data["draft_subkey"]) if "draft_subkey" in data else None
            recipient = _unb64(data["recipient_subkey"]) if "recipient_subkey" in data else None
            created = str(data.get("created_at", ""))
        except (KeyError, ValueError, TypeError):
            raise KeyStoreError(f"{path}: a key entry is damaged (id, status, secret)") from None
        if not _KID.match(kid) or status not in ("enabled", "disabled"):
            raise KeyStoreError(f"{path}: a key entry has a bad id or status")
        if (secret is None and draft is None) or (secret is not None and len(secret) != 32):
            raise KeyStoreError(f"{path}: key {kid} holds no usable key material")
        return cls(kid, status, created, secret, draft, recipient)  # type: ignore[arg-type]


def _new_key_id(taken: set[str]) -> str:
    while True:
        kid = "k" + secrets.token_hex(4)
        if kid not in taken:
            return kid


def _custodian_key_id(public: X25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"socialsearch/v1/custodian-key-id" + raw)
    return "c" + digest.finalize()[:4].hex()



# ------------------------------------------------------------- municipalities' public keys
MUNICIPALITIES_DIR: Final = "municipalities"
"""The folder of municipalities' public keys inside a station (or full) keystore."""
_PUB_FORMAT = "socialsearch-municipal-public-key"
_KEY_ID_INFO = b"socialsearch/v3/municipal-key-id"
_CODE = re.compile(r"^\d{3}$")


def municipal_key_id(public: bytes) -> str:
    return "m" + hashlib.sha256(_KEY_ID_INFO + public).hexdigest()[:8]


def check_municipality_code(municipality: str) -> str:
    from ..geography import geography  # late: geography reads packaged files

    if not _CODE.match(municipality) or municipality not in geography().municipality_codes:
        raise KeyStoreError(f"{municipality!r} is not a kommunekode (3 digits, one of the 98 municipalities)")
    return municipality


@dataclass(frozen=True)
class MunicipalPublicKey:
    """A municipality's public key as the station holds it."""

    municipality: str
    key_id: str
    public_key: bytes = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"format": _PUB_FORMAT, "version": 1, "municipality": self.municipality, "id": self.key_id,
                "public_key": base64.b64encode(self.public_key).decode("ascii")}

    @classmethod
    def read(cls, path: Path) -> MunicipalPublicKey:
        """Read and check a public-key file (its key id must match its key)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _PUB_FORMAT:
                raise ValueError
            public = base64.b64decode(data["public_key"], validate=True)
            X25519PublicKey.from_public_bytes(public)
            municipality, kid = str(data["municipality"]), str(data["id"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise KeyStoreError(f"{path} is not a municipality's public key (`socialsearch keys municipality "
                                "init` writes one)") from None
        if kid != municipal_key_id(public):
            raise KeyStoreError(f"{path}: the key id does not belong to the key (the file was changed)")
        return cls(check_municipality_code(municipality), kid, public)


def load_municipal_public_keys(keys_dir: str | Path) -> dict[str, MunicipalPublicKey]:
    """kommunekode → public key, from ``keys_dir/municipalities/*.pub`` (empty when none)."""
    folder = Path(keys_dir) / MUNICIPALITIES_DIR
    if not folder.is_dir():
        return {}
    keys = {}
    for path in sorted(folder.glob("*.pub")):
        key = MunicipalPublicKey.read(path)
        if path.stem != key.municipality:
            raise KeyStoreError(f"{path} holds the key of municipality {key.municipality}; name it "
                                f"{key.municipality}.pub")
        keys[key.municipality] = key
    return keys


class KeyStore:
    """A loaded keystore. Build it with :meth:`init` or :meth:`load`, never directly.

    ``repr`` and ``str`` show the directory, role and key ids only.
    """

    def __init__(
        self,
        directory: Path,
        role: KeyStoreRole,
        keys: tuple[_Key, ...],
        primary: str,
        custodian_public: X25519PublicKey,
        custodian_id: str,
        custodian_private: X25519PrivateKey | None,
        created_at: str,
    ) -> None:
        self._directory = directory
        self._role: KeyStoreRole = role
        self._keys = {k.id: k for k in keys}
        self._primary = primary
        self._pub = custodian_public
        self._pub_id = custodian_id
        self._priv = custodian_private
        self._created_at = created_at
        self._cache: dict[tuple[str, str], bytes] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def init(cls, directory: str | Path) -> KeyStore:
        """Create a new full keystore in ``directory`` (refuses an existing keystore).

        One primary 256-bit secret from :mod:`secrets` and the custodian's X25519 key pair.
        """
        d = Path(directory)
        if any((d / name).exists() for name in (_KEYSET, _CUSTODIAN_PUB, _CUSTODIAN_KEY)):
            raise KeyStoreError(
                f"{d} already holds a keystore; refusing to overwrite it "
                "(use `socialsearch keys rotate` to add a key)"
            )
        fresh = not d.exists()
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.chmod(d, 0o700)
            now = _now()
            key = _Key(_new_key_id(set()), "enabled", now, secret=secrets.token_bytes(32))
            private = X25519PrivateKey.generate()
            public = private.public_key()
            cid = _custodian_key_id(public)
            store = cls(d, "full", (key,), key.id, public, cid, private, now)
            store._write_public()
            raw_priv = private.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            write_private(d / _CUSTODIAN_KEY, {"format": "socialsearch-custodian-key", "version": 1,
                                               "id": cid, "private_key": _b64(raw_priv), "created_at": now})
            with commit_point():
                store._write_keyset()
        except BaseException:  # a keystore that failed while it was being made is removed again
            for name in (_KEYSET, _CUSTODIAN_KEY, _CUSTODIAN_PUB):
                (d / name).unlink(missing_ok=True)
            if fresh:
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise
        return store

    @classmethod
    def load(cls, directory: str | Path) -> KeyStore:
        """Load a keystore; refuses secret files readable by group or others."""
        d = Path(directory)
        if not d.is_dir():
            what = "is not a folder" if d.exists() else "does not exist"
            raise KeyStoreError(f"no keystore at {d} ({what}) — check the path")
        if (d / _KEYSET).exists():
            check_permissions(d)
        data = _read_json(d / _KEYSET, secret=True)
        if data.get("format") != _FORMAT or data.get("version") != _VERSION:
            raise KeyStoreError(f"{d / _KEYSET}: not a version-{_VERSION} socialsearch keyset")
        role = data.get("role")
        if role not in ("full", "station", "hub"):
            raise KeyStoreError(f"{d / _KEYSET}: unknown role")
        keys = tuple(_Key.from_json(k, d / _KEYSET) for k in data.get("keys", []))
        primary = str(data.get("primary"))
        if primary not in {k.id for k in keys}:
            raise KeyStoreError(f"{d / _KEYSET}: the primary key {primary} is not in the keyset")
        if role != "hub" and any(k.secret is None for k in keys):
            raise KeyStoreError(f"{d / _KEYSET}: a {role} keystore must hold every key's secret")
        pub = _read_json(d / _CUSTODIAN_PUB, secret=False)
        try:
            public = X25519PublicKey.from_public_bytes(_unb64(pub["public_key"]))
            cid = str(pub["id"])
        except (KeyError, ValueError, TypeError):
            raise KeyStoreError(f"{d / _CUSTODIAN_PUB}: damaged custodian public key") from None
        private = None
        if role == "full":
            priv = _read_json(d / _CUSTODIAN_KEY, secret=True)
            try:
                private = X25519PrivateKey.from_private_bytes(_unb64(priv["private_key"]))
            except (KeyError, ValueError, TypeError):
                raise KeyStoreError(f"{d / _CUSTODIAN_KEY}: damaged custodian private key") from None
            if _custodian_key_id(private.public_key()) != cid or priv.get("id") != cid:
                raise KeyStoreError(f"{d}: custodian.key and custodian.pub do not belong together")
        return cls(d, role, keys, primary, public, cid, private, str(data.get("created_at", "")))

    def _write_public(self) -> None:
        raw = self._pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        write_private(self._directory / _CUSTODIAN_PUB, {
            "format": "socialsearch-custodian-public-key", "version": 1,
            "id": self._pub_id, "public_key": _b64(raw),
        })

    def _write_keyset(self) -> None:
        write_private(self._directory / _KEYSET, {
            "format": _FORMAT, "version": _VERSION, "role": self._role,
            "created_at": self._created_at, "primary": self._primary,
            "keys": [k.to_json() for k in self._keys.values()],
        })

    # ------------------------------------------------------------------ properties
    def __repr__(self) -> str:
        return (f"KeyStore({str(self._directory)!r}, role={self._role!r}, "
                f"primary={self._primary!r}, keys={list(self._keys)!r}, custodian={self._pub_id!r})")

    __str__ = __repr__

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def role(self) -> KeyStoreRole:
        """``full``, ``station`` or ``hub``."""
        return self._role

    @property
    def has_secret(self) -> bool:
        """True when this keystore can make person, event and vault keys (not a hub)."""
        return self._role != "hub"

    @property
    def primary_key_id(self) -> str:
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, enabled and disabled, in the order they were added."""
        return tuple(self._keys)

    def key_status(self, key_id: str) -> str:
        """``enabled`` or ``disabled``; :class:`KeyStoreError` for an unknown id."""
        return self._key(key_id).status

    @property
    def custodian_public_key(self) -> X25519PublicKey:
        return self._pub

    @property
    def custodian_key_id(self) -> str:
        return self._pub_id

    @property
    def has_custodian_private_key(self) -> bool:
        return self._priv is not None

    def custodian_private_key(self, key_id: str | None = None) -> X25519PrivateKey:
        """The custodian's private key (only a ``full`` keystore holds it).

        ``key_id``, when given, must be this keystore's custodian key id: a vault sealed to
        another custodian key cannot be opened here.
        """
        if self._priv is None:
            raise KeyStoreError(
                f"the keystore {self._directory} ({self._role}) holds no custodian private key; "
                "only the key custodian's keystore can open vaults"
            )
        if key_id is not None and key_id != self._pub_id:
            raise KeyStoreError(
                f"sealed to custodian key {key_id}, but this keystore holds custodian key {self._pub_id}"
            )
        return self._priv

    def _key(self, key_id: str | None) -> _Key:
        kid = self._primary if key_id is None else key_id
        try:
            return self._keys[kid]
        except KeyError:
            raise KeyStoreError(
                f"key {kid} is not in the keystore {self._directory} (known: {', '.join(self._keys)})"
            ) from None

    def subkey(self, purpose: str, key_id: str | None = None) -> bytes:
        """32-byte sub-key: HKDF-SHA256 of the key's secret, info ``b"socialsearch/v1/" + purpose``.

        ``key_id`` defaults to the primary key. A hub keystore has only ``"draft"`` and
        ``"recipient"`` (the key it derives each municipality's scoping key from).
        """
        if purpose not in PURPOSES:
            raise KeyStoreError(f"unknown key purpose {purpose!r} (expected one of {', '.join(PURPOSES)})")
        key = self._key(key_id)
        cached = self._cache.get((key.id, purpose))
        if cached is not None:
            return cached
        if key.secret is None:
            held = {"draft": key.draft, "recipient": key.recipient}.get(purpose)
            if held is not None:
                return held
            if purpose == "recipient":
                raise KeyStoreError(
                    f"the hub keystore {self._directory} was exported by an older socialsearch and holds "
                    "no recipient key; export it again: `socialsearch keys export --role hub`"
                )
            raise KeyStoreError(
                f"the keystore {self._directory} is a {self._role} keystore and holds no pseudonymisation "
                f"secret, so it cannot derive {purpose!r} keys; use a station or full keystore"
            )
        derived = hkdf(key.secret, _INFO_PREFIX + purpose.encode("ascii"))
        self._cache[(key.id, purpose)] = derived
        return derived

    @property
    def municipal_public_keys(self) -> dict[str, Any]:
        """kommunekode → :class:`~socialsearch.crypto.municipal.MunicipalPublicKey` held in
        ``municipalities/`` (the station seals exact values for these municipalities)."""
        return dict(load_municipal_public_keys(self._directory))

    def describe(self) -> dict[str, Any]:
        """What ``keys show`` prints: ids, status, primary, dates, role, public keys; never secrets."""
        raw = self._pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        municipal = self.municipal_public_keys
        return {
            "directory": str(self._directory),
            "role": self._role,
            "has_secret": self.has_secret,
            "primary": self._primary,
            "keys": [
                {"id": k.id, "status": k.status, "primary": k.id == self._primary, "created_at": k.created_at}
                for k in self._keys.values()
            ],
            "custodian": {
                "key_id": self._pub_id,
                "public_key": _b64(raw),
                "private_key_present": self._priv is not None,
            },
            "municipalities": {code: {"key_id": key.key_id, "public_key": _b64(key.public_key)}
                               for code, key in sorted(municipal.items())},
        }


# ---------------------------------------------------------------------- operations
def keys_init(directory: str | Path) -> KeyStore:
    """Create the custodian's full keystore in ``directory`` (``socialsearch keys init``).

    The pseudonymisation secret and the custodian's X25519 key pair, files mode 0600 in a
    folder mode 0700; an existing keystore is refused (see :meth:`KeyStore.init`). Give the
    hub and the source stations exports of it (:func:`keys_export`), never the folder itself.
    """
    return KeyStore.init(directory)


def keys_show(directory: str | Path) -> dict[str, Any]:
    """Key ids, their status, the primary and the custodian's public key; never a secret.

    What ``socialsearch keys show`` prints (see :meth:`KeyStore.describe`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "keys"
    >>> shown = keys_show(keys_init(d).directory)
    >>> shown["role"], len(shown["keys"]), shown["custodian"]["private_key_present"]
    ('full', 1, True)
    """
    return KeyStore.load(directory).describe()


def keys_rotate(directory: str | Path, promote: str | None = None, disable: str | None = None) -> KeyStore:
    """Rotate keys in three steps (the Tink way), one per call.

    * no argument: add a new enabled, non-primary key (distribute it to every station);
    * ``promote=KID``: make that key the primary (new pseudonyms use it);
    * ``disable=KID``: disable an old key (never the primary). Its secret is kept, so old
      pseudonyms can still be recognised and re-keyed, and old vaults opened.
    """
    store = KeyStore.load(directory)
    if not store.has_secret:
        raise KeyStoreError(f"{directory} is a hub keystore; rotate the full keystore and export it again")
    if promote is not None and disable is not None:
        raise KeyStoreError("promote and disable are separate steps: give one of them")
    keys = store._keys
    if promote is None and disable is None:
        new = _Key(_new_key_id(set(keys)), "enabled", _now(), secret=secrets.token_bytes(32))
        keys[new.id] = new
    elif promote is not None:
        key = store._key(promote)
        keys[key.id] = _Key(key.id, "enabled", key.created_at, key.secret, key.draft, key.recipient)
        store._primary = key.id
    else:
        assert disable is not None
        key = store._key(disable)
        if key.id == store._primary:
            raise KeyStoreError(f"key {key.id} is the primary; promote another key before disabling it")
        keys[key.id] = _Key(key.id, "disabled", key.created_at, key.secret, key.draft, key.recipient)
    with commit_point():  # the rename of the keyset: after it, the rotation completes and reports
        store._write_keyset()
    return store


def keys_export(directory: str | Path, out: str | Path, role: Literal["hub", "station"], *,
           force: bool = False) -> KeyStore:
    """Export the keys a matching hub or a source station needs into a new keystore ``out``.

    ``hub``: the custodian's public key and each key's derived ``draft`` and ``recipient`` sub-keys only (no
    pseudonymisation secret, no private key). ``station``: the secret keyset and the public key.
    ``force=True`` replaces an earlier hub or station export in ``out`` (after a rotation);
    a full keystore (one holding the custodian's private key) is never replaced.
    """
    if role not in ("hub", "station"):
        raise KeyStoreError(f"unknown export role {role!r} (expected hub or station)")
    source = KeyStore.load(directory)
    if role == "station" and not source.has_secret:
        raise KeyStoreError(f"{directory} is a hub keystore and holds no secret to export to a station")
    d = Path(out)
    if d.exists() and d.resolve() == source.directory.resolve():
        raise KeyStoreError(f"{d} is the keystore being exported; export to another folder")
    if (d / _CUSTODIAN_KEY).exists():
        raise KeyStoreError(f"{d} holds a full keystore with the custodian's private key; "
                            "refusing to overwrite it, even when forced")
    if not force and any((d / name).exists() for name in (_KEYSET, _CUSTODIAN_PUB)):
        raise KeyStoreError(f"{d} already holds a keystore; refusing to overwrite it "
                            "(an earlier export is replaced only when forced: --force, force=True)")
    fresh = not d.exists()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return _export(source, d, role)
    except BaseException:  # an export that failed while it was made into a new folder is removed again
        if fresh:
            for name in (_KEYSET, _CUSTODIAN_PUB):
                (d / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _export(source: KeyStore, d: Path, role: Literal["hub", "station"]) -> KeyStore:
    os.chmod(d, 0o700)
    if role == "hub":
        keys = tuple(
            _Key(k.id, k.status, k.created_at, None, source.subkey("draft", k.id), source.subkey("recipient", k.id))
            for k in source._keys.values()
        )
    else:
        keys = tuple(_Key(k.id, k.status, k.created_at, k.secret, None) for k in source._keys.values())
    store = KeyStore(d, role, keys, source._primary, source._pub, source._pub_id, None, _now())
    store._write_public()
    if role == "station":  # the municipalities' public keys: the station seals exact values for them
        held = source.municipal_public_keys
        if held:
            (d / MUNICIPALITIES_DIR).mkdir(exist_ok=True, mode=0o700)
        for code, key in held.items():
            write_private(d / MUNICIPALITIES_DIR / f"{code}.pub", key.to_json())
    with commit_point():
        store._write_keyset()
    return store


_PSEUDONYM_KID = r"^(?:e\.|D\d{4}-W\d{2}-)?(k[0-9a-f]{8})[.-]"


def pseudonym_key_id(expr: pl.Expr | str) -> pl.Expr:
    """The key id a person pseudonym, event reference or draft id was made with (or null).

    Examples
    --------
    >>> import polars as pl
    >>> s = pl.Series("p", ["k0a1b2c3d.AAAA", "e.k0a1b2c3d.BBBB", "D2026-W47-k0a1b2c3d-00ff", "x"])
    >>> s.to_frame().select(pseudonym_key_id("p"))["p"].to_list()
    ['k0a1b2c3d', 'k0a1b2c3d', 'k0a1b2c3d', None]
    """
    col = pl.col(expr) if isinstance(expr, str) else expr
    return col.str.extract(_PSEUDONYM_KID, 1)
