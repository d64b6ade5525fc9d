"""Text for the terminal: control and bidirectional-override characters made visible.

A file name, a catalogue category id or a value read from a ledger may hold characters that a
terminal obeys instead of showing: ESC starts an escape sequence (``\\x1b]0;...\\x07`` sets the
window title, others move the cursor, recolour or erase lines), a carriage return overwrites
the line, U+202E reverses the text that follows. :func:`printable` replaces every such
character with its escape (``\\x1b``, ``\\u202e``), so the line shows what the value holds and
the terminal obeys nothing in it. Every line the command line prints goes through it.

Examples
--------
>>> printable("report\\x1b]0;owned\\x07.toml")
'report\\\\x1b]0;owned\\\\x07.toml'
>>> printable("fil\\u202egpj.exe"), printable("Århus Kommune")
('fil\\\\u202egpj.exe', 'Århus Kommune')
>>> printable("two\\nlines"), printable("two\\nlines", keep_newlines=True)
('two\\\\nlines', 'two\\nlines')
"""

from __future__ import annotations

import logging
import re

__all__ = ["UNSAFE", "PrintableFormatter", "has_unsafe", "printable", "unsafe_class"]

_RANGES: tuple[tuple[int, int], ...] = (
    (0x00, 0x1F),  # C0 controls (ESC, BEL, CR, LF, TAB, NUL, ...)
    (0x7F, 0x9F),  # DEL and the C1 controls (CSI, OSC, ST as single code points)
    (0x061C, 0x061C),  # Arabic letter mark
    (0x200B, 0x200F),  # zero-width space/joiners, left-to-right and right-to-left marks
    (0x2028, 0x2029),  # line and paragraph separators
    (0x202A, 0x202E),  # bidi embeddings and overrides (LRE, RLE, PDF, LRO, RLO)
    (0x2060, 0x2064),  # word joiner and invisible operators
    (0x2066, 0x2069),  # bidi isolates (LRI, RLI, FSI, PDI)
    (0xD800, 0xDFFF),  # lone surrogates (undecodable bytes of a file name)
    (0xFEFF, 0xFEFF),  # zero-width no-break space (byte-order mark)
    (0xFFF9, 0xFFFB),  # interlinear annotation controls
)


def unsafe_class(*, allow: str = "") -> str:
    """The regular-expression character class of the unsafe characters less ``allow``, written
    with ``\\uXXXX`` escapes only, so Python's :mod:`re` and JavaScript read it alike."""
    allowed = {ord(c) for c in allow}
    parts: list[str] = []
    for lo, hi in _RANGES:
        run: list[int] = []
        for code in [*range(lo, hi + 1), -1]:
            if code != -1 and code not in allowed:
                run.append(code)
                continue
            if run:
                first, last = run[0], run[-1]
                parts.append(f"\\u{first:04x}" + (f"-\\u{last:04x}" if last != first else ""))
            run = []
    return "[" + "".join(parts) + "]"


UNSAFE = re.compile(unsafe_class())
"""The characters :func:`printable` escapes: controls, bidirectional and invisible formatting
characters, lone surrogates."""

_NEWLINE_KEPT = re.compile(unsafe_class(allow="\n"))


_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    # C0 as \x1b (a JSON string never holds one raw); the rest as \u0085, \u202e: valid JSON escapes,
    # so a JSON document printed through printable() stays valid JSON.
    return f"\\x{code:02x}" if code < 0x20 else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` (``str()`` of any object) with every :data:`UNSAFE` character escaped.

    ``keep_newlines`` leaves line feeds as they are, for messages of several lines that the
    program itself broke; everything else, tab and carriage return included, is escaped.
    """
    pattern = _NEWLINE_KEPT if keep_newlines else UNSAFE
    return pattern.sub(_escape, str(text))


def has_unsafe(text: str) -> bool:
    """Whether ``text`` holds a character :func:`printable` would escape."""
    return UNSAFE.search(text) is not None


class PrintableFormatter(logging.Formatter):
    """A log formatter whose lines go through :func:`printable` (a record may quote a value)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep_newlines=True)
