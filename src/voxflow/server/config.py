"""What ``voxflow serve`` is told: where to listen, the key, limits, and test-only faults.

Everything has a safe default: loopback only, no fault, bounded frames, turns, sessions and
idle time. ``Faults`` and ``pace`` exist for tests of clients (e.g. an Azure engine) that must
cope with what the real service does: slow reading, dropped sockets, error statuses, 401.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voxflow.errors import ConfigError
from voxflow.pipeline import TranscribeOptions
from voxflow.server.usp import RecognitionStatus

# Statuses a fault may answer with: the failure ones the SDK turns into a cancellation.
FAULT_STATUSES = (
    RecognitionStatus.ERROR,
    RecognitionStatus.BAD_REQUEST,
    RecognitionStatus.BABBLE_TIMEOUT,
    RecognitionStatus.INITIAL_SILENCE_TIMEOUT,
    RecognitionStatus.NO_MATCH,
)


@dataclass(frozen=True)
class Faults:
    """Deliberate misbehaviour for client tests; all off by default.

    ``close_after_bytes``: close the socket (``close_code``) once a connection has sent this
    many audio bytes; only on the first ``close_connections`` connections when that is set.
    ``error_status``: answer every turn's audio with a phrase of this status and ``turn.end``.
    ``reply_delay``: seconds to wait before each message the server sends.
    ``force_401``: refuse every upgrade with HTTP 401, as a wrong key does.
    """

    close_after_bytes: int | None = None
    close_connections: int | None = None
    close_code: int = 1011
    error_status: RecognitionStatus | None = None
    reply_delay: float = 0.0
    force_401: bool = False

    def __post_init__(self) -> None:
        if self.close_after_bytes is not None and self.close_after_bytes < 0:
            raise ConfigError("fault close_after_bytes must not be negative")
        if self.close_connections is not None and self.close_connections < 1:
            raise ConfigError("fault close_connections must be at least 1")
        code = self.close_code
        if not (code == 1000 or 1001 <= code <= 1014 or 3000 <= code <= 4999) or code in (
            1004,
            1005,
            1006,
        ):
            raise ConfigError(f"fault close_code {self.close_code} cannot be sent in a close frame")
        if self.error_status is not None and self.error_status not in FAULT_STATUSES:
            names = ", ".join(s.value for s in FAULT_STATUSES)
            raise ConfigError(f"fault error_status must be one of {names}")
        if self.reply_delay < 0:
            raise ConfigError("fault reply_delay must not be negative")

    @property
    def any(self) -> bool:
        """True when some fault is on."""
        return self != Faults()


@dataclass(frozen=True)
class ServerConfig:
    """How the speech server listens, what it allows, and how it recognises.

    ``key``: when set, clients must send it (``Ocp-Apim-Subscription-Key`` or ``Authorization:
    Bearer``); it never appears in repr, logs or errors. ``pace``: read each turn's audio at no
    more than N× real time, as the service does (None: as fast as it comes). ``interim``: send
    ``speech.hypothesis`` from partial decodes while audio streams. ``port`` 0 picks a free one.
    ``max_recognitions`` turns recognise at once; a later one waits for a slot at most
    ``max_queue_wait`` seconds, and a connection that would wait longer is refused at once
    (``voxflow.server.admission``). The SDK gives up on a turn after about 80 s without a
    result, so the wait plus a turn's own recognition must stay well under that.
    ``max_requests``: OpenAI API transcriptions at once (more get 429); ``max_upload_mb``: the
    largest upload they take (more get 413).
    """

    host: str = "127.0.0.1"
    port: int = 5000
    key: str | None = field(default=None, repr=False)
    max_frame_bytes: int = 256 * 1024
    max_turn_seconds: float = 3600.0
    max_sessions: int = 64
    max_recognitions: int = 4
    max_queue_wait: float = 20.0
    idle_timeout: float = 300.0
    max_requests: int = 8
    max_upload_mb: float = 100.0
    pace: float | None = None
    interim: bool = True
    interim_interval: float = 1.0
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not between 0 and 65535")
        if self.key is not None and not self.key.strip():
            raise ConfigError("the key must not be empty")
        if self.max_frame_bytes < 4096:
            raise ConfigError("max_frame_bytes must be at least 4096 (an SDK audio frame)")
        for name in ("max_turn_seconds", "idle_timeout", "interim_interval", "max_queue_wait"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        for name in ("max_sessions", "max_recognitions", "max_requests"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if not self.max_upload_mb > 0:
            raise ConfigError("max_upload_mb must be positive")
        if self.pace is not None and not self.pace > 0:
            raise ConfigError("pace must be positive (a multiple of real time)")
