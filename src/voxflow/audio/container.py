"""A container FFmpeg demuxes and decodes (PyAV): its best audio stream, packet by packet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import av
import av.logging

from voxflow.audio import lengths
from voxflow.audio.types import AudioInfo
from voxflow.errors import DecodeError, InputError, VoxflowError

# FFmpeg's own log lines must never reach the terminal: keep PyAV's silent callback installed.
if av.logging.get_level() is None:
    av.logging.set_level(None)

#: Codecs that store 24-bit samples in 32-bit frames.
_INT24_CODECS = ("pcm_s24le", "pcm_s24be", "pcm_s24daud", "flac", "alac", "wavpack", "tta")
#: Image formats FFmpeg opens as one-frame videos.
_IMAGE_CODECS = {"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpeg2000", "qoi"}
_MAX_BAD_PACKETS = 16  # corrupt packets bridged with silence before the input counts as corrupt


def cause(exc: BaseException) -> str:
    """One line describing an FFmpeg or OS error."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


class ContainerSource:
    """Decoded frames of a file, file object or raw PCM, in the decoder's own format.

    ``frames()`` yields ``av.AudioFrame`` s, and an ``int`` count of frames for a corrupt
    packet it bridged with silence, so positions after it stay true. ``owned`` is a file
    opened for this source alone (a named pipe), closed with it.
    """

    def __init__(
        self,
        target: Any,
        name: str,
        *,
        format: str | None = None,
        options: dict[str, str] | None = None,
        native_width: int | None = None,
        owned: BinaryIO | None = None,
    ) -> None:
        self.name = name
        self._target = target[5:] if isinstance(target, str) else target
        self._owned = owned
        try:
            try:
                self.container = av.open(
                    target, "r", format=format, options=options or {}, metadata_errors="ignore"
                )
            except av.error.FFmpegError as exc:
                raise self._open_error(exc) from None
            except OSError as exc:  # raised by a Python file object's read
                raise InputError(f"cannot read: {cause(exc)}", source=name) from None
            try:
                self._setup(native_width)
            except BaseException:
                self.container.close()
                raise
        except BaseException:
            if owned is not None:
                owned.close()
            raise

    def _open_error(self, exc: av.error.FFmpegError) -> VoxflowError:
        if isinstance(exc, av.error.PermissionError):
            return InputError("permission denied", source=self.name)
        if isinstance(exc, av.error.FileNotFoundError):
            return InputError("no such file", source=self.name)
        if isinstance(exc, av.error.IsADirectoryError):
            return InputError("is a directory, not an audio file", source=self.name)
        if getattr(self._target, "bytes_read", None) == 0:  # a pipe that gave nothing
            return DecodeError("empty input (0 bytes)", source=self.name)
        if isinstance(exc, av.error.InvalidDataError | av.error.EOFError):
            return DecodeError("not a recognised audio or video format", source=self.name)
        return DecodeError(f"cannot open: {cause(exc)}", source=self.name)

    def _setup(self, native_width: int | None) -> None:
        streams = self.container.streams
        if not streams.audio:
            raise DecodeError(_no_audio(self.container), source=self.name)
        self.stream = streams.best("audio") or streams.audio[0]
        cc = self.stream.codec_context
        if cc is None:
            raise DecodeError("no decoder for this audio codec", source=self.name)
        rate, channels = int(cc.sample_rate or 0), int(cc.channels or 0)
        if rate <= 0 or channels <= 0:
            raise DecodeError(
                f"audio without a sample rate or channels ({cc.name})", source=self.name
            )
        codec = str(cc.name)
        width = native_width or _native_width(codec, cc.format.name if cc.format else "s16")
        duration: float | None = None
        if self.stream.duration is not None and self.stream.time_base is not None:
            duration = float(self.stream.duration * self.stream.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / av.time_base
        container = self.container.format.name
        self.info = AudioInfo(
            self.name, rate, channels, width, codec, duration, container.split(",")[0]
        )
        self._declare_length(container, codec, duration)

    def _declare_length(self, container: str, codec: str, duration: float | None) -> None:
        """Set ``declared_frames``/``exact_length``; a WAV missing data fails right here."""
        rate = self.info.sample_rate
        self.exact_length = lengths.is_exact(container, codec)
        self.declared_frames: int | None = None
        if duration is not None and (self.exact_length or container in lengths.RELIABLE):
            self.declared_frames = round(duration * rate)
        if container == "wav":
            sizes = lengths.wav_data_frames(self._target)
            if sizes is not None and lengths.is_short(sizes[1], sizes[0], rate):
                raise DecodeError(
                    f"truncated: {sizes[1] / rate:.2f} s of audio where the header declares "
                    f"{sizes[0] / rate:.2f} s",
                    source=self.name,
                )

    def frames(self) -> Iterator[av.AudioFrame | int]:
        """Decoded frames; too many corrupt packets raise :class:`DecodeError` with the time."""
        bad, good, pts = 0, 0, None
        time_base = self.stream.time_base

        def where() -> float:  # seconds of the last packet, computed only for a message
            return float(pts * time_base) if pts is not None and time_base else 0.0

        try:
            for packet in self.container.demux(self.stream):
                pts = packet.pts
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    bad += 1
                    if bad > _MAX_BAD_PACKETS or (good == 0 and bad > 2):
                        raise DecodeError(
                            f"corrupt audio data near {where():.2f} s: {cause(exc)}",
                            source=self.name,
                        ) from None
                    if packet.duration and packet.time_base is not None:
                        yield round(packet.duration * packet.time_base * self.info.sample_rate)
                    continue
                for frame in decoded:
                    good += 1
                    yield frame
        except av.error.FFmpegError as exc:
            raise DecodeError(
                f"corrupt or truncated data near {where():.2f} s: {cause(exc)}", source=self.name
            ) from None
        except OSError as exc:
            raise InputError(f"read failed: {cause(exc)}", source=self.name) from None

    def close(self) -> None:
        self.container.close()
        if self._owned is not None:
            self._owned.close()


def _no_audio(container: Any) -> str:
    """Why a container without audio streams is not audio, in a few words."""
    video = container.streams.video
    if not video:
        return "no audio stream"
    codec = video[0].codec_context.name if video[0].codec_context else ""
    if codec in _IMAGE_CODECS:
        return f"an image ({codec}), not audio"
    return "no audio stream (the file holds only video)"


def _native_width(codec: str, sample_fmt: str) -> int:
    """Bytes per sample at the source's own width, following pydub's choices."""
    base = sample_fmt.rstrip("p")
    if base == "u8":
        return 1
    if base == "s16":
        return 2
    if base == "s32":
        return 3 if codec.startswith(_INT24_CODECS) else 4
    if base in ("flt", "dbl", "s64"):
        # Lossless float PCM keeps 32 bits; lossy codecs (MP3, AAC...) decode to 16-bit like pydub.
        return 4 if codec.startswith("pcm_") else 2
    return 2
