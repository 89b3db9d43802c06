"""The Speech SDK's callbacks, which arrive on SDK threads, handed to an asyncio loop.

Each callback copies what it needs out of the SDK's event (plain values: the SDK's objects are
not touched on the loop) and queues it with ``loop.call_soon_threadsafe``. ``events`` is an
async iterator over them that ends with ``SessionStopped`` and raises ``TimeoutError`` at a
deadline, so a caller never polls and never waits for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SessionStarted:
    """The SDK opened the session."""

    session_id: str


@dataclass(frozen=True)
class Recognizing:
    """An interim hypothesis (``recognizing``); times in 100-ns ticks from the session start."""

    text: str
    offset: int
    language: str | None


@dataclass(frozen=True)
class Recognized:
    """A final result (``recognized``): the SDK's reason name, times in ticks, the service JSON."""

    reason: str
    text: str
    offset: int
    duration: int
    json: str
    language: str | None
    speaker: str | None = None  # a ConversationTranscriber's speaker id (``Guest-1`` …)


@dataclass(frozen=True)
class Canceled:
    """``canceled``: reason ``EndOfStream`` (the normal end) or ``Error`` with a code and text."""

    reason: str
    code: str
    details: str


@dataclass(frozen=True)
class SessionStopped:
    """The SDK closed the session: no event follows."""

    session_id: str


SdkEvent = SessionStarted | Recognizing | Recognized | Canceled | SessionStopped


def _name(value: Any) -> str:
    """An SDK enum member's name (``CancellationReason.EndOfStream`` → ``EndOfStream``)."""
    return str(getattr(value, "name", value))


def _language(result: Any) -> str | None:
    from azure.cognitiveservices.speech import PropertyId

    props = getattr(result, "properties", None)
    if props is None:
        return None
    found = props.get(PropertyId.SpeechServiceConnection_AutoDetectSourceLanguageResult)
    return found or None


def _recognizing(evt: Any) -> SdkEvent:
    r = evt.result
    return Recognizing(r.text or "", int(r.offset), _language(r))


def _recognized(evt: Any) -> SdkEvent:
    r = evt.result
    speaker = getattr(r, "speaker_id", None) or None  # "Unknown" stays: the service said so
    return Recognized(
        _name(r.reason), r.text or "", int(r.offset), int(r.duration), r.json or "", _language(r),
        speaker,
    )  # fmt: skip


def _canceled(evt: Any) -> SdkEvent:
    d = evt.cancellation_details
    return Canceled(_name(d.reason), _name(d.code), d.error_details or "")


def _started(evt: Any) -> SdkEvent:
    return SessionStarted(str(getattr(evt, "session_id", "")))


def _stopped(evt: Any) -> SdkEvent:
    return SessionStopped(str(getattr(evt, "session_id", "")))


_SIGNALS: tuple[tuple[str, Callable[[Any], SdkEvent]], ...] = (
    ("session_started", _started),
    ("recognizing", _recognizing),
    ("recognized", _recognized),
    ("canceled", _canceled),
    ("session_stopped", _stopped),
)
# A ConversationTranscriber's results come as ``transcribing`` and ``transcribed``.
_TRANSCRIBER_SIGNALS = tuple(
    (name.replace("recogniz", "transcrib"), convert) for name, convert in _SIGNALS
)


class SessionBridge:
    """Connects a recognizer's (or a conversation transcriber's) five signals to an asyncio
    queue on ``loop``."""

    def __init__(
        self, recognizer: Any, loop: asyncio.AbstractEventLoop, *, transcriber: bool = False
    ) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[SdkEvent] = asyncio.Queue()
        self._signals = []
        for name, convert in _TRANSCRIBER_SIGNALS if transcriber else _SIGNALS:
            signal = getattr(recognizer, name)
            signal.connect(self._handler(convert))
            self._signals.append(signal)

    def _handler(self, convert: Callable[[Any], SdkEvent]) -> Callable[[Any], None]:
        def handle(evt: Any) -> None:  # runs on an SDK thread: never raise into the SDK
            try:
                item = convert(evt)
            except Exception as exc:
                item = Canceled("Error", "RuntimeError", f"unreadable SDK event: {exc}")
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

        return handle

    async def events(self, timeout: float) -> AsyncIterator[SdkEvent]:
        """The session's events as they come, ending after ``SessionStopped``; ``TimeoutError``
        when the session has not stopped ``timeout`` seconds after this call."""
        deadline = self._loop.time() + timeout
        while True:
            async with asyncio.timeout_at(deadline):
                item = await self._queue.get()
            yield item
            if isinstance(item, SessionStopped):
                return

    def disconnect(self) -> None:
        """Detach every callback (breaks the recognizer ↔ bridge reference cycle)."""
        for signal in self._signals:
            with contextlib.suppress(Exception):
                signal.disconnect_all()
        self._signals.clear()
