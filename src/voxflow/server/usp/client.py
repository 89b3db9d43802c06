"""The client's side: the frames the Speech SDK sends, for tests and load generators.

Shapes follow what SDK 1.53 was seen to send: text headers without a space after the colon,
the RIFF/WAVE header alone in the first audio frame, 100 ms audio frames, an empty last frame.
"""

from __future__ import annotations

import platform
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from voxflow.server.usp.frames import encode_binary_frame, encode_text_frame, json_body, timestamp
from voxflow.server.usp.options import ContextOptions
from voxflow.server.usp.wave import WaveFormat, build_wave_header


def new_request_id() -> str:
    """A fresh X-RequestId: 32 hex digits, as the SDK makes them."""
    return uuid.uuid4().hex


def speech_config_message(
    fmt: WaveFormat | None = None, *, source_type: str = "Stream", now: datetime | None = None
) -> str:
    """``speech.config``: who is calling and the audio source's format."""
    fmt = fmt or WaveFormat()
    body = {
        "context": {
            "system": {
                "name": "voxflow",
                "version": "0",
                "build": platform.machine(),
                "lang": "Python",
            },
            "os": {
                "platform": platform.system(),
                "name": platform.platform(),
                "version": platform.release(),
            },
            "audio": {
                "source": {
                    "type": source_type,
                    "model": "",
                    "samplerate": str(fmt.sample_rate),
                    "bitspersample": str(fmt.bits_per_sample),
                    "channelcount": str(fmt.channels),
                }
            },
        }
    }
    headers = [
        ("X-Timestamp", timestamp(now)),
        ("Path", "speech.config"),
        ("Content-Type", "application/json"),
    ]
    return encode_text_frame(headers, json_body(body))


def speech_context_message(
    request_id: str, options: ContextOptions | None = None, *, now: datetime | None = None
) -> str:
    """``speech.context``: opens turn ``request_id`` with ``options``."""
    headers = [
        ("X-Timestamp", timestamp(now)),
        ("Path", "speech.context"),
        ("X-RequestId", request_id),
    ]
    return encode_text_frame(headers, json_body((options or ContextOptions()).to_body()))


def _audio_frame(
    request_id: str,
    payload: bytes,
    stream_id: int,
    now: datetime | None,
    content_type: str | None = None,
) -> bytes:
    headers = [("X-Timestamp", timestamp(now)), ("Path", "audio")]
    if content_type:
        headers.append(("Content-Type", content_type))
    headers += [("X-RequestId", request_id), ("X-StreamId", str(stream_id))]
    return encode_binary_frame(headers, payload)


def audio_header_message(
    request_id: str, fmt: WaveFormat, *, stream_id: int = 1, now: datetime | None = None
) -> bytes:
    """The first audio frame of a turn: a streaming RIFF/WAVE header for ``fmt``."""
    return _audio_frame(request_id, build_wave_header(fmt), stream_id, now, "audio/x-wav")


def audio_message(
    request_id: str, data: bytes, *, stream_id: int = 1, now: datetime | None = None
) -> bytes:
    """An audio frame carrying ``data`` (must not be empty: empty means end of audio)."""
    if not data:
        raise ValueError("an audio frame needs data; use audio_end_message to end the audio")
    return _audio_frame(request_id, data, stream_id, now)


def audio_end_message(request_id: str, *, stream_id: int = 1, now: datetime | None = None) -> bytes:
    """The empty audio frame that ends a turn's audio."""
    return _audio_frame(request_id, b"", stream_id, now)


def telemetry_message(request_id: str, body: dict[str, Any], *, now: datetime | None = None) -> str:
    headers = [
        ("X-Timestamp", timestamp(now)),
        ("Path", "telemetry"),
        ("Content-Type", "application/json; charset=utf-8"),
        ("X-RequestId", request_id),
    ]
    return encode_text_frame(headers, json_body(body))


def client_messages(
    audio: bytes,
    fmt: WaveFormat | None = None,
    *,
    request_id: str | None = None,
    options: ContextOptions | None = None,
    chunk_seconds: float = 0.1,
    config: bool = True,
) -> Iterator[str | bytes]:
    """Every message of one turn as the SDK sends it: config (optional), context, header,
    audio in ``chunk_seconds`` frames, end of audio."""
    fmt = fmt or WaveFormat()
    request_id = request_id or new_request_id()
    if config:
        yield speech_config_message(fmt)
    yield speech_context_message(request_id, options)
    yield audio_header_message(request_id, fmt)
    step = max(1, round(fmt.sample_rate * chunk_seconds)) * fmt.block_align
    for start in range(0, len(audio), step):
        yield audio_message(request_id, audio[start : start + step])
    yield audio_end_message(request_id)
