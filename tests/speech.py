"""Test helper: real synthetic speech (libespeak-ng from the ``espeakng-loader`` wheel, resampled
by PyAV) with pauses of known length. No espeak-ng or sox program is needed.
"""

from __future__ import annotations

import ctypes
import functools
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

RATE = 16000
# espeak-ng's API (speak_lib.h): output mode, init option, parameter and synth flags.
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Synth returns when all audio has reached the callback
_DONT_EXIT = 0x8000  # report errors instead of exiting the process
_RATE_PARAMETER = 1  # espeakRATE: words per minute
_CHARS_UTF8, _ENDPAUSE = 0x1, 0x1000  # the CLI ends the text with a sentence pause too
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@functools.cache
def _espeak() -> tuple[ctypes.CDLL, int]:
    """The wheel's libespeak-ng, initialised once for synchronous output, and its sample rate."""
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    data = espeakng_loader.get_data_path().encode()
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _DONT_EXIT)
    assert rate > 0, f"libespeak-ng did not start (data in {data.decode()})"
    return lib, rate


def espeak(text: str, *, voice: str = "en", wpm: int = 175) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng as ``espeak-ng -v VOICE -s WPM`` says it: int16 samples at
    the library's own rate (22050 Hz), and that rate."""
    lib, rate = _espeak()
    pieces: list[np.ndarray] = []

    def collect(wav: ctypes.Array, count: int, events: int) -> int:
        if wav and count > 0:
            pieces.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0  # go on

    callback = _SynthCallback(collect)  # kept alive until synthesis is done
    lib.espeak_SetSynthCallback(callback)
    assert lib.espeak_SetVoiceByName(voice.encode()) == 0, f"no espeak-ng voice {voice!r}"
    assert lib.espeak_SetParameter(_RATE_PARAMETER, wpm, 0) == 0
    said = text.encode()
    flags = _CHARS_UTF8 | _ENDPAUSE
    assert lib.espeak_Synth(said, len(said) + 1, 0, 1, 0, flags, None, None) == 0
    assert lib.espeak_Synchronize() == 0
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16), rate


def resample(samples: np.ndarray, rate: int, to: int = RATE) -> np.ndarray:
    """int16 mono samples at ``rate`` as float32 at ``to`` Hz, through FFmpeg's resampler."""
    import av

    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to)
    frames = [*resampler.resample(frame), *resampler.resample(None)]
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit PCM WAV file as float32 mono samples (first channel)."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2, path
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        x = x.reshape(-1, w.getnchannels())[:, 0]
    return x.astype(np.float32) / 32768.0


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """Write float32 mono samples as a 16-bit PCM WAV file."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def say(text: str, *, voice: str = "en", wpm: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng, resampled to 16 kHz and trimmed to its audible extent."""
    x = resample(*espeak(text, voice=voice, wpm=wpm))
    loud = np.flatnonzero(np.abs(x) > 1e-3)
    return x[loud[0] : loud[-1] + 1]


def speech_with_pauses(
    workdir: Path,
    sentences: list[str],
    *,
    pause: float = 1.5,
    lead: float = 1.0,
    tail: float = 1.0,
    voice: str = "en",
) -> tuple[Path, list[tuple[float, float]]]:
    """A WAV file of the sentences separated by ``pause`` s of digital silence.

    Returns the file and where each sentence truly is, in seconds.
    """
    parts = [np.zeros(round(lead * RATE), dtype=np.float32)]
    truth = []
    at = len(parts[0])
    for i, text in enumerate(sentences):
        if i:
            parts.append(np.zeros(round(pause * RATE), dtype=np.float32))
            at += len(parts[-1])
        clip = say(text, voice=voice)
        parts.append(clip)
        truth.append((at / RATE, (at + len(clip)) / RATE))
        at += len(clip)
    parts.append(np.zeros(round(tail * RATE), dtype=np.float32))
    path = write_wav(workdir / "speech.wav", np.concatenate(parts))
    return path, truth
