"""Published known-answer vectors shared by the crypto tests.

They live in ``tests/data/vectors/rfc.json`` (hex, with the RFC section of each), which the Rust
tests of the native core read too (``rust/kernels.rs``), so both languages check one copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

_FILE = Path(__file__).parent / "data" / "vectors" / "rfc.json"
_DATA: dict[str, Any] = json.loads(_FILE.read_text(encoding="utf-8"))


class SivVector(NamedTuple):
    """An RFC 5297 example: the nonce, when there is one, is the last associated-data item."""

    section: str
    key: bytes
    associated_data: list[bytes]
    nonce: bytes | None
    plaintext: bytes
    output: bytes

    def components(self) -> list[bytes]:
        """The associated-data vector as AES-SIV takes it (the nonce last)."""
        return self.associated_data + ([] if self.nonce is None else [self.nonce])


RFC4231: list[tuple[bytes, bytes, str, int]] = [
    # (key, data, HMAC-SHA-256 as hex, bytes compared): RFC 4231 section 4, test cases 1-7
    # (test case 5 prints the output truncated to 128 bits)
    (bytes.fromhex(c["key"]), bytes.fromhex(c["data"]), c["hmac_sha256"], len(c["hmac_sha256"]) // 2)
    for c in _DATA["rfc4231"]["cases"]
]

RFC5297: dict[str, SivVector] = {
    c["section"]: SivVector(
        section=c["section"],
        key=bytes.fromhex(c["key"]),
        associated_data=[bytes.fromhex(a) for a in c["associated_data"]],
        nonce=bytes.fromhex(c["nonce"]) if "nonce" in c else None,
        plaintext=bytes.fromhex(c["plaintext"]),
        output=bytes.fromhex(c["output"]),
    )
    for c in _DATA["rfc5297"]["cases"]
}
"""RFC 5297 appendix A by section: ``"A.1"`` (deterministic), ``"A.2"`` (nonce-based)."""
