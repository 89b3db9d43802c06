"""Decoding any audio or video as a stream of PCM chunks (PyAV: FFmpeg inside the wheel).

``open_audio(source)`` yields :class:`Chunk` s at 16 kHz mono float32 by default, resampled
once, with exact frame positions; ``load`` gathers a short clip into an :class:`Audio`;
``probe`` reads what a source holds. Bad input raises :class:`voxflow.errors.InputError` or
:class:`voxflow.errors.DecodeError` with a one-line message naming the source.
"""

from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.audio.sources import read_bytes, source_name
from voxflow.audio.stream import DTYPES, AudioStream, load, open_audio, probe
from voxflow.audio.types import RAW_FORMATS, Audio, AudioInfo, Chunk, RawPcm, max_amplitude

__all__ = [
    "DTYPES",
    "RAW_FORMATS",
    "SAMPLE_RATE",
    "Audio",
    "AudioInfo",
    "AudioStream",
    "Chunk",
    "RawPcm",
    "load",
    "max_amplitude",
    "open_audio",
    "probe",
    "read_bytes",
    "source_name",
]
