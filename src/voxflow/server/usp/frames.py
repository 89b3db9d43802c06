"""USP frames: header lines plus a body, as text frames (JSON) or binary frames (audio).

A text frame is ``Name:value`` lines joined by CRLF, a blank line, then the body. A binary frame
is a 2-byte big-endian header length, the header lines, then the payload. Header names are
matched without regard to case, and a space after the colon is accepted, as the SDK and the
service write them differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voxflow.errors import ProtocolError

MAX_BINARY_HEADER = 0xFFFF


@dataclass(frozen=True)
class Frame:
    """One websocket message split into headers (names lower-cased) and its body."""

    headers: Mapping[str, str]
    body: bytes | str
    binary: bool = field(default=False)

    @property
    def path(self) -> str | None:
        return self.headers.get("path")

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-requestid")

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None."""
        return self.headers.get(name.lower())

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; ProtocolError when it is not one."""
        return parse_json_object(self.body, self.path or "frame")


def parse_headers(block: str) -> dict[str, str]:
    """Parse CRLF-separated ``Name:value`` lines; blank lines are skipped."""
    headers: dict[str, str] = {}
    for line in block.split("\r\n"):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not name:
            raise ProtocolError(f"malformed header line {line[:60]!r}: expected 'Name:value'")
        if name in headers:
            raise ProtocolError(f"header {name!r} appears twice")
        headers[name] = value.strip()
    return headers


def parse_text_frame(data: str | bytes) -> Frame:
    """Split a text message into headers and body; bytes must be UTF-8."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"text frame is not UTF-8 (byte {exc.start})") from None
    head, sep, body = data.partition("\r\n\r\n")
    if not sep:
        raise ProtocolError("text frame has no blank line between its headers and its body")
    return Frame(parse_headers(head), body, binary=False)


def parse_binary_frame(data: bytes) -> Frame:
    """Split a binary message into its length-prefixed headers and its payload."""
    data = bytes(data)
    if len(data) < 2:
        raise ProtocolError(f"binary frame of {len(data)} byte(s) has no 2-byte header length")
    size = int.from_bytes(data[:2], "big")
    if size > len(data) - 2:
        raise ProtocolError(
            f"binary frame truncated: header length {size} but only {len(data) - 2} bytes follow"
        )
    try:
        head = data[2 : 2 + size].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"binary frame headers are not UTF-8 (byte {exc.start})") from None
    return Frame(parse_headers(head), data[2 + size :], binary=True)


def parse_json_object(body: bytes | str, what: str) -> dict[str, Any]:
    """Decode a JSON object body, turning every failure into a ProtocolError that names ``what``."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"{what}: body is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what}: body is JSON {type(value).__name__}, expected an object")
    return value


def _header_block(headers: Iterable[tuple[str, str]], sep: str) -> str:
    lines = []
    for name, value in headers:
        text = f"{name}{sep}{value}"
        if "\r" in text or "\n" in text or not name or ":" in name:
            raise ValueError(f"invalid header {name!r}: {value!r}")
        lines.append(text)
    return "\r\n".join(lines)


def encode_text_frame(headers: Iterable[tuple[str, str]], body: str, *, sep: str = ":") -> str:
    """Build a text message: header lines, a blank line, the body."""
    return _header_block(headers, sep) + "\r\n\r\n" + body


def encode_binary_frame(
    headers: Iterable[tuple[str, str]], payload: bytes, *, sep: str = ":"
) -> bytes:
    """Build a binary message: 2-byte big-endian header length, header lines + CRLF, payload."""
    head = (_header_block(headers, sep) + "\r\n").encode("utf-8")
    if len(head) > MAX_BINARY_HEADER:
        raise ValueError(f"binary frame headers of {len(head)} bytes exceed {MAX_BINARY_HEADER}")
    return len(head).to_bytes(2, "big") + head + bytes(payload)


def json_body(value: Mapping[str, Any]) -> str:
    """Compact JSON as the SDK and the service write it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def timestamp(now: datetime | None = None) -> str:
    """An ``X-Timestamp`` value: ISO 8601 UTC with milliseconds, e.g. 2024-05-01T12:00:00.250Z."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
