"""Any accepted source, opened: decoded PyAV frames in the source's own format, plus its info.

Paths, file-like objects (pipes too), bytes, ``"-"`` for stdin and :class:`RawPcm` go through
FFmpeg (PyAV), which recognises the format by content, not by extension; a named pipe waits at
most :data:`FIFO_WAIT` seconds for a program to open it for writing. Numpy arrays,
:class:`Audio` and ``pydub.AudioSegment`` are already samples and are cut into frames directly.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import av
import numpy as np

from voxflow.audio.container import ContainerSource
from voxflow.audio.types import INT_DTYPES, RAW_FORMATS, Audio, AudioInfo, RawPcm
from voxflow.errors import ConfigError, DecodeError, InputError

_ARRAY_BLOCK = 1 << 15  # frames per AudioFrame cut from in-memory samples
#: Seconds a named pipe may wait for a writer; opening one blocks until a program opens it for
#: writing, so a pipe nobody writes to would otherwise hold the command for good.
FIFO_WAIT = 10.0


class Source(Protocol):
    """An opened input: its info, its decoded frames, and what its header promises."""

    info: AudioInfo
    declared_frames: int | None  # frame count the header declares, if it is trustworthy
    exact_length: bool  # whether that count is exact (WAV, FLAC) or a container's estimate

    def frames(self) -> Iterator[av.AudioFrame | int]: ...  # an int: frames lost to corruption
    def close(self) -> None: ...


def source_name(source: Any) -> str:
    """The name messages use for ``source``: its path, or a ``<kind>`` placeholder."""
    if isinstance(source, str | os.PathLike):
        path = os.fsdecode(source)
        return "<stdin>" if path == "-" else path
    if isinstance(source, bytes | bytearray | memoryview):
        return "<bytes>"
    if isinstance(source, RawPcm):
        return source_name(source.data) if not hasattr(source.data, "read") else "<raw pcm>"
    if isinstance(source, Audio):
        return source.name
    if isinstance(source, np.ndarray | tuple):
        return "<array>"
    if type(source).__name__ == "AudioSegment":
        return "<AudioSegment>"
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return name
    return "<stream>"


def open_source(source: Any, name: str | None = None) -> Source:
    """Open ``source`` for decoding; bad input raises InputError or DecodeError."""
    name = name or source_name(source)
    if isinstance(source, Audio):
        return ArraySource(source.samples, source.sample_rate, source.sample_width, name)
    if type(source).__name__ == "AudioSegment" and hasattr(source, "raw_data"):
        audio = Audio.from_pydub(source, name)
        return ArraySource(audio.samples, audio.sample_rate, audio.sample_width, name)
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], np.ndarray):
        audio = Audio(source[0], int(source[1]), name=name)
        return ArraySource(audio.samples, audio.sample_rate, audio.sample_width, name)
    if isinstance(source, np.ndarray):
        raise ConfigError(
            "a numpy array needs its sample rate: pass (array, rate) or an Audio", source=name
        )
    if isinstance(source, RawPcm):
        options = {"sample_rate": str(source.sample_rate), "ch_layout": _layout(source.channels)}
        target = _target(source.data, name)
        return ContainerSource(
            target,
            name,
            format=source.sample_format,
            options=options,
            native_width=RAW_FORMATS[source.sample_format],
            owned=target if isinstance(target, _NamedPipe) else None,
        )
    target = _target(source, name)
    return ContainerSource(target, name, owned=target if isinstance(target, _NamedPipe) else None)


def read_bytes(source: Any, name: str | None = None) -> bytes:
    """All of ``source``'s bytes as they are (a path, ``"-"``, a file-like object or bytes),
    with the checks and messages of decoding: for an engine that sends the file itself."""
    name = name or source_name(source)
    target = _target(source, name)
    if isinstance(target, io.BytesIO):
        return target.getvalue()
    if isinstance(target, str):
        try:
            return Path(target.removeprefix("file:")).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", source=name) from None
    try:
        return bytes(target.read() or b"")
    finally:
        if isinstance(target, _NamedPipe):  # a pipe opened here is closed here
            target.close()


def _target(data: Any, name: str) -> Any:
    """What ``av.open`` gets: a ``file:`` URL for paths, a file object for everything else."""
    if isinstance(data, bytes | bytearray | memoryview):
        if len(data) == 0:
            raise DecodeError("empty input (0 bytes)", source=name)
        return io.BytesIO(bytes(data))
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if path == "-":
            stdin = sys.stdin.buffer if sys.stdin is not None else None
            if stdin is None:
                raise InputError("no standard input to read", source=name)
            if stdin.isatty():  # reading would wait for a person to type audio
                raise InputError("standard input is a terminal: pipe audio into it", source=name)
            return _reader(stdin, name)
        return _checked_path(path, name)
    if hasattr(data, "read"):
        return _reader(data, name)
    raise ConfigError(f"cannot read audio from a {type(data).__name__}", source=name)


def _checked_path(path: str, name: str) -> str:
    """A readable, non-empty file's ``file:`` URL (so a ``:`` in a name is not a protocol)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError("no such file", source=name) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=name) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError("is a directory, not an audio file", source=name)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", source=name)
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        raise DecodeError("empty file (0 bytes)", source=name)
    if stat.S_ISFIFO(info.st_mode):
        return _open_fifo(path, name)
    return "file:" + os.path.abspath(path)


def _open_fifo(path: str, name: str) -> _NamedPipe:
    """A named pipe opened for reading once a writer opens it, within :data:`FIFO_WAIT` s.

    The blocking open runs in a helper thread; when no writer comes in time, the thread is
    released by opening the pipe for writing for a moment, and InputError says why.
    """
    opened: list[int] = []
    failed: list[OSError] = []

    def wait_for_writer() -> None:
        try:
            opened.append(os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        except OSError as exc:
            failed.append(exc)

    waiter = threading.Thread(target=wait_for_writer, name="voxflow-fifo-open", daemon=True)
    waiter.start()
    waiter.join(FIFO_WAIT)
    if waiter.is_alive():
        with contextlib.suppress(OSError):  # the pipe is gone: the open has ended anyway
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        waiter.join()
        for fd in opened:
            os.close(fd)
        raise InputError(f"a named pipe with no writer (waited {FIFO_WAIT:g} s for one)",
                         source=name)  # fmt: skip
    if failed:
        raise InputError(f"cannot read: {failed[0].strerror or failed[0]}", source=name)
    return _NamedPipe(os.fdopen(opened[0], "rb"))


def _reader(f: Any, name: str) -> Any:
    """``f`` itself when it can seek (and is not empty), else a wrapper without ``seek``, so
    FFmpeg reads it as the pipe it is."""
    try:
        seekable = bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if not seekable:
        return _ReadOnly(f)
    try:
        here = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(here)
    except (OSError, ValueError):
        return f
    if end <= here:
        raise DecodeError("empty input (0 bytes)", source=name)
    return f


class _ReadOnly:
    """A read-only view of a stream without ``seek``, so FFmpeg treats it as a pipe. A
    buffered pipe is read with ``read1`` (what has come, up to ``n``), so that live audio is
    decoded as it arrives, not once FFmpeg's whole read buffer has filled; ``read()`` reads
    to the end."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._read = getattr(f, "read1", f.read)
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        data = (self._read(n) if n >= 0 else self._f.read()) or b""  # -1: all, to the end
        self.bytes_read += len(data)
        return data

    def readable(self) -> bool:
        return True


class _NamedPipe(_ReadOnly):
    """A named pipe voxflow opened itself: its source closes it."""

    def close(self) -> None:
        self._f.close()


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


class ArraySource:
    """Samples already in memory, cut into PyAV frames so they share the one resampling path."""

    declared_frames: int | None = None
    exact_length = True

    def __init__(self, samples: np.ndarray, sample_rate: int, sample_width: int, name: str) -> None:
        self.name = name
        self.samples = samples
        self.rate = sample_rate
        self.width = sample_width
        kind = samples.dtype
        self._format, self._convert = _array_format(kind, sample_width)
        self.info = AudioInfo(
            name,
            sample_rate,
            samples.shape[1],
            sample_width if sample_width else 4,
            f"pcm/{kind}",
            samples.shape[0] / sample_rate,
        )

    def frames(self) -> Iterator[av.AudioFrame]:
        layout = _layout(self.samples.shape[1])
        for pos in range(0, self.samples.shape[0], _ARRAY_BLOCK):
            block = self._convert(self.samples[pos : pos + _ARRAY_BLOCK])
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block).reshape(1, -1), format=self._format, layout=layout
            )
            frame.sample_rate = self.rate
            frame.pts = pos
            frame.time_base = Fraction(1, self.rate)
            yield frame

    def close(self) -> None:
        self.samples = self.samples[:0]


def _array_format(dtype: np.dtype[Any], width: int) -> tuple[str, Any]:
    """The PyAV packed sample format for in-memory samples, and the conversion to it."""
    if dtype.kind == "f":
        if dtype.itemsize == 8:
            return "dbl", lambda x: x.astype(np.float64, copy=False)
        return "flt", lambda x: x.astype(np.float32, copy=False)
    if width == 1:
        return "u8", lambda x: (x.astype(np.int16) + 128).astype(np.uint8)
    if width == 2:
        return "s16", lambda x: x.astype(np.int16, copy=False)
    if width == 3:
        return "s32", lambda x: x.astype(np.int32) << 8
    return "s32", lambda x: x.astype(INT_DTYPES[4], copy=False)
