"""The one exception family voxflow raises: messages name the input and the cause in one line.

:func:`printable` is the one place that makes a name (or any text) safe for that line.
"""

from __future__ import annotations

import re

# C0 and C1 controls (newline, ESC, BEL, CSI...), DEL, line and paragraph separators, and the
# bidirectional controls that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` safe on one terminal line: control characters become escapes (``\\n``,
    ``\\x1b``, ``\\u202e``) and undecodable bytes (lone surrogates) U+FFFD; idempotent."""
    if any("\ud800" <= c <= "\udfff" for c in text):
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate that no undecodable byte made
            text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    return _SHORT.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


class VoxflowError(Exception):
    """Base of every error voxflow raises on purpose; ``str()`` is a one-line message for users,
    with control characters in names escaped (``source`` keeps the name as given)."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        self.reason = printable(message)
        super().__init__(f"{printable(source)}: {self.reason}" if source else self.reason)


class InputError(VoxflowError):
    """An input cannot be used: missing, a directory, unreadable."""


class DecodeError(VoxflowError):
    """An input exists but holds no decodable audio: empty, truncated, corrupt, not audio."""


class ConfigError(VoxflowError):
    """Options that contradict each other or name something that does not exist."""


class ModelError(VoxflowError):
    """A speech model that cannot be found, verified or loaded."""


class EngineError(VoxflowError):
    """A recognition engine failed on an input (service error, inference failure)."""


class OutputError(VoxflowError):
    """An output cannot be written: unwritable directory, full disk, would clobber a file."""


class ProtocolError(VoxflowError):
    """A Speech-protocol frame that is malformed or arrives out of order."""
