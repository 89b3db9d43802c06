"""``voxflow listen``: live transcription of a microphone or of audio on stdin.

The audio, decoded once to 16 kHz mono float32, goes both to the pipeline's ``stream`` (VAD
clips, the final phrases) and to the server's :class:`InterimDecoder` (partial decodes of what
no phrase covers yet), the two halves of a server turn. Interim text is redrawn in place on a
terminal and printed as ``... text`` lines otherwise; each final phrase is one line with its
times. ``-o FILE`` is rewritten atomically after every phrase, so it is always a whole SRT,
VTT, JSON or TXT of the phrases so far. Ctrl-C stops the input; what was heard is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from voxflow.audio import RawPcm, open_audio
from voxflow.engines import DecodeSettings, create_engine
from voxflow.engines.base import SAMPLE_RATE, Engine
from voxflow.engines.whisper import WhisperOptions
from voxflow.errors import ConfigError
from voxflow.formats import format_timestamp, render
from voxflow.handoff import Handoff
from voxflow.languages import LanguagePlan
from voxflow.outputs import write_atomic
from voxflow.pipeline import (
    LIVE_CHUNK,
    LIVE_MAX_PHRASE,
    LIVE_PAUSE,
    LiveSegmentation,
    TranscribeOptions,
    stream,
)
from voxflow.server.interim import FLOAT_MONO, Hypothesis, InterimDecoder, PartialDecoder
from voxflow.server.pipe import AudioPipe
from voxflow.transcript import Segment, Transcript

from . import options as opt
from .app import app

EXTRA = "voxflow[listen]"
_END = object()  # the input has ended
MIC_BLOCK = 0.1  # seconds of microphone audio per block
MIC_BACKLOG = 60.0  # seconds of microphone audio that may wait for recognition, at most


class Display:
    """Interim text redrawn on one terminal line (or ``... text`` lines), finals with times."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._drawn = False

    def interim(self, text: str) -> None:
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            shown = text if len(text) <= width else "…" + text[-(width - 1) :]
            self.out.write("\r\x1b[K" + shown)
            self._drawn = True
        else:
            self.out.write(f"... {text}\n")
        self.out.flush()

    def final(self, segment: Segment) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False
        start, end = format_timestamp(segment.start, "."), format_timestamp(segment.end, ".")
        self.out.write(f"[{start} --> {end}] {segment.text.strip()}\n")
        self.out.flush()


class Listener:
    """One live session: feeds audio bytes to the pipeline and the interim decoder, shows and
    saves the phrases."""

    def __init__(
        self,
        engine: Engine,
        options: TranscribeOptions,
        display: Display,
        *,
        output: Path | None,
        interval: float,
        name: str,
    ) -> None:
        self.engine, self.options, self.display = engine, options, display
        self.output, self.name = output, name
        self.pipe = AudioPipe()
        self.partial = PartialDecoder(engine, options.languages, options.decode)
        self.interim = InterimDecoder(
            FLOAT_MONO, start=0.0, interval=interval, gate=asyncio.Semaphore(1),
            decode=self.partial, send=self._hypothesis,
        )  # fmt: skip
        self.segments: list[Segment] = []
        self.heard = 0.0  # seconds of audio fed

    async def feed(self, data: bytes) -> None:
        self.interim.feed(data)
        self.heard += len(data) / (4 * SAMPLE_RATE)
        await self.pipe.write(data)

    async def end(self) -> None:
        """No more audio: the interim stops, the pipeline finishes what it holds."""
        await self.interim.aclose()
        self.pipe.close()

    async def phrases(self) -> None:
        """The pipeline's final phrases, as they come."""
        source = RawPcm(self.pipe, SAMPLE_RATE, 1, "f32le")
        async for segment in stream(
            source, engine=self.engine, options=self.options, name=self.name
        ):
            self.interim.advance(segment.end)
            self.partial.decided(segment.language)
            self.segments.append(segment)
            self.display.final(segment)
            self.save()

    def save(self) -> None:
        if self.output is None:
            return
        language = self.segments[0].language if self.segments else None
        transcript = Transcript(self.name, self.heard, tuple(self.segments), language)
        write_atomic(self.output, render(transcript, self.output.suffix.lstrip(".").lower()),
                     overwrite=True)  # fmt: skip

    async def _hypothesis(self, hyp: Hypothesis) -> None:
        self.display.interim(hyp.text)


def _start_stdin(queue: Handoff[Any], raw: RawPcm | None) -> threading.Thread:
    """Decode stdin in a thread (raw PCM as declared, else whatever FFmpeg finds there), in
    the pipeline's live chunks (larger ones would hold each chunk's audio back until it is
    whole); the queue's bound holds the thread back when recognition is slower than the
    input."""

    def run() -> None:
        item: object = _END
        try:
            with open_audio(raw or "-", chunk_frames=round(LIVE_CHUNK * SAMPLE_RATE)) as audio:
                for chunk in audio:
                    if not queue.put(chunk.samples.tobytes()):
                        return  # Ctrl-C, or the pipeline failed
        except BaseException as exc:  # raised again on the loop
            item = exc
        queue.put(item)

    thread = threading.Thread(target=run, name="voxflow-listen-stdin", daemon=True)
    thread.start()
    return thread


def _sounddevice() -> Any:
    """The sounddevice module, or a ConfigError naming the extra that installs it."""
    try:
        import sounddevice
    except (ImportError, OSError) as exc:  # OSError: the PortAudio library itself is missing
        raise ConfigError(
            f"--device needs the {EXTRA} extra (pip install '{EXTRA}'): {exc}"
        ) from None
    return sounddevice


def _start_microphone(
    loop: asyncio.AbstractEventLoop, queue: Handoff[Any], device: int
) -> Any:
    """Start input ``device`` through PortAudio at 16 kHz mono float32 (``voxflow[listen]``);
    its blocks go into ``queue``. PortAudio's callback must not wait, so when recognition falls
    ``MIC_BACKLOG`` seconds behind the microphone the input ends with that error instead of
    holding ever more audio in memory (what was recognised is kept)."""
    sounddevice = _sounddevice()
    most = round(MIC_BACKLOG / MIC_BLOCK)
    overrun = False

    def offer(block: bytes) -> None:  # on the loop
        nonlocal overrun
        if overrun:
            return
        if queue.qsize() >= most:
            overrun = True
            block = ConfigError(  # type: ignore[assignment]
                f"microphone {device}: recognition fell {MIC_BACKLOG:g} s behind the input "
                "(try a smaller --model or --beam-size 1)"
            )
        queue.put_nowait(block)

    def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
        loop.call_soon_threadsafe(offer, bytes(indata))

    try:
        mic = sounddevice.RawInputStream(
            samplerate=SAMPLE_RATE, channels=1, dtype="float32", device=device,
            blocksize=round(MIC_BLOCK * SAMPLE_RATE), callback=callback,
        )
        mic.start()
    except Exception as exc:  # PortAudioError, ValueError: no such device, or busy
        raise ConfigError(f"microphone {device}: {exc}") from None
    return mic


async def _session(
    make: Callable[[], Listener], device: int | None, raw: RawPcm | None
) -> threading.Thread | None:
    """Listen until the input ends or Ctrl-C; the stdin thread, if any, is returned."""
    loop = asyncio.get_running_loop()
    listener = make()  # its pipe belongs to this loop
    queue: Handoff[Any] = Handoff(0 if device is not None else 16)
    mic = _start_microphone(loop, queue, device) if device is not None else None
    reader = _start_stdin(queue, raw) if mic is None else None
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    phrases = asyncio.ensure_future(listener.phrases())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, stopping, phrases}, return_when="FIRST_COMPLETED")
            if not getter.done():  # Ctrl-C, or the pipeline failed
                getter.cancel()
                break
            item = getter.result()
            if item is _END:
                break
            if isinstance(item, BaseException):  # the input failed: that is the error to tell
                phrases.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await phrases
                raise item
            await listener.feed(item)
    finally:
        queue.close()
        stopping.cancel()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts for good
        if mic is not None:
            mic.close()
        await listener.end()
    await phrases  # the last phrases, then any error of the pipeline
    return reader


@app.command()
def listen(
    source: Annotated[
        str | None, typer.Argument(help="- to read audio from stdin (or use --device).")
    ] = None,
    device: Annotated[
        int | None,
        typer.Option("--device", help=f"Microphone: PortAudio input device number ({EXTRA})."),
    ] = None,
    rate: Annotated[
        int | None, typer.Option(help="Stdin is raw PCM at this sample rate (Hz).")
    ] = None,
    channels: Annotated[int, typer.Option(help="Raw PCM channels.")] = 1,
    sample_format: Annotated[
        str, typer.Option("--format", help="Raw PCM sample format: s16le, f32le, mulaw …")
    ] = "s16le",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Keep FILE.srt/.vtt/.json/.txt of the phrases."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output file.")] = False,
    model: opt.Model = None,
    languages: opt.Languages = None,
    lid: opt.Lid = "at-start",
    language: opt.Language = None,
    vad: opt.Vad = "silero",
    beam_size: Annotated[int, typer.Option(help="Beam width of the final phrases.")] = 5,
    task: opt.Task = "transcribe",
    word_timestamps: Annotated[bool, typer.Option(help="Word times in --output.")] = True,
    phrase: opt.Phrase = None,
    interim_interval: Annotated[
        float, typer.Option(help="Seconds of new audio between interim decodes.")
    ] = 1.0,
    pause: Annotated[
        float, typer.Option(help="Seconds of non-speech that end a phrase (its final text).")
    ] = LIVE_PAUSE,
    max_phrase: Annotated[
        float, typer.Option(help="Longest phrase in seconds: longer speech is cut.")
    ] = LIVE_MAX_PHRASE,
    compute: Annotated[str, typer.Option(help="Model device: cpu, cuda or auto.")] = "auto",
) -> None:
    """Transcribe live: a microphone (--device N) or audio on stdin (-), raw PCM with --rate.

    Interim text shows what is being said; each phrase, once final, is a line with its times.
    Ctrl-C stops listening and prints the last phrases.
    """
    if source not in (None, "-"):
        raise ConfigError(f"listen reads - (stdin) or --device N, not {source!r}")
    if (source == "-") == (device is not None):
        raise ConfigError("give - (audio on stdin) or --device N (a microphone), one of them")
    if not interim_interval > 0:
        raise ConfigError(f"--interim-interval must be positive, got {interim_interval:g}")
    if device is not None:
        if rate is not None:
            raise ConfigError("--rate/--channels/--format describe stdin, not a microphone")
        _sounddevice()  # a missing extra fails before the model loads
    elif sys.stdin is None or sys.stdin.isatty():
        raise ConfigError("listen -: stdin is a terminal, not audio; pipe audio in")
    raw = RawPcm(sys.stdin.buffer, rate, channels, sample_format) if rate is not None else None
    if output is not None:
        render(Transcript("", 0.0), output.suffix.lstrip(".").lower())  # a known format?
        if output.exists() and not overwrite:
            raise ConfigError(f"{output}: already exists (use --overwrite to replace it)")
    options = TranscribeOptions(
        languages=LanguagePlan.parse(languages or (), forced=language, lid=lid),
        vad=vad,  # type: ignore[arg-type]
        decode=DecodeSettings(
            beam_size, word_timestamps, tuple(phrase or ()), task=task  # type: ignore[arg-type]
        ),
        live=LiveSegmentation(pause=pause, max_phrase=max_phrase),
    )
    engine = create_engine(WhisperOptions(model=model, device=compute))
    name = "<stdin>" if device is None else f"<microphone {device}>"
    make = functools.partial(
        Listener, engine, options, Display(sys.stdout), output=output,
        interval=interim_interval, name=name,
    )  # fmt: skip
    reader = asyncio.run(_session(make, device, raw))
    if reader is not None and reader.is_alive():
        # Ctrl-C came while the thread waits on stdin, which cannot be woken: everything is
        # printed and saved, so leave without waiting for it (interpreter shutdown would).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
