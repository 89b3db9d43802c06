"""Sans-I/O codec of the Speech service websocket protocol (USP), like h11 or wsproto.

Bytes in, events out; no sockets, no asyncio. The server side is ``Connection`` (client frames
to events, with turn state and limits) and ``Replies`` (the service's messages, built from
seconds). The client side (``client_messages`` and friends) builds what the Speech SDK sends.
"""

from voxflow.server.usp.client import (
    audio_end_message,
    audio_header_message,
    audio_message,
    client_messages,
    new_request_id,
    speech_config_message,
    speech_context_message,
    telemetry_message,
)
from voxflow.server.usp.connection import Connection, Limits, Turn
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
from voxflow.server.usp.frames import (
    Frame,
    encode_binary_frame,
    encode_text_frame,
    parse_binary_frame,
    parse_text_frame,
    timestamp,
)
from voxflow.server.usp.options import (
    LID_WIRE,
    TICKS_PER_SECOND,
    ContextOptions,
    Continuation,
    TurnSettings,
    parse_context,
    resolve_settings,
)
from voxflow.server.usp.replies import (
    RecognitionStatus,
    Replies,
    ServiceMessage,
    lexical,
    parse_service_message,
    phrase_body,
    seconds_to_ticks,
    segment_body,
    status_body,
    ticks_to_seconds,
)
from voxflow.server.usp.target import RecognitionMode, RequestOptions, parse_target, speech_path
from voxflow.server.usp.wave import WaveEncoding, WaveFormat, build_wave_header, parse_wave_header

__all__ = [
    "LID_WIRE",
    "TICKS_PER_SECOND",
    "Audio",
    "AudioEnd",
    "AudioStart",
    "Connection",
    "ContextOptions",
    "Continuation",
    "Event",
    "Frame",
    "Limits",
    "RecognitionMode",
    "RecognitionStatus",
    "Replies",
    "RequestOptions",
    "ServiceMessage",
    "SpeechConfig",
    "SpeechContext",
    "Telemetry",
    "Turn",
    "TurnSettings",
    "Unknown",
    "WaveEncoding",
    "WaveFormat",
    "audio_end_message",
    "audio_header_message",
    "audio_message",
    "build_wave_header",
    "client_messages",
    "encode_binary_frame",
    "encode_text_frame",
    "lexical",
    "new_request_id",
    "parse_binary_frame",
    "parse_context",
    "parse_service_message",
    "parse_target",
    "parse_text_frame",
    "parse_wave_header",
    "phrase_body",
    "resolve_settings",
    "seconds_to_ticks",
    "segment_body",
    "speech_config_message",
    "speech_context_message",
    "speech_path",
    "status_body",
    "telemetry_message",
    "ticks_to_seconds",
    "timestamp",
]
