"""The server side of one websocket connection: frames in, events out, turn state checked.

It enforces the order the SDK always follows (``speech.config``, then per turn
``speech.context``, the RIFF header, audio, an empty end frame) and the limits it is given,
raising ProtocolError with a readable cause on anything else. It never touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxflow.errors import ProtocolError
from voxflow.server.usp.events import (
    Audio,
    AudioEnd,
    AudioStart,
    Event,
    SpeechConfig,
    SpeechContext,
    Telemetry,
    Unknown,
)
from voxflow.server.usp.frames import Frame, parse_binary_frame, parse_text_frame
from voxflow.server.usp.options import ContextOptions, TurnSettings, parse_context, resolve_settings
from voxflow.server.usp.target import RequestOptions, parse_target
from voxflow.server.usp.wave import WaveFormat, parse_wave_header


@dataclass(frozen=True)
class Limits:
    """Bounds on what one client may send; ``max_audio_bytes`` is per turn, None for no bound."""

    max_frame_bytes: int = 1 << 20
    max_audio_bytes: int | None = None
    max_turns: int = 10_000


@dataclass
class Turn:
    """One recognition turn (one X-RequestId): its options and how much audio has come."""

    request_id: str
    options: ContextOptions
    settings: TurnSettings
    format: WaveFormat | None = None
    audio_bytes: int = 0
    ended: bool = False

    @property
    def started(self) -> bool:
        """True once the RIFF/WAVE header has arrived."""
        return self.format is not None

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received in this turn."""
        return self.format.seconds(self.audio_bytes) if self.format else 0.0

    @property
    def audio_end(self) -> float:
        """Session time (seconds) at the end of the audio received so far."""
        return self.settings.offset_base + self.audio_seconds


class Connection:
    """Parses one client's messages in order; see ``receive``."""

    def __init__(
        self, target: RequestOptions | str | None = None, *, limits: Limits | None = None
    ) -> None:
        if isinstance(target, str):
            target = parse_target(target)
        self.target: RequestOptions = target or RequestOptions()
        self.limits = limits or Limits()
        self.config: SpeechConfig | None = None
        self.turns: dict[str, Turn] = {}
        self.current: Turn | None = None

    def receive(self, message: str | bytes) -> list[Event]:
        """Handle one websocket message: ``str`` is a text frame, ``bytes`` a binary one."""
        if isinstance(message, str):
            return self.receive_text(message)
        return self.receive_binary(message)

    def receive_text(self, data: str | bytes) -> list[Event]:
        """Handle a text frame (bytes are decoded as UTF-8)."""
        size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
        self._check_size(size)
        frame = parse_text_frame(data)
        path = _path(frame)
        name = path.lower()
        if name == "speech.config":
            self.config = SpeechConfig(frame.json())
            return [self.config]
        if name == "speech.context":
            return [self._context(frame)]
        if name == "telemetry":
            return [Telemetry(frame.request_id or None, frame.json())]
        if name == "audio":
            raise ProtocolError("audio came in a text frame; it must be binary")
        return [Unknown(path, frame)]

    def receive_binary(self, data: bytes) -> list[Event]:
        """Handle a binary frame: audio, or an Unknown event for any other path."""
        self._check_size(len(data))
        frame = parse_binary_frame(data)
        path = _path(frame)
        if path.lower() != "audio":
            return [Unknown(path, frame)]
        return self._audio(frame)

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_frame_bytes:
            raise ProtocolError(
                f"frame of {size} bytes exceeds the limit of {self.limits.max_frame_bytes}"
            )

    def _context(self, frame: Frame) -> SpeechContext:
        if self.config is None:
            raise ProtocolError("speech.context arrived before speech.config")
        rid = _request_id(frame)
        if rid in self.turns:
            raise ProtocolError(f"a second speech.context for request {rid}")
        if len(self.turns) >= self.limits.max_turns:
            raise ProtocolError(f"more than {self.limits.max_turns} turns on one connection")
        body = frame.json()
        options = parse_context(body)
        turn = Turn(rid, options, resolve_settings(self.target, options))
        self.turns[rid] = self.current = turn
        return SpeechContext(rid, body, options)

    def _audio(self, frame: Frame) -> list[Event]:
        rid = _request_id(frame)
        turn = self.turns.get(rid)
        if turn is None:
            raise ProtocolError(f"audio for request {rid} before its speech.context")
        if turn.ended:
            raise ProtocolError(f"audio for request {rid} after its end of audio")
        payload = bytes(frame.body)
        events: list[Event] = []
        if turn.format is None:
            if not payload:
                raise ProtocolError(f"end of audio for request {rid} before its RIFF/WAVE header")
            turn.format, start = parse_wave_header(payload)
            events.append(AudioStart(rid, turn.format))
            payload = payload[start:]
            if not payload:
                return events
        elif not payload:
            turn.ended = True
            return [AudioEnd(rid, turn.audio_bytes)]
        limit = self.limits.max_audio_bytes
        if limit is not None and turn.audio_bytes + len(payload) > limit:
            raise ProtocolError(f"request {rid} sent more than {limit} bytes of audio")
        events.append(Audio(rid, payload, turn.audio_bytes))
        turn.audio_bytes += len(payload)
        return events


def _path(frame: Frame) -> str:
    if not frame.path:
        raise ProtocolError("frame without a Path header")
    return frame.path


def _request_id(frame: Frame) -> str:
    if not frame.request_id:
        raise ProtocolError(f"{frame.path} frame without an X-RequestId header")
    return frame.request_id
