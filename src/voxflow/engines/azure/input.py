"""What goes into a session's ``PushAudioInputStream``: voxflow's PCM, or a file's own bytes.

PCM (the default) is 16 kHz mono 16-bit, from voxflow's decoding: no GStreamer and no temporary
file. Compressed input sends the original MP3, OGG/Opus, FLAC or A-law / mu-law WAV bytes for
the SDK to decode with GStreamer; such a stream cannot be cut at silences without re-encoding,
so the whole file is one session.
"""

from __future__ import annotations

import ctypes.util
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxflow.audio import SAMPLE_RATE, probe, read_bytes
from voxflow.errors import ConfigError

CHUNK_SECONDS = 0.5  # audio written to the push stream at a time

# (container, codec) → the SDK's AudioStreamContainerFormat member.
_COMPRESSED = {
    ("mp3", "mp3"): "MP3",
    ("mp3", "mp3float"): "MP3",
    ("ogg", "opus"): "OGG_OPUS",
    ("flac", "flac"): "FLAC",
    ("wav", "pcm_alaw"): "ALAW",
    ("wav", "pcm_mulaw"): "MULAW",
}
SUPPORTED_COMPRESSED = "MP3, OGG/Opus, FLAC, A-law WAV and mu-law WAV"


def pcm16(samples: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] as little-endian 16-bit PCM (exact for audio decoded from it)."""
    scaled = np.clip(np.rint(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767)
    return scaled.astype("<i2").tobytes()


@dataclass(frozen=True, eq=False)
class SessionAudio:
    """One session's audio and how the SDK must read it.

    PCM: ``samples`` (float32, 16 kHz mono), turned into 16-bit as they are pushed, so no second
    copy of a long session is held. Compressed: the file's ``data`` and the SDK's ``container``
    format name (``MP3``, ``OGG_OPUS``...).
    """

    duration: float  # seconds of audio (an estimate for compressed input)
    samples: np.ndarray | None = None
    data: bytes = b""
    container: str | None = None

    def chunks(self) -> Iterator[tuple[bytes, float]]:
        """The bytes to push in pieces of about CHUNK_SECONDS, each with the second of audio it
        ends at (for compressed data, estimated from the average bitrate)."""
        if self.samples is not None:
            step = int(CHUNK_SECONDS * SAMPLE_RATE)
            total = len(self.samples)
            for i in range(0, total, step):
                yield pcm16(self.samples[i : i + step]), min(i + step, total) / SAMPLE_RATE
            return
        size = len(self.data)
        per_second = size / max(self.duration, 1e-3)
        step = max(1, int(per_second * CHUNK_SECONDS))
        for i in range(0, size, step):
            yield self.data[i : i + step], min(i + step, size) / per_second


# The GStreamer elements the SDK's codec extension builds its decoding from (they are named in
# its libMicrosoft.CognitiveServices.Speech.extension.codec.so): appsrc ! <parser or demuxer> !
# <decoder> ! audioconvert ! audioresample ! appsink, for each format voxflow passes through.
_SDK_ELEMENTS = {
    "every format": ("appsrc", "appsink", "audioconvert", "audioresample"),  # plugins-base
    "MP3": ("mpegaudioparse", "mpg123audiodec"),  # plugins-good (mpg123 in -ugly before 1.14)
    "OGG/Opus": ("oggdemux", "opusparse", "opusdec"),  # base, bad, base
    "FLAC": ("flacparse", "flacdec"),  # plugins-good
    "A-law WAV": ("wavparse", "alawdec"),  # plugins-good
    "mu-law WAV": ("wavparse", "mulawdec"),  # plugins-good
}
_GSTREAMER_HINT = (
    "install its plugins (e.g. apt-get install gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly) or let "
    "voxflow decode (drop --azure-compressed)"
)


def gstreamer_problem() -> str | None:
    """Why the SDK cannot decode compressed input here, in one line (None: it can).

    The SDK makes its decoders with ``gst_element_factory_make``, so this asks the same GStreamer
    registry (through ctypes) for each element it uses: the registry knows every plugin folder
    GStreamer searches (``GST_PLUGIN_PATH`` too) and which plugins really load, where looking
    for plugin files would guess at both.
    """
    name = ctypes.util.find_library("gstreamer-1.0")
    if name is None:
        return f"compressed input needs GStreamer, which is not installed: {_GSTREAMER_HINT}"
    try:
        gst = ctypes.CDLL(name)
    except OSError as exc:
        return f"compressed input needs GStreamer, which does not load ({exc}): {_GSTREAMER_HINT}"
    gst.gst_init_check.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    gst.gst_element_factory_find.argtypes = [ctypes.c_char_p]
    gst.gst_element_factory_find.restype = ctypes.c_void_p
    gst.gst_object_unref.argtypes = [ctypes.c_void_p]
    if not gst.gst_init_check(None, None, None):
        return f"compressed input needs GStreamer, which fails to start: {_GSTREAMER_HINT}"

    def found(element: str) -> bool:
        factory = gst.gst_element_factory_find(element.encode())
        if factory:
            gst.gst_object_unref(factory)
        return bool(factory)

    missing = {
        fmt: absent
        for fmt, elements in _SDK_ELEMENTS.items()
        if (absent := [e for e in elements if not found(e)])
    }
    if not missing:
        return None
    listed = "; ".join(f"{', '.join(absent)} ({fmt})" for fmt, absent in missing.items())
    return (
        f"compressed input needs GStreamer's plugins, and the SDK's elements {listed} are "
        f"missing: {_GSTREAMER_HINT}"
    )


def compressed_audio(source: Any, name: str) -> SessionAudio:
    """The source's own bytes with their SDK container format; ConfigError for other formats.

    Read and probed through the audio layer, so a bad file fails in its words. Runs in a
    worker thread (it reads the whole file: compressed audio is small, ~30 MB/hour).
    """
    data = read_bytes(source, name)
    info = probe(data, name=name)
    member = _COMPRESSED.get((info.container, info.codec))
    if member is None:
        raise ConfigError(
            f"--azure-compressed sends {SUPPORTED_COMPRESSED} as they are; this is "
            f"{info.codec} in {info.container}: drop --azure-compressed and voxflow decodes it",
            source=name,
        )
    # No declared duration: bound it by a low bitrate (8 kbit/s).
    duration = info.duration if info.duration is not None else len(data) / 1000.0
    return SessionAudio(duration, data=data, container=member)
