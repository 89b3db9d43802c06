"""``voxflow listen -`` on real recordings piped in: finals as the pipeline streams them, interim
text before them at real time, Ctrl-C, ``-o`` SRT, and the microphone extra's error.

A microphone cannot be tested here (no audio device on CI machines): ``--device`` is covered
only as far as its error without the ``voxflow[listen]`` extra; the audio after PortAudio goes
the same way as stdin's.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest

from serving import HeldAudio, LiveAudio
from voxflow.audio import RawPcm
from voxflow.cli import main
from voxflow.engines import DecodeSettings, create_engine
from voxflow.formats import parse_srt
from voxflow.languages import LanguagePlan
from voxflow.pipeline import LiveSegmentation, TranscribeOptions, stream

ROOT = Path(__file__).resolve().parent.parent
AUSTEN = ROOT / "samples" / "austen-0870.wav"
SPANISH = ROOT / "samples" / "es-mx.wav"
FINAL = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\] (.+)$")


def _pcm(path: Path) -> tuple[bytes, int, int]:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        return w.readframes(w.getnframes()), w.getframerate(), w.getnchannels()


def _feed(
    fd: int, data: bytes, *, bytes_per_second: float | None = None, written: list[int] | None = None
) -> threading.Thread:
    """Write ``data`` into the pipe ``fd`` (at real time when a rate is given), then close it;
    ``written`` gets the byte count so far."""
    written = written if written is not None else [0]

    def run() -> None:
        step = int(bytes_per_second / 10) if bytes_per_second else 65536
        try:
            for i in range(0, len(data), step):
                written[0] += os.write(fd, data[i : i + step])
                if bytes_per_second:
                    time.sleep(0.1)
        except BrokenPipeError:
            pass  # the reader stopped (Ctrl-C)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _listen_in_process(monkeypatch, capsys, data: bytes, *args: str) -> tuple[int, str, str]:
    """``voxflow listen -`` with ``data`` on a real pipe as stdin (not seekable, length unknown)."""
    read, write = os.pipe()
    stdin = io.TextIOWrapper(os.fdopen(read, "rb"))
    monkeypatch.setattr(sys, "stdin", stdin)
    writer = _feed(write, data)
    try:
        code = main(["listen", "-", *args])
    finally:
        stdin.close()  # a writer still writing (input left unread) gets a broken pipe
        writer.join()
    out, err = capsys.readouterr()
    return code, out, err


def _finals(out: str) -> list[str]:
    return [m.group(9) for line in out.splitlines() if (m := FINAL.match(line))]


def _pipeline_texts(path: Path) -> list[str]:
    """The pipeline's own segments of the file read as a live stream, cut into phrases as
    listen cuts it (what listen must print)."""
    options = TranscribeOptions(
        languages=LanguagePlan.parse((), lid="at-start"), decode=DecodeSettings(5, True, ()),
        live=LiveSegmentation(),
    )  # fmt: skip

    async def run() -> list[str]:
        with LiveAudio(str(path)) as audio:
            return [s.text.strip() async for s in stream(audio, engine=create_engine(),
                                                        options=options)]  # fmt: skip

    return asyncio.run(run())


def test_raw_pcm_on_stdin_gives_the_pipelines_finals_and_an_srt_of_them(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    expected = _pipeline_texts(AUSTEN)
    data, rate, channels = _pcm(AUSTEN)
    srt = tmp_path / "out.srt"
    code, out, err = _listen_in_process(
        monkeypatch, capsys, data, "--rate", str(rate), "--channels", str(channels),
        "--format", "s16le", "-o", str(srt),
    )  # fmt: skip
    assert code == 0, err
    assert expected and _finals(out) == expected
    cues = parse_srt(srt.read_text(encoding="utf-8"))
    assert cues and " ".join(c.text.replace("\n", " ") for c in cues) == " ".join(expected)
    duration = len(data) / (2 * channels * rate)
    assert all(0 <= c.start < c.end <= duration + 0.05 for c in cues)
    assert [c.start for c in cues] == sorted(c.start for c in cues)
    # The file is kept: a second run without --overwrite refuses before reading anything.
    code, _, err = _listen_in_process(monkeypatch, capsys, data, "--rate", "16000", "-o", str(srt))
    assert code == 1 and "already exists" in err and str(srt) in err and err.count("\n") == 1


def test_encoded_audio_on_stdin_gives_the_pipelines_finals(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from pydub import AudioSegment

    mp3 = tmp_path / "es.mp3"
    AudioSegment.from_wav(SPANISH).export(mp3, format="mp3")
    for path in (AUSTEN, mp3):  # a WAV container, and an MP3 stream
        expected = _pipeline_texts(path)
        code, out, err = _listen_in_process(monkeypatch, capsys, path.read_bytes())
        assert code == 0, err
        assert expected and _finals(out) == expected, path.name


def test_a_live_phrase_is_final_before_the_next_one_has_been_fed(corpus: Path) -> None:
    """Listen's live segmentation: "What's the weather like?" twice, 1 s of silence apart, is
    two finals, and the first comes while the source still holds back the second phrase's end
    (a file's segmentation would keep both in one segment until the audio ended)."""
    pcm, rate, _ = _pcm(corpus / "azure-samples" / "whatstheweatherlike.wav")
    gap = bytes(2 * rate)  # 1 s of silence
    source = HeldAudio(pcm + gap + pcm, hold_at=len(pcm) + len(gap) + len(pcm) // 4 * 2)
    options = TranscribeOptions(languages=LanguagePlan.parse(forced="en"), live=LiveSegmentation())

    async def run() -> list[tuple[str, float, float, bool]]:
        finals = []
        audio = RawPcm(source, rate, 1, "s16le")
        async for seg in stream(audio, engine=create_engine(), options=options):
            finals.append((seg.text, seg.start, seg.end, source.released))
            source.release()
        return finals

    finals = asyncio.run(run())
    words = [re.sub(r"[^\w\s']", "", text.lower()).split() for text, *_ in finals]
    assert words == [["what's", "the", "weather", "like"]] * 2, finals
    assert source.held and finals[0][3] is False  # final while the rest was held back
    first_end, second_start = finals[0][2], finals[1][1]
    assert first_end <= second_start and len(pcm) / (2 * rate) <= second_start


def test_stdin_audio_reaches_the_listener_in_live_chunks_while_the_input_waits() -> None:
    """0.3 s of raw PCM on stdin, then nothing for now: the reader hands it on in 0.1 s chunks
    at once (a file's 0.5 s chunks would hold it until more came, delaying every final)."""
    from voxflow.cli.listen import _END, _start_stdin
    from voxflow.handoff import Handoff

    read, write = os.pipe()

    async def run() -> list[int]:
        queue: Handoff[object] = Handoff(16)
        with os.fdopen(read, "rb") as stdin:
            reader = _start_stdin(queue, RawPcm(stdin, 16000, 1, "s16le"))
            os.write(write, bytes(2 * 4800))  # 0.3 s of silence
            try:
                first = await asyncio.wait_for(queue.get(), 5)
            finally:
                os.close(write)  # the end of the input, which the reader waits for otherwise
            sizes = [len(first)]  # type: ignore[arg-type]
            while (item := await asyncio.wait_for(queue.get(), 10)) is not _END:
                sizes.append(len(item))  # type: ignore[arg-type]
            reader.join(10)
        return sizes

    sizes = asyncio.run(run())
    assert sizes[0] == 4 * 1600 and sum(sizes) == 4 * 4800  # float32: 0.1 s first, 0.3 s in all


def test_audio_that_is_not_audio_is_a_one_line_error_naming_stdin(monkeypatch, capsys) -> None:
    code, out, err = _listen_in_process(monkeypatch, capsys, b"these are words, not sound\n" * 9)
    assert code == 1 and not out and err.count("\n") == 1 and "<stdin>" in err


def test_interim_text_comes_before_the_final_at_real_time_and_ctrl_c_finishes() -> None:
    """Fed at real time, interim lines appear while the phrase is spoken; Ctrl-C (SIGINT) in the
    middle of it ends the listening with exit 0 and the final text of what was heard."""
    data, rate, channels = _pcm(AUSTEN)
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxflow", "listen", "-", "--rate", str(rate),
         "--interim-interval", "0.8"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    per_second = 2 * channels * rate
    written = [0]
    writer = _feed(
        os.dup(proc.stdin.fileno()), data, bytes_per_second=per_second, written=written
    )
    proc.stdin.close()
    lines: list[str] = []
    fed = len(data) / per_second
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("... "):
                fed = written[0] / per_second
                proc.send_signal(signal.SIGINT)  # Ctrl-C while the phrase goes on
                break
        lines += proc.stdout.read().splitlines()
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
        writer.join()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    interim = [i for i, line in enumerate(lines) if line.startswith("... ")]
    finals = [i for i, line in enumerate(lines) if FINAL.match(line)]
    assert interim and finals and interim[0] < finals[0], lines
    assert fed < len(data) / per_second - 1, "the Ctrl-C came too late to test it"
    assert _finals("\n".join(lines))  # the final text of what was heard
    last_end = FINAL.match(lines[finals[-1]])
    assert last_end is not None
    h, m, sec, ms = (int(g) for g in last_end.groups()[4:8])
    assert h * 3600 + m * 60 + sec + ms / 1000 <= fed + 0.5  # no more than what was fed


def test_device_without_the_listen_extra_is_a_one_line_error(monkeypatch, capsys) -> None:
    """Also where sounddevice is installed: an import that fails is what the extra's absence
    looks like. (A real microphone cannot be tested here: CI machines have none.)"""
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    assert main(["listen", "--device", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "voxflow[listen]" in err and "--device" in err


@pytest.mark.parametrize(
    "args, message",
    [([], "give - (audio on stdin) or --device N"), (["-", "--device", "1"], "one of them"),
     (["x.wav"], "not 'x.wav'"), (["-", "--interim-interval", "0"], "must be positive")],
)  # fmt: skip
def test_bad_arguments_are_one_line_errors(args: list[str], message: str, capsys) -> None:
    assert main(["listen", *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_microphone_that_recognition_cannot_keep_up_with_ends_with_an_error_not_growing_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No microphone can run here, so a stand-in ``sounddevice`` (a mock, for that reason only)
    delivers 0.1 s blocks faster than anyone reads them: the queue holds at most
    ``MIC_BACKLOG`` seconds, then the input ends with a one-line reason."""
    import types

    from voxflow.cli import listen as cli_listen
    from voxflow.errors import ConfigError

    class Stream:
        def __init__(self, *, blocksize: int, callback, **kw) -> None:  # type: ignore[no-untyped-def]
            self.blocksize, self.callback = blocksize, callback

        def start(self) -> None:
            block = bytes(4 * self.blocksize)
            for _ in range(round(cli_listen.MIC_BACKLOG / cli_listen.MIC_BLOCK) + 50):
                self.callback(block, self.blocksize, None, None)

        def close(self) -> None:
            pass

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(RawInputStream=Stream))

    async def run() -> list[object]:
        queue: asyncio.Queue[object] = asyncio.Queue()
        cli_listen._start_microphone(asyncio.get_running_loop(), queue, 3)
        await asyncio.sleep(0.2)  # the callbacks' offers run on the loop
        return [queue.get_nowait() for _ in range(queue.qsize())]

    items = asyncio.run(run())
    assert len(items) == round(cli_listen.MIC_BACKLOG / cli_listen.MIC_BLOCK) + 1
    assert all(isinstance(i, bytes) and len(i) == 6400 for i in items[:-1])
    assert isinstance(items[-1], ConfigError) and "fell 60 s behind" in str(items[-1])
