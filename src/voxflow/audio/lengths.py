"""How long a source says it is, so a stream that ends early is reported, not silently cut.

FFmpeg clamps a WAV's data size to the bytes present, so WAV headers are read here; other
containers' durations come from FFmpeg and are trusted only where they are exact.
"""

from __future__ import annotations

import os
import stat
import struct
from typing import Any

#: (container, codec) pairs whose header states the exact frame count.
EXACT = {("wav", "*"), ("flac", "flac"), ("wv", "wavpack"), ("tta", "tta")}
#: Containers whose declared duration is reliable to a few percent (not MP3/ADTS estimates).
RELIABLE = {"ogg", "matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "aiff", "caf", "w64", "wav", "flac"}


def is_exact(container: str, codec: str) -> bool:
    return (container, codec) in EXACT or (container, "*") in EXACT


def is_short(got: int, declared: int, rate: int, *, exact: bool = True) -> bool:
    """Whether ``got`` frames fall short of ``declared``: by 10 ms and 0.2 % for an exact
    header, by 0.5 s and 5 % for a container's estimate."""
    if exact:
        return declared - got > max(rate // 100, declared // 500)
    return declared - got > max(rate // 2, declared // 20)


def wav_data_frames(target: Any) -> tuple[int, int] | None:
    """(frames the WAV's data chunk declares, frames present), or None if unknown.

    ``target`` is a path or a seekable binary file, whose position is restored.
    """
    try:
        if isinstance(target, str):
            if not stat.S_ISREG(os.stat(target).st_mode):
                return None  # a pipe or device: opening it again would block
            with open(target, "rb") as f:
                return _scan(f)
        position = target.tell()
        try:
            target.seek(0)
            return _scan(target)
        finally:
            target.seek(position)
    except (OSError, ValueError, AttributeError):
        return None


def _scan(f: Any) -> tuple[int, int] | None:
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        return None
    block = 0
    for _ in range(64):  # a WAV has a handful of chunks before its data
        header = f.read(8)
        if len(header) < 8:
            return None
        kind, size = header[:4], struct.unpack("<I", header[4:])[0]
        if kind == b"fmt ":
            fmt = f.read(size + (size & 1))
            block = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else 0
        elif kind == b"data":
            if not block or size in (0, 0xFFFFFFFF):  # unknown size: a streamed WAV
                return None
            here = f.tell()
            end = f.seek(0, os.SEEK_END)
            return size // block, max(end - here, 0) // block
        else:
            f.seek(size + (size & 1), os.SEEK_CUR)
    return None
