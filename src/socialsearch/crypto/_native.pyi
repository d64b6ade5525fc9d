"""Types of the Rust extension ``socialsearch.crypto._native`` (source: ``rust/``).

Every kernel takes a String or Binary column as any object with ``__arrow_c_stream__`` (a
Polars Series; read in place, not copied), works on ``threads`` threads (0 = every CPU) with
the GIL released, keeps nulls null, and returns an :class:`ArrowArray` for ``pl.Series(...)``.
"""

from typing import Any

class ArrowArray:
    """A column made by a kernel (Arrow ``string_view``/``binary_view``), handed over once."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[Any, Any]: ...
    def __len__(self) -> int: ...

def hmac_sha256(
    key: bytes, values: object, prefix: bytes = b"", encoding: str = "raw", threads: int = 0
) -> ArrowArray:
    """``prefix`` + HMAC-SHA256 (RFC 2104) of each value: ``"raw"`` (32 bytes, binary),
    ``"base64url16"`` (base64url of the first 16 bytes, no padding, string) or ``"hex8"`` (hex of
    the first 8 bytes, string); text prefixes must be ASCII."""

def aes_siv_seal(key: bytes, values: object, associated_data: list[bytes], threads: int = 0) -> ArrowArray:
    """AES-SIV (RFC 5297; ``key`` of 32 or 64 bytes) of each value: the 16-byte SIV then the
    ciphertext, as ``cryptography``'s ``AESSIV(key).encrypt(value, associated_data)``."""

def aes_siv_open(
    key: bytes, values: object, associated_data: list[bytes], threads: int = 0
) -> tuple[ArrowArray | None, int]:
    """The plaintexts of values sealed by :func:`aes_siv_seal` and 0, or ``(None, n)`` when
    ``n`` values do not authenticate."""

def sha256_compressions(count: int, threads: int = 1) -> bytes:
    """``count`` single-block SHA-256 compressions on ``threads`` threads (a hardware-limit
    benchmark); returns a digest of the final states."""

def fold_names(values: object) -> ArrowArray:
    """Every value of a string column folded as :func:`socialsearch.station.resolution.fold_name`
    folds it (null for a null, and where no letter is left)."""

def name_groups(
    hashes: Any, counts: Any, raw: object
) -> tuple[bytes, bytes, ArrowArray, ArrowArray, bytes, bytes, bytes, bytes]:
    """The names of a field from its distinct spellings ``raw`` (a string column, folded as
    :func:`socialsearch.station.resolution.fold_name` folds) with their ``hashes`` (uint64) and
    ``counts`` (uint32): spellings with the same key (folded, without separators) are one name,
    numbered in the order of their most common spelling (ties by the lesser hash, then the
    lesser spelling). Returns the name id of each spelling (int32, -1 where nothing is left),
    the spelling each name is known by (uint32), each name's key and folded form (string
    columns), its count (uint32), the tokens of its first and last part (int64) and its number
    of parts (uint32), the integers as little-endian ``bytes``."""

def name_tokens(folded: object) -> tuple[bytes, bytes, bytes]:
    """The tokens (int64) of the first and the last part of each folded name of a string column
    (-1 for a null) and its number of parts (uint32), as little-endian ``bytes``; the tokens of
    :func:`name_groups`."""

def distinct_strings(values: object) -> tuple[bytes, bytes, ArrowArray]:
    """The distinct values of a string column, compared as strings: per row the id of its value
    (ids in the order of first appearance; 2^32 - 1 for a null) and per id its number of rows,
    as little-endian uint32 ``bytes``, and the values by id (a string column)."""

def group_rows(keys: Any, buckets: int) -> tuple[bytes, bytes]:
    """The rows of ``keys`` (a NumPy uint32 array) grouped by key by a stable counting sort, rows
    whose key is ``buckets`` or more left out: ``offsets`` (``buckets + 1``) and ``rows``, as
    little-endian uint32 ``bytes``."""

def pair_groups(
    given: Any, surname: Any, given_counts: Any, surname_counts: Any
) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The rows with both names (``given``, ``surname``: int32 NumPy arrays of name ids, negative
    for none; ``given_counts``, ``surname_counts``: float64 residents per name id) grouped by given
    name then surname: ``given_offsets`` and ``given_rows`` as little-endian uint32 ``bytes`` and
    ``pair_keys`` (``given * surnames + surname`` per row of ``given_rows``, ascending) as
    little-endian uint64; then per given name a the sum over its name pairs (a, b) of
    c_ab (c_ab - 1) / c_b and per surname b the sum over its pairs of c_ab (c_ab - 1) / c_a
    (c_ab: the pair's rows; c_a, c_b: the counts), added in ascending order of pair key, as
    little-endian float64 ``bytes``."""

def near_pairs(
    offsets: Any, rows: Any, given: Any, surname: Any, given_token: Any, surname_token: Any, days: Any, wanted: Any
) -> tuple[bytes, bytes]:
    """For each entry ``e`` (``days[e]``, an index of ``offsets``; ``wanted[4e:4e + 4]``: two
    given-name tokens, then two surname tokens, 2^32 - 1 for none) the rows of that day
    (``rows[offsets[d]:offsets[d + 1]]``) whose given-name token (``given_token[given[row]]``) or
    surname token is one of the entry's: ``(entries, rows)`` as little-endian uint32 ``bytes``.
    The register's six arrays must be read-only NumPy arrays (read in place, GIL held)."""

def rows_in(values: object, wanted: Any) -> bytes:
    """The rows of ``values`` (an ``Int64`` polars Series, read in place; nulls never match) whose
    value is one of ``wanted`` (an int64 NumPy array), ascending: little-endian uint32 ``bytes``."""

def cpr_numbers(values: object, threads: int = 0, dashed: bool = False) -> tuple[ArrowArray, ArrowArray]:
    """The CPR numbers of a String column: an ``Int64`` column holding the integer
    ``DDMMYYSSSS`` where the value is exactly ten ASCII digits whose birth date exists in the
    century of the 7th digit (null elsewhere), and a ``UInt64`` column of the 0-based rows whose
    value is other text than ten ASCII digits (left to the general rule). With ``dashed``,
    ``DDMMYY-SSSS`` (six ASCII digits, an ASCII ``-``, four) is decided as ``DDMMYYSSSS`` is."""

def untrimmed(values: object, threads: int = 0) -> int:
    """How many present values (a String column) are empty or begin or end with white space
    (``char::is_whitespace``: what ``str.strip_chars()`` would remove)."""

def key_positions(keys: Any, probes: Any) -> bytes:
    """For each of ``probes`` (a uint64 NumPy array), its position in ``keys`` (a uint64 NumPy
    array of distinct keys; ``ValueError`` when two are equal), 2^32 - 1 where it is not there:
    little-endian uint32 ``bytes``."""

def hmac_sha256_keyed(
    keys: list[bytes], prefixes: list[bytes], index: object, values: object, encoding: str = "raw", threads: int = 0
) -> ArrowArray:
    """``prefixes[index[i]]`` + HMAC-SHA256 of value ``i`` under ``keys[index[i]]`` (``index``: a
    buffer of ``uint32``, one per value), encoded as :func:`hmac_sha256` encodes."""
