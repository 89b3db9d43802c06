"""Bad input gives an InputError or DecodeError whose one-line message names the source and
the cause, quickly and without FFmpeg's log noise; a wrong extension is not bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voxflow.audio import Audio, load, open_audio, probe
from voxflow.errors import DecodeError, InputError, VoxflowError, printable

pytestmark = pytest.mark.timeout(60)  # a hang fails the test instead of stalling the suite

BAD_FILES = {
    "empty.wav": (DecodeError, "empty file"),
    "header_only.wav": (DecodeError, "no audio samples"),
    "truncated.wav": (DecodeError, "truncated: 1.00 s of audio where the header declares 2.00 s"),
    "truncated_header.wav": (DecodeError, "not a recognised audio or video format"),
    "truncated.flac": (DecodeError, "truncated"),
    "text.wav": (DecodeError, "not a recognised audio or video format"),
    "image.wav": (DecodeError, "an image (png), not audio"),
    "random.wav": (DecodeError, "not a recognised audio or video format"),
    "corrupt_header.wav": (DecodeError, "not a recognised audio or video format"),
    "video_only.mp4": (DecodeError, "no audio stream"),
}


def native(source: object, **options: object) -> Audio:
    """``load`` keeping the source's own rate, channels and integer width, as pydub does."""
    return load(source, **{"sample_rate": None, "channels": None, "dtype": "native", **options})


def assert_one_line_naming(exc: VoxflowError, name: str, cause: str) -> None:
    message = str(exc)
    assert "\n" not in message
    assert message.startswith(f"{name}: ")
    assert cause in message
    assert exc.source == name and cause in exc.reason


def decode_all(source: object, **options: object) -> int:
    with open_audio(source, **options) as stream:
        return sum(chunk.frames for chunk in stream)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_raises_a_one_line_error_naming_it(media: Path, name: str) -> None:
    kind, cause = BAD_FILES[name]
    path = media / name
    with pytest.raises(kind) as info:
        decode_all(path)
    assert_one_line_naming(info.value, str(path), cause)


@pytest.mark.parametrize("name", sorted(set(BAD_FILES) - {"empty.wav"}))
def test_bad_bytes_raise_the_same_error(media: Path, name: str) -> None:
    kind, cause = BAD_FILES[name]
    if name == "truncated.wav":  # only the data chunk is short; the name is "<bytes>" now
        cause = "truncated"
    with pytest.raises(kind) as info:
        decode_all((media / name).read_bytes())
    assert_one_line_naming(info.value, "<bytes>", cause)


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "gone.wav"
    with pytest.raises(InputError) as info:
        open_audio(missing)
    assert_one_line_naming(info.value, str(missing), "no such file")
    with pytest.raises(InputError, match="no such file"):
        probe(str(missing))


def test_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        native(tmp_path)
    assert_one_line_naming(info.value, str(tmp_path), "is a directory")


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="file permissions do not stop root (or non-POSIX systems)",
)
def test_unreadable_file_is_an_input_error(media: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked.wav"
    locked.write_bytes((media / "tone.wav").read_bytes())
    locked.chmod(0)
    try:
        with pytest.raises(InputError) as info:
            native(locked)
        assert_one_line_naming(info.value, str(locked), "permission denied")
    finally:
        locked.chmod(0o600)


class FailingReader(io.RawIOBase):
    """A real file object whose device fails after the header: nothing else can fail a read
    on demand in a test (a disk error cannot be staged)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.pos > 60_000:
            raise OSError(5, "Input/output error")
        n = min(len(buffer), len(self.data) - self.pos, 4096)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def test_a_read_error_midway_is_an_input_error(media: Path) -> None:
    reader = io.BufferedReader(FailingReader((media / "tone.wav").read_bytes()))
    with pytest.raises(InputError) as info:
        decode_all(reader, name="flaky.wav")
    assert_one_line_naming(info.value, "flaky.wav", "Input/output error")


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("tone.webm", "truncated or corrupt"),
        ("tone.opus", "truncated or corrupt"),
        ("tone.m4a", "corrupt"),
        ("tone.flac", "truncated"),
    ],
)
def test_garbage_inside_a_compressed_file_is_reported(media: Path, name: str, cause: str) -> None:
    data = bytearray((media / name).read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = np.random.default_rng(5).bytes(third)
    broken = media.parent / f"garbage-{name}"
    broken.write_bytes(bytes(data))
    with pytest.raises(DecodeError) as info:
        decode_all(broken)
    assert_one_line_naming(info.value, str(broken), cause)


def test_one_corrupt_packet_is_bridged_with_silence_keeping_times(media: Path) -> None:
    import av

    data = (media / "tone.m4a").read_bytes()
    with av.open(io.BytesIO(data)) as container:
        packets = [
            (p.pos, p.size, p.pts) for p in container.demux(container.streams.audio[0]) if p.size
        ]
    pos, size, pts = packets[len(packets) // 2]
    broken = bytearray(data)
    broken[pos + 2 : pos + size] = np.random.default_rng(1).bytes(size - 2)
    clean = native(data, dtype="float32").samples[:, 0]  # at the native 44.1 kHz
    audio = native(bytes(broken), dtype="float32").samples[:, 0]
    assert len(audio) == len(clean)  # nothing shifted: the lost packet became silence
    hole = slice(pts, pts + 1024)  # the packet's place (time base 1/44100, 1024 frames)
    assert np.abs(audio[hole]).max() < 1e-6 < 0.3 < np.abs(clean[hole]).max()
    after = slice(pts + 3072, pts + 8192)  # the decoder recovers within a packet or two
    assert np.abs(audio[after] - clean[after]).max() < 0.01


def test_header_only_wav_probes_but_does_not_decode(media: Path) -> None:
    info = probe(media / "header_only.wav")
    assert (info.sample_rate, info.channels, info.codec) == (16000, 1, "pcm_s16le")
    with pytest.raises(DecodeError, match="no audio samples"):
        native(media / "header_only.wav")


@pytest.mark.parametrize("name", ["m4a_named.mp3", "flac_named.wav"])
def test_wrong_extension_is_not_an_error(media: Path, name: str) -> None:
    assert decode_all(media / name) == pytest.approx(32000, abs=400)


def test_empty_bytes_and_empty_pipe_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="empty input"):
        native(b"")
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as r, pytest.raises(DecodeError, match="empty input"):
        native(r)


REPORT_SCRIPT = """
import json, sys
from voxflow.audio import load
from voxflow.errors import VoxflowError
out = {}
for path in sys.argv[1:]:
    try:
        load(path)
        out[path] = "ok"
    except VoxflowError as exc:
        out[path] = str(exc)
print(json.dumps(out))
"""


def test_ffmpeg_log_noise_does_not_reach_the_terminal(media: Path) -> None:
    paths = [str(media / n) for n in sorted(BAD_FILES)]
    broken = media.parent / "noisy.webm"
    data = bytearray((media / "tone.webm").read_bytes())
    data[2000:6000] = bytes(4000)
    broken.write_bytes(bytes(data))
    paths.append(str(broken))
    done = subprocess.run(
        [sys.executable, "-c", REPORT_SCRIPT, *paths], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""  # FFmpeg logs through stderr; nothing may appear
    report = json.loads(done.stdout)
    assert all(report[p].startswith(f"{p}: ") for p in paths[:-1])


STDIN_SCRIPT = """
import sys
from voxflow.audio import load
from voxflow.errors import VoxflowError
try:
    load("-")
except VoxflowError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("empty.wav", "empty input"),
        ("text.wav", "not a recognised"),
        ("header_only.wav", "no audio samples"),
        ("video_only.mp4", "no audio stream"),
    ],
)
def test_bad_stdin_gives_one_line_and_a_non_zero_exit(media: Path, name: str, cause: str) -> None:
    with open(media / name, "rb") as f:
        done = subprocess.run(
            [sys.executable, "-c", STDIN_SCRIPT], stdin=f, capture_output=True, timeout=60
        )
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("<stdin>: ") and cause in lines[0]


# --- names with control characters ------------------------------------------------------------

HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\nname\u202e.wav"  # sets the title, clears, splits, flips
SHOWN = "evil\\x1b]0;pwned\\x07\\x1b[2J\\nname\\u202e.wav"


def test_printable_escapes_control_characters_and_nothing_else() -> None:
    assert printable(HOSTILE) == SHOWN
    assert printable(SHOWN) == SHOWN  # idempotent: printing twice changes nothing
    assert printable("tab\there\r\x7f\x9b\u2028") == "tab\\there\\r\\x7f\\x9b\\u2028"
    assert printable("naïve 東京 café.wav") == "naïve 東京 café.wav"
    assert printable(os.fsdecode(b"bad\xff.wav")) == "bad\ufffd.wav"
    error = InputError("no such file", source=HOSTILE)
    assert str(error) == f"{SHOWN}: no such file" and error.source == HOSTILE


@pytest.mark.skipif(sys.platform == "win32", reason="such names are POSIX-only")
def test_control_characters_in_names_never_reach_the_terminal_raw(
    media: Path, tmp_path: Path
) -> None:
    """Real processes: every message and progress line shows the names escaped, one line each."""
    bad = tmp_path / HOSTILE
    bad.write_text("this is not audio\n")
    good = tmp_path / "ok\x1b[31m.wav"
    good.write_bytes((media / "tone.wav").read_bytes())
    voxflow = [sys.executable, "-m", "voxflow"]
    out = tmp_path / "out"
    runs = [
        [*voxflow, "transcribe", str(good), str(bad), "-o", str(out), "--beam-size", "1"],
        [*voxflow, "jobs", "status", str(out)],
        [*voxflow, "silence", str(bad), str(good), "--nonsilent"],
        [*voxflow, "split", str(bad), "--out", str(tmp_path / "chunks")],
    ]
    done = [subprocess.run(r, capture_output=True, text=True, timeout=120) for r in runs]
    printed = "".join(d.stdout + d.stderr for d in done)
    assert not set(printed) & {"\x1b", "\x07", "\u202e"}
    bad_shown, good_shown = f"{tmp_path}/{SHOWN}", f"{tmp_path}/ok\\x1b[31m.wav"
    cause = "not a recognised audio or video format"
    transcribed = done[0].stderr.splitlines()
    progress = {line.split("] ", 1)[1] for line in transcribed if line.startswith("[")}
    assert progress == {f"{good_shown}: done", f"{bad_shown}: failed: {cause}"}
    assert transcribed[-1] == f"  {bad_shown}: {cause}"  # the summary
    assert f"  failed: {bad_shown}: {cause} (1 attempt)" in done[1].stdout.splitlines()
    assert done[2].stderr == f"voxflow: error: {bad_shown}: {cause}\n"
    assert done[2].stdout.splitlines()[1].startswith(f"{good_shown}  ")  # the table's first row
    assert done[3].stderr == f"voxflow: error: {bad_shown}: {cause}\n"
