"""One continuous-recognition session on the real Speech SDK, awaited without blocking the loop.

A session is built from ``AzureOptions`` (service, credential, detailed output with word times,
profanity, phrase list), the session's languages (one forced locale, or candidates identified
at the start or continuously) and its audio in a ``PushAudioInputStream``. The SDK's blocking
calls (building and releasing a recognizer, ``start/stop_continuous_recognition_async().get()``)
run in worker threads; audio is written from the loop (a copy into the SDK's buffer), paced;
events come through ``SessionBridge``. A cancellation with an error becomes a ``SessionError``
that says whether retrying can help.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from voxflow.audio import SAMPLE_RATE
from voxflow.engines.azure.bridge import Canceled, Recognized, SessionBridge, SessionStopped
from voxflow.engines.azure.config import AzureOptions
from voxflow.engines.azure.input import SessionAudio
from voxflow.engines.azure.results import to_segment
from voxflow.engines.base import DecodeSettings
from voxflow.errors import ConfigError, EngineError
from voxflow.languages import LidMode
from voxflow.transcript import Segment

STOP_TIMEOUT = 30.0  # seconds to wait for the SDK to stop a session before abandoning it
PUSH_LEAD = 5.0  # seconds of audio pushed at once before pacing starts
MAX_BUFFER_PROPERTY = "SPEECH-MaxBufferSizeMs"  # the SDK's limit on unacknowledged audio

# Cancellation codes after which the same request cannot succeed.
PERMANENT_CODES = frozenset(
    {"AuthenticationFailure", "Forbidden", "BadRequest", "ServiceRedirectPermanent"}
)
CREDENTIAL_CODES = frozenset({"AuthenticationFailure", "Forbidden"})
# Websocket close codes that say the request itself is wrong (protocol, data, size).
_PERMANENT_CLOSES = frozenset({1002, 1003, 1007, 1009})
_CLOSE_CODE = re.compile(r"Error code: (\d{4})")


def import_sdk() -> Any:
    """The ``azure.cognitiveservices.speech`` module, or a ConfigError saying how to get it."""
    try:
        import azure.cognitiveservices.speech as speechsdk
    except ImportError:
        raise ConfigError(
            "the Azure engine needs the Speech SDK: pip install 'voxflow[azure]' "
            "(azure-cognitiveservices-speech)"
        ) from None
    return speechsdk


class SessionError(EngineError):
    """A session that ended without its results; ``transient``: a retry may succeed."""

    def __init__(self, message: str, *, code: str, transient: bool) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class SessionPlan:
    """What one session recognises: its audio, its place in the source, its languages."""

    audio: SessionAudio
    start: float  # seconds from the start of the source
    languages: tuple[str, ...]  # one: forced; several: candidates
    mode: LidMode
    settings: DecodeSettings = field(default_factory=DecodeSettings)

    @property
    def end(self) -> float:
        return self.start + self.audio.duration


def one_line(text: str, limit: int = 300) -> str:
    """SDK error text on one line, trimmed."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def classify(event: Canceled, options: AzureOptions) -> SessionError:
    """The error a cancellation stands for, with the service's reason (credentials removed)."""
    details = one_line(options.redact(event.details)) or "no details"
    code = event.code if event.code not in ("", "NoError") else event.reason
    transient = code not in PERMANENT_CODES
    if code == "RuntimeError" and "gstreamer" in details.lower():
        transient = False  # the SDK could not decode this input: it never will
    close = _CLOSE_CODE.search(details)
    if close and int(close.group(1)) in _PERMANENT_CLOSES:
        transient = False
    return SessionError(f"{code}: {details}", code=code, transient=transient)


def speech_config(sdk: Any, options: AzureOptions, plan: SessionPlan) -> Any:
    """The SpeechConfig of a session: service, credential, output, languages, profanity."""
    o = options
    if o.region:
        if o.token:
            config = sdk.SpeechConfig(auth_token=o.token, region=o.region)
        else:
            config = sdk.SpeechConfig(subscription=o.key, region=o.region)
    elif o.endpoint:
        config = sdk.SpeechConfig(endpoint=o.endpoint, subscription=o.key)
    else:
        config = sdk.SpeechConfig(host=o.host, subscription=o.key)
    if o.token and not o.region:
        config.authorization_token = o.token
    # The SDK keeps the audio the service has not acknowledged with a result, for replay after
    # a reconnect, and by default gives up ("client buffer exceeded maximum size") when about
    # a minute of it piles up: a busy service answering 30 s segments late hits that. Room for
    # the whole session.
    config.set_property_by_name(MAX_BUFFER_PROPERTY, str(round((plan.audio.duration + 60) * 1000)))
    config.output_format = sdk.OutputFormat.Detailed
    if plan.settings.word_timestamps:
        config.request_word_level_timestamps()
    if o.profanity:
        config.set_profanity(getattr(sdk.ProfanityOption, o.profanity.capitalize()))
    if len(plan.languages) == 1:
        config.speech_recognition_language = plan.languages[0]
    elif plan.mode is LidMode.CONTINUOUS:
        config.set_property(sdk.PropertyId.SpeechServiceConnection_LanguageIdMode, "Continuous")
    return config


class _SdkSession:
    """The SDK objects of one session (a SpeechRecognizer, or a ConversationTranscriber when
    speakers were asked for), released in a worker thread.

    Releasing a recognizer blocks (about 1 s after an error, 10 s when it was stopped after
    the session had already ended), so no reference to it may live on the event loop: they
    are held here and dropped by ``close`` in a worker thread.
    """

    def __init__(self, recognizer: Any, stream: Any, *, transcriber: bool = False) -> None:
        self.recognizer: Any = recognizer
        self.stream: Any = stream
        self.bridge: SessionBridge | None = None
        self.transcriber = transcriber

    def attach(self, loop: asyncio.AbstractEventLoop) -> SessionBridge:
        """Connect the recognizer's events to ``loop``."""
        self.bridge = SessionBridge(self.recognizer, loop, transcriber=self.transcriber)
        return self.bridge

    def start(self) -> None:
        """Start continuous recognition (blocking; in a worker thread)."""
        if self.transcriber:
            self.recognizer.start_transcribing_async().get()
        else:
            self.recognizer.start_continuous_recognition_async().get()

    async def push(self, audio: SessionAudio, speed: float | None) -> None:
        """Write the audio to the push stream, then close it. After the first PUSH_LEAD
        seconds, at most ``speed`` × real time (None: as fast as the loop turns), so that the
        SDK never holds more than a few seconds that the service has not read. A write is a
        copy into the SDK's buffer (microseconds), so it is done here on the loop."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            for data, until in audio.chunks():
                wait = began + (until - PUSH_LEAD) / speed - loop.time() if speed else 0.0
                await asyncio.sleep(max(wait, 0.0))
                self.stream.write(data)
        except Exception:  # end the session now; the caller raises this error, not a timeout
            with contextlib.suppress(Exception):
                self.stream.close()
            raise
        self.stream.close()

    def close(self, stop: bool) -> None:
        """Stop the recognizer if its session still runs, detach the callbacks and drop the
        SDK objects (blocking; in a worker thread)."""
        try:
            if stop and self.recognizer is not None:
                if self.transcriber:
                    self.recognizer.stop_transcribing_async().get()
                else:
                    self.recognizer.stop_continuous_recognition_async().get()
        finally:
            if self.bridge is not None:
                self.bridge.disconnect()
            self.recognizer = self.stream = self.bridge = None


def build_session(sdk: Any, options: AzureOptions, plan: SessionPlan) -> _SdkSession:
    """A recognizer reading a fresh push stream (blocking; in a worker thread)."""
    try:
        if plan.audio.container is None:
            fmt = sdk.audio.AudioStreamFormat(
                samples_per_second=SAMPLE_RATE, bits_per_sample=16, channels=1
            )
        else:
            container = getattr(sdk.AudioStreamContainerFormat, plan.audio.container)
            fmt = sdk.audio.AudioStreamFormat(compressed_stream_format=container)
        stream = sdk.audio.PushAudioInputStream(stream_format=fmt)
        kwargs: dict[str, Any] = {}
        if len(plan.languages) > 1:
            kwargs["auto_detect_source_language_config"] = (
                sdk.languageconfig.AutoDetectSourceLanguageConfig(languages=list(plan.languages))
            )
        kind = sdk.transcription.ConversationTranscriber if plan.settings.speakers else (
            sdk.SpeechRecognizer
        )
        recognizer = kind(
            speech_config=speech_config(sdk, options, plan),
            audio_config=sdk.audio.AudioConfig(stream=stream),
            **kwargs,
        )
        if plan.settings.phrases:
            grammar = sdk.PhraseListGrammar.from_recognizer(recognizer)
            for phrase in plan.settings.phrases:
                grammar.addPhrase(phrase)
    except (RuntimeError, ValueError) as exc:  # the SDK's SPXERR_* come as RuntimeError
        raise ConfigError(
            f"the Speech SDK refused the settings: {sdk_message(exc, options)}"
        ) from None
    return _SdkSession(recognizer, stream, transcriber=plan.settings.speakers)


async def run_session(
    sdk: Any, options: AzureOptions, plan: SessionPlan, pool: Executor
) -> list[Segment]:
    """Recognise the plan's audio in one session; its segments with times in the source.

    Raises ``SessionError`` (transient or not) when the SDK cancels with an error or the session
    outlasts ``timeout_factor`` × its audio + ``timeout_slack`` seconds.
    """
    loop = asyncio.get_running_loop()
    session = await loop.run_in_executor(pool, build_session, sdk, options, plan)
    bridge = session.attach(loop)
    timeout = options.timeout_factor * plan.audio.duration + options.timeout_slack
    deadline = loop.time() + timeout
    segments: list[Segment] = []
    error: SessionError | None = None
    stopped = False  # the SDK ended the session itself: stopping it again would only cost time
    cancelled = False
    feeding: asyncio.Task[None] | None = None
    try:
        try:
            async with asyncio.timeout_at(deadline):
                await loop.run_in_executor(pool, session.start)
            feeding = asyncio.ensure_future(session.push(plan.audio, options.push_speed))
            feeding.add_done_callback(_retrieve)  # a failure is raised below, not logged as lost
            async for event in bridge.events(deadline - loop.time()):
                if isinstance(event, Recognized):
                    segment = to_segment(
                        event,
                        start=plan.start,
                        languages=plan.languages,
                        word_timestamps=plan.settings.word_timestamps,
                    )
                    if segment is not None:
                        segments.append(segment)
                elif isinstance(event, Canceled) and event.reason != "EndOfStream":
                    error = error or classify(event, options)  # session_stopped comes next
                elif isinstance(event, SessionStopped):
                    stopped = True
        except TimeoutError:
            raise SessionError(
                f"Timeout: the session did not end within {timeout:.0f} s",
                code="Timeout",
                transient=True,
            ) from None
        except RuntimeError as exc:  # the SDK's start failed (SPXERR_...): try again
            raise _sdk_error(exc, options) from None
        if error is not None:
            raise error
        try:
            await feeding
        except RuntimeError as exc:  # writing the stream failed: the audio is incomplete
            raise _sdk_error(exc, options) from None
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        if feeding is not None and not feeding.done():
            feeding.cancel()  # the session is abandoned: push no more
        # A session the SDK ended is released at once (about 1 s after an error). One that still
        # runs (timeout, cancellation) takes the SDK 10-20 s to stop and release: a worker
        # does that on its own, and the caller (a retry, say) does not wait for it.
        closing = pool.submit(session.close, not stopped)
        if stopped and not cancelled:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(closing), STOP_TIMEOUT)
    return segments


def sdk_message(exc: BaseException, options: AzureOptions) -> str:
    """An SDK exception's message on one line: its SPXERR line, without the native call stack."""
    text = str(exc)
    if "[CALL STACK END]" in text:
        text = text.split("[CALL STACK END]", 1)[1]
    return one_line(options.redact(text)) or type(exc).__name__


def _sdk_error(exc: BaseException, options: AzureOptions) -> SessionError:
    return SessionError(
        f"RuntimeError: {sdk_message(exc, options)}", code="RuntimeError", transient=True
    )


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a background future's exception as seen (it is raised where it matters)."""
    if not future.cancelled():
        future.exception()


def check_locales(languages: Sequence[str]) -> None:
    """Azure takes locales (``en-US``), not bare language codes; ConfigError otherwise."""
    bare = [t for t in languages if "-" not in t]
    if bare:
        raise ConfigError(
            f"Azure Speech needs locales such as en-US or es-MX, not {', '.join(bare)}"
        )
