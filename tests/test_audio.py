"""voxflow.audio on real files: content, lengths and positions after resampling, every input
kind and WAV sample format, pydub parity, and the real corpus where it is present."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import threading
import time
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydub import AudioSegment

import media as M
from voxflow.audio import Audio, AudioInfo, Chunk, RawPcm, load, open_audio, probe, sources
from voxflow.errors import ConfigError, DecodeError, InputError


def native(source: object, **options: object) -> Audio:
    """``load`` keeping the source's own rate, channels and integer width, as pydub does."""
    return load(source, **{"sample_rate": None, "channels": None, "dtype": "native", **options})


def spectrum_peak(x: np.ndarray, rate: int) -> tuple[float, float]:
    """(frequency, amplitude) of the strongest sine in ``x`` (1-D), from a Hann-windowed FFT."""
    window = np.hanning(len(x))
    mag = np.abs(np.fft.rfft(x * window)) * 2 / window.sum()
    k = int(np.argmax(mag[1:])) + 1
    return k * rate / len(x), float(mag[k])


def amplitude_at(x: np.ndarray, rate: int, freq: float) -> float:
    """Amplitude of the component at ``freq`` Hz (the FFT bin nearest to it)."""
    window = np.hanning(len(x))
    mag = np.abs(np.fft.rfft(x * window)) * 2 / window.sum()
    k = round(freq * len(x) / rate)
    return float(mag[k - 2 : k + 3].max())


def middle(x: np.ndarray, rate: int, seconds: float = 1.0) -> np.ndarray:
    """``seconds`` from the middle of ``x``, away from codec edges."""
    n = round(seconds * rate)
    start = (len(x) - n) // 2
    return x[start : start + n]


def expected_frames(frames: int, rate_in: int, rate_out: int) -> int:
    return round(frames * rate_out / rate_in)


# -- content after decoding and resampling ---------------------------------------------------


def test_tone_resampled_to_16k_mono_keeps_frequency_amplitude_and_length(media: Path) -> None:
    with open_audio(media / "tone.wav") as stream:
        assert (stream.sample_rate, stream.channels, stream.sample_width) == (16000, 1, 0)
        chunks = list(stream)
    x = np.concatenate([c.samples for c in chunks])
    assert x.dtype == np.float32 and x.shape == (32000, 1)  # 2 s at 16 kHz exactly
    freq, amp = spectrum_peak(middle(x[:, 0], 16000), 16000)
    assert freq == pytest.approx(M.TONE_HZ, abs=1.0)
    assert amp == pytest.approx(M.TONE_AMP, abs=0.01)
    # the waveform itself, not only its spectrum: compare with the ideal 16 kHz sine
    ideal = M.tone(rate=16000)[:, 0]
    assert np.abs(x[100:-100, 0] - ideal[100:-100]).max() < 0.01


def test_chunks_are_contiguous_with_exact_positions(media: Path) -> None:
    with open_audio(media / "stereo_s16.wav", sample_rate=16000) as stream:
        chunks = list(stream)
    assert chunks[0].start == 0
    for before, after in itertools.pairwise(chunks):
        assert after.start == before.end
    assert chunks[-1].end == expected_frames(88200, 44100, 16000) == stream.frames_read
    assert all(isinstance(c, Chunk) and c.frames == len(c.samples) for c in chunks)


@pytest.mark.parametrize("size", [1000, 4096, 16000, 50000])
def test_fixed_chunk_size_gives_the_same_samples(media: Path, size: int) -> None:
    free = load(media / "tone.mp3", sample_rate=16000, channels=1, dtype="float32")
    with open_audio(media / "tone.mp3", chunk_frames=size) as stream:
        chunks = list(stream)
    assert all(c.frames == size for c in chunks[:-1])
    assert 0 < chunks[-1].frames <= size
    assert [c.start for c in chunks] == [i * size for i in range(len(chunks))]
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), free.samples)


@pytest.mark.parametrize(
    ("name", "rate_in"),
    [("tone.wav", 44100), ("tone_8k.wav", 8000), ("tone.flac", 44100), ("stereo_s24.wav", 44100)],
)
@pytest.mark.parametrize("rate_out", [8000, 16000, 22050, 44100, 48000])
def test_total_length_is_input_frames_times_rate_ratio(
    media: Path, name: str, rate_in: int, rate_out: int
) -> None:
    audio = native(media / name, sample_rate=rate_out, dtype="float32")
    assert audio.frames == expected_frames(round(M.SECONDS * rate_in), rate_in, rate_out)
    assert audio.duration == pytest.approx(M.SECONDS, abs=1 / rate_out)


@settings(max_examples=40, deadline=None)
@given(
    frames=st.integers(1, 30000),
    rate_in=st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000]),
    rate_out=st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    chunk=st.one_of(st.none(), st.integers(1, 5000)),
)
def test_length_and_contiguity_hold_for_any_rates(
    frames: int, rate_in: int, rate_out: int, chunk: int | None
) -> None:
    x = np.random.default_rng(frames).uniform(-0.5, 0.5, (frames, 1)).astype(np.float32)
    with open_audio((x, rate_in), sample_rate=rate_out, chunk_frames=chunk) as stream:
        pos = 0
        for c in stream:
            assert c.start == pos and c.frames > 0
            assert chunk is None or c.frames <= chunk
            pos = c.end
    assert pos == expected_frames(frames, rate_in, rate_out)


def test_stereo_to_mono_averages_the_channels(media: Path) -> None:
    mono = load(media / "stereo_s16.wav", sample_rate=16000, channels=1, dtype="float32")
    x = middle(mono.samples[:, 0], 16000)
    assert amplitude_at(x, 16000, M.TONE_HZ) == pytest.approx(M.TONE_AMP / 2, abs=0.01)
    assert amplitude_at(x, 16000, M.RIGHT_HZ) == pytest.approx(M.RIGHT_AMP / 2, abs=0.01)


def test_stereo_to_mono_matches_pydub_set_channels(media: Path) -> None:
    ours = native(media / "stereo_s16.wav", channels=1)  # native rate and width
    theirs = AudioSegment.from_file(media / "stereo_s16.wav").set_channels(1)
    ref = np.frombuffer(theirs.raw_data, dtype="<i2")
    assert ours.samples.shape == (len(ref), 1) and ours.sample_width == 2
    assert np.abs(ours.samples[:, 0].astype(int) - ref).max() <= 1


def test_native_rate_and_channels_are_kept_with_none(media: Path) -> None:
    audio = load(media / "stereo_s16.wav", sample_rate=None, channels=None, dtype="float32")
    assert (audio.sample_rate, audio.channels, audio.frames) == (44100, 2, 88200)
    np.testing.assert_allclose(audio.samples, M.stereo_tone(), atol=1 / 32767)


def test_upmix_mono_to_stereo_copies_the_channel(media: Path) -> None:
    audio = native(media / "tone.wav", channels=2, dtype="int16")
    assert audio.channels == 2
    np.testing.assert_array_equal(audio.samples[:, 0], audio.samples[:, 1])
    np.testing.assert_array_equal(audio.samples[:, 0], M.to_int(M.tone(), 2)[:, 0])


# -- WAV sample formats ----------------------------------------------------------------------


@pytest.mark.parametrize("width", M.WIDTHS)
def test_integer_wav_native_samples_are_exact(media: Path, width: int) -> None:
    audio = native(media / f"stereo_s{8 * width}.wav")
    assert audio.sample_width == width
    assert audio.samples.dtype == {1: np.int8, 2: np.int16, 3: np.int32, 4: np.int32}[width]
    np.testing.assert_array_equal(audio.samples, M.to_int(M.stereo_tone(), width))
    assert probe(media / f"stereo_s{8 * width}.wav").sample_width == width


@pytest.mark.parametrize("width", M.WIDTHS)
def test_integer_wav_as_float_is_scaled_to_unit_range(media: Path, width: int) -> None:
    audio = native(media / f"stereo_s{8 * width}.wav", dtype="float32")
    step = 1 / (1 << (8 * width - 1))
    np.testing.assert_allclose(audio.samples, M.stereo_tone(), atol=step * 1.01)
    assert audio.sample_width == 0 and audio.max_amplitude == 1.0


@pytest.mark.parametrize("bits", [32, 64])
def test_float_wav_decodes_to_its_samples(media: Path, bits: int) -> None:
    path = media / f"stereo_f{bits}.wav"
    audio = native(path, dtype="float32")
    np.testing.assert_allclose(audio.samples, M.stereo_tone(), atol=1e-7)
    assert probe(path).codec == f"pcm_f{bits}le" and probe(path).sample_width == 4
    wide = native(path)  # as pydub would: 32-bit integers
    assert wide.sample_width == 4 and wide.samples.dtype == np.int32
    np.testing.assert_allclose(wide.samples / 2**31, M.stereo_tone(), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "encode", "decode"),
    [
        ("tone_mulaw.wav", M.mulaw_encode, M.mulaw_decode),
        ("tone_alaw.wav", M.alaw_encode, M.alaw_decode),
    ],
)
def test_g711_wav_matches_the_reference_decoding(media: Path, name: str, encode, decode) -> None:
    audio = native(media / name)
    assert audio.sample_width == 2 and audio.sample_rate == 8000
    expected = decode(encode(M.tone(rate=8000)))
    np.testing.assert_array_equal(audio.samples[:, 0], expected[:, 0])
    resampled = native(media / name, sample_rate=16000, dtype="float32")
    freq, amp = spectrum_peak(middle(resampled.samples[:, 0], 16000), 16000)
    assert freq == pytest.approx(M.TONE_HZ, abs=1) and amp == pytest.approx(M.TONE_AMP, abs=0.02)


# -- compressed formats, video, wrong extensions ---------------------------------------------


@pytest.mark.parametrize(
    "name",
    [*M.COMPRESSED, "video.mp4", "m4a_named.mp3", "flac_named.wav", "stereo.mp3", "tone.ogg"],
)
def test_compressed_and_video_audio_decode_to_the_tone(media: Path, name: str) -> None:
    audio = load(media / name, sample_rate=16000, channels=None, dtype="float32")
    left = middle(audio.samples[:, 0], 16000)
    freq, amp = spectrum_peak(left, 16000)
    assert freq == pytest.approx(M.TONE_HZ, abs=1.5)
    assert amp == pytest.approx(M.TONE_AMP, abs=0.03)
    if name == "tone.ogg":  # the same tone on both channels
        assert spectrum_peak(middle(audio.samples[:, 1], 16000), 16000)[0] == pytest.approx(440)
    elif audio.channels == 2:
        right = middle(audio.samples[:, 1], 16000)
        assert amplitude_at(right, 16000, M.RIGHT_HZ) > 0.2
        assert amplitude_at(right, 16000, M.TONE_HZ) < 0.02
    # encoders pad to whole codec frames; the decoders trim most of it
    assert audio.duration == pytest.approx(M.SECONDS, abs=0.05)


@pytest.mark.parametrize("name", ["tone.flac", "flac_named.wav", "tone.mka"])
def test_lossless_formats_are_sample_exact(media: Path, name: str) -> None:
    audio = native(media / name)
    assert audio.sample_width == 2 and audio.sample_rate == M.RATE
    assert np.abs(audio.samples.astype(int) - M.to_int(M.tone(), 2)).max() <= 1


def test_wrong_extension_is_decoded_by_content(media: Path) -> None:
    assert probe(media / "m4a_named.mp3").codec == "aac"
    assert probe(media / "flac_named.wav").codec == "flac"


def test_video_audio_track_is_probed(media: Path) -> None:
    info = probe(media / "video.mp4")
    assert isinstance(info, AudioInfo)
    assert (info.codec, info.sample_rate, info.channels) == ("aac", M.RATE, 1)
    assert info.duration == pytest.approx(M.SECONDS, abs=0.05)


def test_speech_with_pauses_keeps_its_silences_in_place(media: Path) -> None:
    import json

    spans = json.loads((media / "speech.json").read_text())
    audio = native(media / "speech.wav", sample_rate=16000, dtype="float32")
    x = audio.samples[:, 0]
    for (_, end), (start, _) in itertools.pairwise(spans):  # the pauses between
        pause = x[round(end * 16000) + 80 : round(start * 16000) - 80]
        assert len(pause) > 0.9 * 16000 and np.abs(pause).max() < 1e-3
    for start, end in spans:
        assert np.abs(x[round(start * 16000) : round(end * 16000)]).max() > 0.1


# -- input kinds -------------------------------------------------------------------------------


def test_path_str_bytes_and_file_objects_give_the_same_samples(media: Path) -> None:
    path = media / "tone.mp3"
    ref = native(path).samples
    data = path.read_bytes()
    with open(path, "rb") as f:
        from_file = native(f).samples
        assert not f.closed  # the caller's file stays open
    for source in (str(path), data, bytearray(data), memoryview(data), io.BytesIO(data)):
        np.testing.assert_array_equal(native(source).samples, ref)
    np.testing.assert_array_equal(from_file, ref)


def test_non_seekable_pipe_decodes_without_hanging(media: Path) -> None:
    data = (media / "stereo_s16.wav").read_bytes()
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as w:
            w.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(read_fd, "rb") as r:
        assert not r.seekable()
        audio = native(r)
    writer.join(5)
    np.testing.assert_array_equal(audio.samples, M.to_int(M.stereo_tone(), 2))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX mkfifo")
def test_named_pipe_path_decodes(media: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "audio.fifo"
    os.mkfifo(fifo)
    data = (media / "tone.flac").read_bytes()
    writer = threading.Thread(target=fifo.write_bytes, args=(data,))
    writer.start()
    audio = native(fifo, sample_rate=16000)
    writer.join(5)
    assert audio.frames == 32000


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX mkfifo")
def test_a_named_pipe_waits_a_bounded_time_for_its_writer(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "FIFO_WAIT", 1.0)
    fifo = tmp_path / "nobody.wav"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(InputError) as info:
        native(fifo)  # opening it for reading would block until a writer opens it
    assert str(info.value) == f"{fifo}: a named pipe with no writer (waited 1 s for one)"
    assert 1.0 <= time.monotonic() - start < 5
    data = (media / "tone.flac").read_bytes()

    def late_writer() -> None:
        time.sleep(0.3)
        fifo.write_bytes(data)

    writer = threading.Thread(target=late_writer)
    writer.start()
    assert native(fifo, sample_rate=16000).frames == 32000  # a writer within the wait: read
    writer.join(5)
    assert [t for t in threading.enumerate() if t.name == "voxflow-fifo-open"] == []


def test_non_finite_float_samples_decode_as_silence_without_warnings(tmp_path: Path) -> None:
    x = np.full((8000, 2), 0.5, dtype="<f4")
    x[::7, 0], x[1::11, 1], x[2::13] = np.nan, np.inf, -np.inf
    path = M.write_raw_wav(tmp_path / "nan.wav", x.tobytes(), 16000, 2, 3, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning fails the test
        stereo = load(path, sample_rate=None, channels=None).samples
        mono = load(path).samples  # through the downmix: NaN would spread over both channels
    assert np.isfinite(stereo).all() and np.isfinite(mono).all()
    np.testing.assert_array_equal(stereo, np.where(np.isfinite(x), x, 0))
    # the downmix comes first: a frame with a bad sample in either channel is silent
    np.testing.assert_array_equal(mono[:, 0], np.where(np.isfinite(x).all(axis=1), 0.5, 0))


STDIN_SCRIPT = (
    "from voxflow.audio import load; a = load('-', sample_rate=16000, channels=1, "
    "dtype='float32'); x = a.samples[a.frames // 4 : 3 * a.frames // 4]; "
    "print(a.name, a.frames, a.sample_rate, float(abs(x).max()))"
)


@pytest.mark.parametrize("name", ["tone.wav", "tone.flac", "tone.mp3", "tone.m4a", "tone.webm"])
def test_stdin_dash_reads_a_file_redirected_into_it(media: Path, name: str) -> None:
    with open(media / name, "rb") as f:
        done = subprocess.run(
            [sys.executable, "-c", STDIN_SCRIPT], stdin=f, capture_output=True, timeout=60
        )
    assert done.returncode == 0, done.stderr.decode()
    label, frames, rate, peak = done.stdout.decode().split()
    assert (label, int(rate)) == ("<stdin>", 16000)
    assert int(frames) == pytest.approx(32000, abs=800)  # a pipe cannot read MP3 gapless info
    assert float(peak) == pytest.approx(M.TONE_AMP, abs=0.05)
    assert done.stderr == b""  # nothing from FFmpeg's log


def test_stdin_dash_reads_a_real_pipe(media: Path) -> None:
    data = (media / "tone.mp3").read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", STDIN_SCRIPT], input=data, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    assert int(done.stdout.split()[1]) == pytest.approx(32000, abs=800)


@pytest.mark.parametrize("fmt", ["u8", "s8", "s16le", "s16be", "s24le", "s32le", "f32le"])
def test_raw_pcm_bytes_decode_to_the_declared_format(fmt: str) -> None:
    x = M.stereo_tone(rate=8000, seconds=0.5)
    width = {"u8": 1, "s8": 1, "s16le": 2, "s16be": 2, "s24le": 3, "s32le": 4, "f32le": 4}[fmt]
    ints = M.to_int(x, width)
    raw = {
        "u8": lambda: (ints.astype(np.int16) + 128).astype(np.uint8).tobytes(),
        "s8": lambda: ints.tobytes(),
        "s16le": lambda: ints.astype("<i2").tobytes(),
        "s16be": lambda: ints.astype(">i2").tobytes(),
        "s24le": lambda: ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes(),
        "s32le": lambda: ints.astype("<i4").tobytes(),
        "f32le": lambda: x.astype("<f4").tobytes(),
    }[fmt]()
    audio = native(RawPcm(raw, 8000, 2, fmt), dtype="float32")
    assert (audio.sample_rate, audio.channels, audio.frames) == (8000, 2, 4000)
    np.testing.assert_allclose(audio.samples, x, atol=1.01 / (1 << (8 * width - 1)))
    assert probe(RawPcm(raw, 8000, 2, fmt)).sample_width == width
    if fmt != "f32le":
        np.testing.assert_array_equal(native(RawPcm(raw, 8000, 2, fmt)).samples, ints)


@settings(max_examples=25, deadline=None)
@given(
    fmt=st.sampled_from(["s16le", "s32le", "f32le", "f64le"]),
    rate=st.integers(1000, 96000),
    channels=st.integers(1, 6),
    frames=st.integers(1, 3000),
)
def test_raw_pcm_round_trips_any_parameters(
    fmt: str, rate: int, channels: int, frames: int
) -> None:
    dtype = {"s16le": "<i2", "s32le": "<i4", "f32le": "<f4", "f64le": "<f8"}[fmt]
    rng = np.random.default_rng(frames)
    if fmt.startswith("s"):
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, (frames, channels), dtype=np.int64).astype(dtype)
    else:
        x = rng.uniform(-1, 1, (frames, channels)).astype(dtype)
    audio = native(
        RawPcm(x.tobytes(), rate, channels, fmt), dtype="float32" if "f" in fmt else "native"
    )
    assert (audio.sample_rate, audio.channels, audio.frames) == (rate, channels, frames)
    np.testing.assert_allclose(audio.samples, x.astype(audio.samples.dtype), rtol=1e-6)


def test_raw_pcm_from_a_path_and_a_pipe(tmp_path: Path) -> None:
    ints = M.to_int(M.tone(rate=16000, seconds=1), 2)
    path = tmp_path / "tone.pcm"
    path.write_bytes(ints.astype("<i2").tobytes())
    np.testing.assert_array_equal(native(RawPcm(path, 16000, 1)).samples, ints)
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=lambda: os.fdopen(write_fd, "wb").write(path.read_bytes()))
    writer.start()
    with os.fdopen(read_fd, "rb") as r:
        audio = native(RawPcm(r, 16000, 1, "s16le"), sample_rate=8000, dtype="float32")
    writer.join(5)
    assert audio.frames == 8000


def test_numpy_array_with_rate_and_audio_objects_are_sources() -> None:
    x = M.tone(rate=48000).astype(np.float32)
    from_tuple = native((x, 48000), sample_rate=16000, dtype="float32")
    from_audio = native(Audio(x, 48000), sample_rate=16000, dtype="float32")
    np.testing.assert_array_equal(from_tuple.samples, from_audio.samples)
    assert from_tuple.frames == 32000 and from_tuple.name == "<array>"
    freq, amp = spectrum_peak(middle(from_tuple.samples[:, 0], 16000), 16000)
    assert freq == pytest.approx(M.TONE_HZ, abs=1) and amp == pytest.approx(M.TONE_AMP, abs=0.01)
    ints = M.to_int(M.stereo_tone(), 3)
    same = native(Audio(ints, M.RATE, 3))  # 24-bit values survive the trip through FFmpeg frames
    assert same.sample_width == 3
    np.testing.assert_array_equal(same.samples, ints)
    with pytest.raises(ConfigError, match="sample rate"):
        native(x)


@pytest.mark.parametrize("width", M.WIDTHS)
def test_pydub_segments_in_and_out(media: Path, width: int) -> None:
    path = media / f"stereo_s{8 * width}.wav"
    segment = AudioSegment.from_file(path)
    ours = native(path)
    from_pydub = native(segment)  # an AudioSegment as a source
    assert from_pydub.sample_rate == segment.frame_rate == M.RATE
    ref = M.to_int(M.stereo_tone(), width)
    if width == 3:  # pydub widens 24-bit audio to 32 bits; its top 24 bits are the samples
        assert segment.sample_width == 4
        np.testing.assert_array_equal(from_pydub.samples >> 8, ref)
    else:
        np.testing.assert_array_equal(from_pydub.samples, ref)
        np.testing.assert_array_equal(Audio.from_pydub(segment).samples, ours.samples)
    back = ours.to_pydub()
    assert (back.frame_rate, back.channels, len(back)) == (M.RATE, 2, len(segment))
    again = Audio.from_pydub(back)
    np.testing.assert_array_equal(again.samples >> (8 if width == 3 else 0), ref)


def test_float_audio_to_pydub_is_16_bit(media: Path) -> None:
    audio = native(media / "tone.wav", dtype="float32")
    segment = audio.to_pydub()
    assert segment.sample_width == 2 and segment.frame_rate == M.RATE
    ints = np.frombuffer(segment.raw_data, dtype="<i2")
    np.testing.assert_allclose(ints / 32767, audio.samples[:, 0], atol=1 / 32767)


def test_int16_and_native_after_resampling(media: Path) -> None:
    as_int = load(media / "stereo_s24.wav", sample_rate=16000, channels=1, dtype="int16")
    own = native(media / "stereo_s24.wav", sample_rate=16000, channels=1)
    assert (as_int.sample_width, own.sample_width) == (2, 3)
    assert as_int.samples.dtype == np.int16 and own.samples.dtype == np.int32
    assert as_int.frames == own.frames == 32000
    assert np.abs(own.samples // 256 - as_int.samples.astype(np.int32)).max() <= 1


def test_8_bit_native_samples_are_signed_like_pydub(media: Path) -> None:
    audio = native(media / "stereo_s8.wav")
    assert audio.samples.dtype == np.int8 and audio.sample_width == 1
    assert audio.samples.min() < 0 < audio.samples.max()
    segment = AudioSegment.from_file(media / "stereo_s8.wav")
    np.testing.assert_array_equal(
        audio.samples.ravel(), np.frombuffer(segment.raw_data, dtype=np.int8)
    )


def test_probe_reads_the_header(media: Path) -> None:
    info = probe(media / "stereo_s24.wav")
    assert info == AudioInfo(str(media / "stereo_s24.wav"), M.RATE, 2, 3, "pcm_s24le", 2.0, "wav")
    assert probe(media / "tone.opus").sample_rate == 48000
    assert probe(media / "tone.mp3").sample_width == 2  # lossy codecs: 16-bit, as pydub


def test_stream_is_a_context_manager_iterated_once(media: Path) -> None:
    with open_audio(media / "tone.wav", name="my tone") as stream:
        assert stream.name == "my tone" and stream.info.name == "my tone"
        assert stream.duration == pytest.approx(2.0)
        first = next(iter(stream))
        assert first.start == 0
        with pytest.raises(ConfigError, match="once"):
            iter(stream)


def test_empty_stream_is_allowed_on_request(media: Path) -> None:
    audio = native(media / "header_only.wav", allow_empty=True)
    assert audio.frames == 0 and audio.sample_rate == 16000 and audio.samples.shape == (0, 1)
    with open_audio(media / "header_only.wav", allow_empty=True) as stream:
        assert list(stream) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": "int8"}, "dtype"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"channels": -1}, "channels"),
        ({"chunk_frames": 1.5}, "chunk_frames"),
    ],
)
def test_bad_options_raise_config_error(media: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_audio(media / "tone.wav", **kwargs)


def test_bad_raw_format_and_audio_shapes_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="raw sample format"):
        RawPcm(b"\0\0", 8000, 1, "s12le")
    with pytest.raises(ConfigError, match="positive"):
        RawPcm(b"\0\0", 0, 1)
    with pytest.raises(ConfigError, match="signed"):
        Audio(np.zeros(10, dtype=np.uint16), 8000)
    with pytest.raises(ConfigError, match="float samples"):
        Audio(np.zeros(10, dtype=np.float32), 8000, 2)


# -- the real corpus ---------------------------------------------------------------------------


def corpus_audio(corpus: Path) -> list[Path]:
    files = [*sorted((corpus / "pydub").iterdir()), *sorted((corpus / "azure-samples").iterdir())]
    return [p for p in files if p.suffix in {".wav", ".mp3", ".ogg", ".webm", ".aac"}]


def test_corpus_files_all_decode_with_exact_lengths(corpus: Path) -> None:
    seen = 0
    for path in corpus_audio(corpus):
        if path.name == "test1_empty.wav":
            with pytest.raises(DecodeError, match="no audio samples"):
                native(path)
            assert native(path, allow_empty=True).frames == 0
            continue
        info = probe(path)
        whole = native(path)
        with open_audio(path) as stream:
            total = sum(c.frames for c in stream)
        assert total == expected_frames(whole.frames, info.sample_rate, 16000), path.name
        if info.duration is not None:
            assert whole.duration == pytest.approx(info.duration, abs=0.15), path.name
        seen += 1
    assert seen >= 18


def test_corpus_wavs_match_pydub_samples(corpus: Path) -> None:
    checked = 0
    for path in corpus_audio(corpus):
        if path.suffix != ".wav" or path.name == "test1_empty.wav":
            continue
        try:  # only what pydub reads itself: PCM, not G.711
            wave.open(str(path)).close()
        except wave.Error:
            continue
        segment = AudioSegment.from_file(path)
        ours = native(path)
        assert (ours.sample_rate, ours.channels) == (segment.frame_rate, segment.channels)
        theirs = Audio.from_pydub(segment).samples
        if ours.sample_width == 3:
            theirs = theirs >> 8
        np.testing.assert_array_equal(ours.samples, theirs, err_msg=path.name)
        checked += 1
    assert checked >= 10


def test_corpus_mulaw_wav_matches_its_pcm_twin(corpus: Path) -> None:
    base = corpus / "azure-samples"
    mulaw = native(base / "whatstheweatherlike-mulaw.wav", dtype="float32")
    pcm = native(base / "whatstheweatherlike.wav", dtype="float32")
    assert mulaw.frames == pcm.frames
    assert np.corrcoef(mulaw.samples[:, 0], pcm.samples[:, 0])[0, 1] > 0.99


def test_corpus_compressed_files_match_pydub_via_ffmpeg(corpus: Path) -> None:
    for path in corpus_audio(corpus):
        if path.suffix == ".wav":
            continue
        segment = AudioSegment.from_file(path)
        ours = native(path, dtype="int16")
        theirs = Audio.from_pydub(segment).samples.astype(np.float64)
        assert (ours.sample_rate, ours.channels) == (segment.frame_rate, segment.channels)
        n = min(len(theirs), ours.frames)
        assert abs(len(theirs) - ours.frames) <= 0.01 * n + 2000, path.name
        a, b = ours.samples[:n, 0].astype(np.float64), theirs[:n, 0]
        assert np.corrcoef(a, b)[0, 1] > 0.99, path.name


def test_corpus_wrong_extension_decodes_by_content(corpus: Path) -> None:
    info = probe(corpus / "pydub" / "wrong_extension.aac")
    assert info.codec == "aac" and info.sample_rate == 44100
    assert native(corpus / "pydub" / "wrong_extension.aac").duration == pytest.approx(9.66, abs=0.1)
