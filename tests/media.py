"""Synthesised test media with known content: tones, noise, silence, speech, every format,
videos, and bad inputs. ``build(directory)`` writes them all (about a second of work).

Integer WAVs are written with the standard library's ``wave`` module and float/G.711 WAVs
with hand-made headers, so decoding them is checked against samples that FFmpeg never saw.
Compressed formats are encoded with PyAV (FFmpeg's encoders in the wheel); speech comes from
libespeak-ng (tests/speech.py).
"""

from __future__ import annotations

import json
import shutil
import struct
import wave
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from speech import espeak

RATE = 44100  # rate of the tones
TONE_HZ = 440.0
TONE_AMP = 0.5
SECONDS = 2.0
RIGHT_HZ = 1000.0  # the stereo tone: 440 Hz at 0.5 left, 1000 Hz at 0.25 right
RIGHT_AMP = 0.25
WIDTHS = (1, 2, 3, 4)  # integer WAV widths, in bytes
SPEECH = ("Hello, this is a test.", "The pauses are one second long.", "Goodbye.")
SPEECH_PAUSE = 1.0  # seconds of digital silence between and around the sentences

# Files build() writes. Compressed formats hold the mono 440 Hz tone unless noted.
COMPRESSED = {
    "tone.mp3": ("mp3", "libmp3lame", RATE),
    "tone.flac": ("flac", "flac", RATE),
    "tone.opus": ("opus", "libopus", 48000),
    "tone.m4a": ("mp4", "aac", RATE),
    "tone.webm": ("webm", "libopus", 48000),
    "tone.mka": ("matroska", "flac", RATE),
}
BAD = (
    "empty.wav",  # 0 bytes
    "header_only.wav",  # a valid WAV header and no samples
    "truncated.wav",  # the header declares 2 s, the file holds 1 s
    "truncated_header.wav",  # cut inside the header
    "truncated.flac",  # STREAMINFO declares 2 s, the file holds about half
    "text.wav",  # a text file named .wav
    "image.wav",  # a PNG image named .wav
    "random.wav",  # random bytes
    "corrupt_header.wav",  # RIFF/WAVE magic, garbage fmt chunk
    "video_only.mp4",  # a video without an audio track
)


def tone(
    freq: float = TONE_HZ, seconds: float = SECONDS, rate: int = RATE, amplitude: float = TONE_AMP
) -> np.ndarray:
    """A sine as float64 of shape (frames, 1)."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).reshape(-1, 1)


def stereo_tone(rate: int = RATE, seconds: float = SECONDS) -> np.ndarray:
    """440 Hz at 0.5 on the left, 1000 Hz at 0.25 on the right, shape (frames, 2)."""
    return np.hstack(
        [tone(TONE_HZ, seconds, rate, TONE_AMP), tone(RIGHT_HZ, seconds, rate, RIGHT_AMP)]
    )


def noise(seconds: float = 1.0, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    """Uniform white noise, seeded, shape (frames, 1)."""
    rng = np.random.default_rng(1234)
    return rng.uniform(-amplitude, amplitude, (round(seconds * rate), 1))


def to_int(x: np.ndarray, width: int) -> np.ndarray:
    """Float samples as signed integers of ``width`` bytes (8-bit signed, as pydub keeps it)."""
    full = (1 << (8 * width - 1)) - 1
    dtype = {1: np.int8, 2: np.int16, 3: np.int32, 4: np.int32}[width]
    return np.round(x * full).astype(dtype)


def write_int_wav(path: Path, ints: np.ndarray, rate: int, width: int) -> Path:
    """PCM WAV through the stdlib ``wave`` module (8-bit is stored unsigned, as WAV wants)."""
    if width == 1:
        raw = (ints.astype(np.int16) + 128).astype(np.uint8).tobytes()
    elif width == 3:
        raw = ints.astype("<i4").reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        raw = ints.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(ints.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def write_raw_wav(path: Path, data: bytes, rate: int, channels: int, tag: int, bits: int) -> Path:
    """A WAV with a hand-written header: format ``tag`` 3 = float, 6 = A-law, 7 = mu-law."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHHH", tag, channels, rate, rate * block, block, bits, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if tag != 1:  # non-PCM formats carry a fact chunk with the frame count
        body += b"fact" + struct.pack("<II", 4, len(data) // block)
    body += b"data" + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def mulaw_encode(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law bytes of float samples (the standard segment algorithm)."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int32) >> 2  # 14-bit
    sign = np.where(pcm < 0, 0x80, 0)
    mag = np.minimum(np.abs(pcm), 8158) + 33
    seg = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 5, 0, 7)
    mant = (mag >> (seg + 1)) & 0x0F
    return (~(sign | (seg << 4) | mant) & 0xFF).astype(np.uint8)


def alaw_encode(x: np.ndarray) -> np.ndarray:
    """G.711 A-law bytes of float samples (the standard segment algorithm)."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int32) >> 3  # 13-bit
    sign = np.where(pcm >= 0, 0x80, 0)
    mag = np.minimum(np.where(pcm < 0, -pcm - 1, pcm), 4095)
    seg = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4)
    mant = np.where(seg == 0, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    return ((sign | (seg << 4) | mant) ^ 0x55).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 mu-law bytes to int16, as the reference ``ulaw2linear``."""
    u = ~codes.astype(np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 A-law bytes to int16, as the reference ``alaw2linear``."""
    a = codes.astype(np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def encode(path: Path, x: np.ndarray, rate: int, container: str, codec: str) -> Path:
    """Encode float samples (frames, channels) with PyAV into ``container``/``codec``."""
    layout = "mono" if x.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        # FFmpeg's own Vorbis encoder is "experimental" and stereo-only.
        options = {"strict": "experimental"} if codec == "vorbis" else None
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options)
        _encode_audio(out, stream, x, rate)
    return path


def _encode_audio(
    out: av.container.OutputContainer, stream: av.audio.AudioStream, x: np.ndarray, rate: int
) -> None:
    layout = "mono" if x.shape[1] == 1 else "stereo"
    frame_size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate, frame_size=frame_size)
    block = np.ascontiguousarray(x.astype(np.float32).reshape(1, -1))
    frame = av.AudioFrame.from_ndarray(block, format="flt", layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
    for piece in [*resampler.resample(frame), *resampler.resample(None)]:
        out.mux(stream.encode(piece))
    out.mux(stream.encode(None))


def write_video(path: Path, audio: np.ndarray | None, rate: int = RATE) -> Path:
    """An MP4 of 2 s of moving 64x64 MPEG-4 video, with ``audio`` as AAC when given."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = out.add_stream("aac", rate=rate, layout="mono") if audio is not None else None
        for i in range(20):
            pixels = np.full((64, 64, 3), (i * 12) % 256, dtype=np.uint8)
            out.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(video.encode(None))
        if sound is not None and audio is not None:
            _encode_audio(out, sound, audio, rate)
    return path


def png_bytes() -> bytes:
    """A valid 2x2 PNG image, made with zlib (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\0" + b"\xff\x00\x00" * 2 for _ in range(2))
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def speech(path: Path) -> list[tuple[float, float]]:
    """Sentences by espeak-ng separated by ``SPEECH_PAUSE`` s of silence, at espeak's own rate.

    Returns where each sentence (with espeak's own few ms of lead-in) lies, in seconds.
    """
    parts, spans, at, rate = [], [], 0, 0
    for text in SPEECH:
        said, rate = espeak(text)
        pause = np.zeros(round(SPEECH_PAUSE * rate), dtype=np.int16)
        parts += [pause, said]
        at += len(pause)
        spans.append((at / rate, (at + len(said)) / rate))
        at += len(said)
    parts.append(np.zeros(round(SPEECH_PAUSE * rate), dtype=np.int16))
    write_int_wav(path, np.concatenate(parts).reshape(-1, 1), rate, 2)
    return spans


def build(root: Path) -> Path:
    """Write every test file into ``root`` (created if needed) and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    mono, stereo = tone(), stereo_tone()
    for width in WIDTHS:
        write_int_wav(root / f"stereo_s{8 * width}.wav", to_int(stereo, width), RATE, width)
    write_int_wav(root / "tone.wav", to_int(mono, 2), RATE, 2)
    write_int_wav(root / "tone_8k.wav", to_int(tone(rate=8000), 2), 8000, 2)
    write_int_wav(root / "noise.wav", to_int(noise(), 2), RATE, 2)
    write_int_wav(root / "silence.wav", np.zeros((RATE, 1), dtype=np.int16), RATE, 2)
    write_raw_wav(root / "stereo_f32.wav", stereo.astype("<f4").tobytes(), RATE, 2, 3, 32)
    write_raw_wav(root / "stereo_f64.wav", stereo.astype("<f8").tobytes(), RATE, 2, 3, 64)
    t8k = tone(rate=8000)
    write_raw_wav(root / "tone_mulaw.wav", mulaw_encode(t8k).tobytes(), 8000, 1, 7, 8)
    write_raw_wav(root / "tone_alaw.wav", alaw_encode(t8k).tobytes(), 8000, 1, 6, 8)
    for name, (container, codec, rate) in COMPRESSED.items():
        source = tone(rate=rate)
        encode(root / name, source, rate, container, codec)
    encode(root / "stereo.mp3", stereo, RATE, "mp3", "libmp3lame")
    # FFmpeg's Vorbis encoder is stereo-only and smears a different right channel: 440 Hz twice.
    encode(root / "tone.ogg", np.hstack([mono, mono]), RATE, "ogg", "vorbis")
    shutil.copyfile(root / "tone.m4a", root / "m4a_named.mp3")  # wrong extension
    shutil.copyfile(root / "tone.flac", root / "flac_named.wav")  # wrong extension
    write_video(root / "video.mp4", tone())
    (root / "speech.json").write_text(json.dumps(speech(root / "speech.wav")))
    _bad(root)
    return root


def _bad(root: Path) -> None:
    (root / "empty.wav").write_bytes(b"")
    write_int_wav(root / "header_only.wav", np.zeros((0, 1), dtype=np.int16), 16000, 2)
    whole = (root / "tone.wav").read_bytes()
    (root / "truncated.wav").write_bytes(whole[: 44 + (len(whole) - 44) // 2])
    (root / "truncated_header.wav").write_bytes(whole[:30])
    flac = (root / "tone.flac").read_bytes()
    (root / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    (root / "text.wav").write_text("This is not audio.\nJust some text in a file.\n" * 20)
    (root / "image.wav").write_bytes(png_bytes())
    (root / "random.wav").write_bytes(np.random.default_rng(7).bytes(20000))
    (root / "corrupt_header.wav").write_bytes(
        b"RIFF"
        + struct.pack("<I", 5000)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + np.random.default_rng(8).bytes(5000)
    )
    write_video(root / "video_only.mp4", None)


if __name__ == "__main__":
    import sys

    out = build(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/.fixtures/media"))
    for p in sorted(out.iterdir()):
        print(f"{p.stat().st_size:>9}  {p.name}")
