"""What a client's frames mean: one event class per kind of message the SDK sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxflow.server.usp.frames import Frame
from voxflow.server.usp.options import ContextOptions
from voxflow.server.usp.wave import WaveFormat


@dataclass(frozen=True)
class SpeechConfig:
    """``speech.config``: SDK, OS and audio-source description, once per connection."""

    body: dict[str, Any]


@dataclass(frozen=True)
class SpeechContext:
    """``speech.context``: opens a turn identified by ``request_id``, with its options."""

    request_id: str
    body: dict[str, Any]
    options: ContextOptions


@dataclass(frozen=True)
class AudioStart:
    """The first audio frame of a turn: the RIFF/WAVE header that says how to read the bytes."""

    request_id: str
    format: WaveFormat


@dataclass(frozen=True)
class Audio:
    """Audio bytes of a turn; ``offset`` counts the turn's audio bytes before these."""

    request_id: str
    data: bytes
    offset: int


@dataclass(frozen=True)
class AudioEnd:
    """The empty audio frame: the client has no more audio for this turn."""

    request_id: str
    total_bytes: int


@dataclass(frozen=True)
class Telemetry:
    """``telemetry``: the SDK's own metrics, sent after a turn ends."""

    request_id: str | None
    body: dict[str, Any]


@dataclass(frozen=True)
class Unknown:
    """A frame with a Path this codec does not interpret, handed over as it came."""

    path: str
    frame: Frame


Event = SpeechConfig | SpeechContext | AudioStart | Audio | AudioEnd | Telemetry | Unknown
