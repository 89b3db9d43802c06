"""Live latency of ``voxflow listen`` and of the page's Speech websocket path: a real recording
fed at real time, and for each final phrase the time from the end of its phrase in the audio
(the moment the client had sent it) to the moment the final arrived; and the word error rate
of the finals against the pipeline's transcript of the file (the live finals' cost in accuracy).

    python benchmarks/bench_listen.py [FILE ...] [--path listen page segments]
        [--baseline PYTHON] [--language xx] [--repeat N] [--burn N]

``listen``: the audio as 16 kHz s16le on ``voxflow listen -``'s stdin (0.1 s writes), finals
read from its lines. ``page``: ``voxflow serve`` in a subprocess and the real Azure Speech SDK
pushing the audio at real time in 100 ms frames on a continuous recognition, the websocket
path the page's microphone uses (the same turn logic; the SDK sends the recording's language,
as the page does when its language field is set). ``--baseline PYTHON`` runs the same with
another interpreter (another checkout's venv, e.g. before a change) side by side. ``--burn N``
keeps N busy-looping processes running throughout, a load that is the same for both sides.
Besides each final's latency, *after a pause* is that of the last final of each burst (the
finals of one phrase arrive together): the time from where the speaker paused to its text, the
segmenter's pause plus recognition, while the earlier finals of a phrase also waited for the
rest of it to be spoken.
``segments``: this checkout's segmenter alone, a file's way and the live way, on the audio fed
at real time: when each clip is ready for recognition (what the live mode changes, apart from
the recognition's own time, which depends on the machine and its load).

Needs `pip install -e '.[test]'` (jiwer, the SDK); the default recordings are the repository's
samples and, when ``../shared/corpus`` is there, ``katiesteve_mono.wav`` (a two-speaker
conversation). A language forced with ``--language`` (else each file's from the corpus
manifest, else none) applies to listen, the page and the file transcript alike.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("VOXFLOW_CORPUS", ROOT.parent / "shared" / "corpus"))
FINAL = re.compile(r"^\[(\d+):(\d+):(\d+)\.(\d+) --> (\d+):(\d+):(\d+)\.(\d+)\] (.*)$")
SERVE = "import sys; from voxflow.cli import main; sys.exit(main(sys.argv[1:]))"
RATE = 16000
PER_SECOND = 2 * RATE  # s16le mono bytes per second
TICKS = 10_000_000


def _seconds(groups: tuple[str, ...]) -> float:
    h, m, s, ms = (int(g) for g in groups)
    return h * 3600 + m * 60 + s + ms / 1000


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def _pcm(path: Path) -> bytes:
    """The recording as 16 kHz mono s16le (any format FFmpeg reads)."""
    import numpy as np

    from voxflow.audio import open_audio

    with open_audio(str(path)) as audio:
        x = np.concatenate([c.samples.reshape(-1) for c in audio])
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def _manifest_language(path: Path) -> str | None:
    """The recording's language from a corpus manifest beside it (a BCP-47 code), if any."""
    for manifest in (CORPUS / "eval" / "manifest.tsv", CORPUS / "manifest.tsv"):
        if not manifest.exists():
            continue
        for line in manifest.read_text(encoding="utf-8").splitlines()[1:]:
            rel, language = line.split("\t")[:2]
            if (manifest.parent / rel).resolve() == path.resolve():
                return language
    return None


def _wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(_normalise(reference) or "-", _normalise(hypothesis) or "-"))


def _feed(write: object, data: bytes, started: list[float]) -> None:
    """``write(bytes)`` 0.1 s of audio at a time, at real time; ``started`` gets the clock."""
    step = PER_SECOND // 10
    started.append(time.monotonic())
    for at in range(0, len(data), step):
        write(data[at : at + step])  # type: ignore[operator]
        lag = started[0] + (at + step) / PER_SECOND - time.monotonic()
        if lag > 0:
            time.sleep(lag)


def _after_pauses(latencies: list[float], arrivals: list[float]) -> list[float]:
    """The latency of the last final of each burst (finals arriving within 0.2 s of the one
    before come from one phrase)."""
    return [lat for k, lat in enumerate(latencies)
            if k + 1 == len(arrivals) or arrivals[k + 1] - arrivals[k] > 0.2]  # fmt: skip


Finals = tuple[list[float], list[float], str]  # latencies, arrival times, the finals' text


def run_listen(python: str, data: bytes, language: str | None) -> Finals:
    """``voxflow listen -`` at real time: each final's latency and arrival, and their text."""
    lang = ["--language", language] if language else []
    proc = subprocess.Popen(
        [python, "-m", "voxflow", "listen", "-", "--rate", str(RATE), *lang],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    started: list[float] = []
    out = os.dup(proc.stdin.fileno())
    proc.stdin.close()

    def feed() -> None:
        _feed(lambda b: os.write(out, b), data, started)
        os.close(out)

    writer = threading.Thread(target=feed)
    writer.start()
    latencies: list[float] = []
    arrivals: list[float] = []
    texts: list[str] = []
    for line in proc.stdout:
        now = time.monotonic()
        match = FINAL.match(line.rstrip("\n"))
        if match and started:
            latencies.append(now - (started[0] + _seconds(match.groups()[4:8])))
            arrivals.append(now)
            texts.append(match.group(9))
    proc.wait(timeout=600)
    writer.join()
    return latencies, arrivals, " ".join(texts)


def run_page(python: str, data: bytes, language: str | None) -> Finals:
    """The Speech SDK pushing at real time to ``voxflow serve``: each phrase's latency (from
    its offset + duration in the audio to its ``recognized`` event), and the phrases' text."""
    import azure.cognitiveservices.speech as speechsdk

    server = subprocess.Popen(
        [python, "-c", SERVE, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        match = re.search(r"listening on (ws://\S+)", line)
        if not match:
            raise SystemExit(f"the speech server did not start: {line!r}")
        config = speechsdk.SpeechConfig(host=match.group(1))
        if language:
            config.speech_recognition_language = language
        stream = speechsdk.audio.PushAudioInputStream()
        recognizer = speechsdk.SpeechRecognizer(
            config, audio_config=speechsdk.audio.AudioConfig(stream=stream)
        )
        started: list[float] = []
        latencies: list[float] = []
        arrivals: list[float] = []
        texts: list[str] = []
        done = threading.Event()

        def recognized(event: object) -> None:
            result = event.result  # type: ignore[attr-defined]
            if result.reason == speechsdk.ResultReason.RecognizedSpeech and started:
                end = (result.offset + result.duration) / TICKS
                now = time.monotonic()
                latencies.append(now - (started[0] + end))
                arrivals.append(now)
                texts.append(result.text)

        recognizer.recognized.connect(recognized)
        recognizer.session_stopped.connect(lambda e: done.set())
        recognizer.canceled.connect(lambda e: done.set())
        recognizer.start_continuous_recognition()
        _feed(stream.write, data, started)
        stream.close()
        done.wait(600)
        recognizer.stop_continuous_recognition()
        return latencies, arrivals, " ".join(texts)
    finally:
        server.terminate()
        server.wait(60)


def run_segments(live: bool, data: bytes) -> tuple[list[float], list[float], list[float]]:
    """The segmenter alone (no recognition, so the machine's load barely counts): the audio
    fed at real time through a pipe, cut the live way or a file's way; for each clip, the time
    from its end in the audio to the moment it was ready for recognition, the time from its
    start (how long its first words waited), and its length."""
    from voxflow.audio import RawPcm
    from voxflow.engines.base import Capabilities
    from voxflow.pipeline import LiveSegmentation, SpeechClips, TranscribeOptions

    read, write = os.pipe()
    started: list[float] = []

    def feed() -> None:
        _feed(lambda b: os.write(write, b), data, started)
        os.close(write)

    writer = threading.Thread(target=feed)
    writer.start()
    options = TranscribeOptions(live=LiveSegmentation() if live else None)
    lags, waits, lengths = [], [], []
    with os.fdopen(read, "rb") as pipe:
        for clip in SpeechClips(RawPcm(pipe, RATE, 1, "s16le"), options, "bench", Capabilities()):
            now = time.monotonic() - started[0]
            lags.append(now - clip.end)
            waits.append(now - clip.start)  # how long its first speech waited
            lengths.append(clip.duration)
    writer.join()
    return lags, waits, lengths


def file_transcript(path: Path, language: str | None) -> str:
    """The pipeline's transcript of the file (what the live finals are scored against)."""
    from voxflow.languages import LanguagePlan
    from voxflow.pipeline import TranscribeOptions, transcribe

    plan = LanguagePlan.parse(forced=language) if language else LanguagePlan()
    return transcribe(str(path), options=TranscribeOptions(languages=plan)).text


def _p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    paths_ = ("listen", "page", "segments")
    parser.add_argument("--path", nargs="+", choices=paths_, default=["listen"])
    parser.add_argument("--baseline", help="another interpreter to run side by side (before)")
    parser.add_argument("--language", help="force this language everywhere")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--burn", type=int, default=0, help="busy processes running throughout")
    args = parser.parse_args()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(args.burn)]  # fmt: skip
    try:
        _run(args)
    finally:
        for burner in burners:
            burner.kill()


def _run(args: argparse.Namespace) -> None:
    paths = args.paths or [ROOT / "samples" / "austen-0870.wav", ROOT / "samples" / "es-mx.wav"]
    corpus = CORPUS / "azure-samples" / "katiesteve_mono.wav"
    if not args.paths and corpus.exists():
        paths.append(corpus)
    runs = {"before": args.baseline, "after": sys.executable} if args.baseline else {
        "this": sys.executable}  # fmt: skip
    runners = {"listen": run_listen, "page": run_page}
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if "segments" in args.path:
        print("| recording | segmentation | clips | mean clip s | ready after its end: median / "
              "max (s) | ready after its start: median / max (s) |")  # fmt: skip
        print("|---|---|---:|---:|---:|---:|")
        for path in paths:
            data = _pcm(path)
            for live in (False, True):
                lags, waits, lengths = run_segments(live, data)
                print(f"| {path.name} | {'live' if live else 'file'} | {len(lags)} "
                      f"| {statistics.mean(lengths):.1f} "
                      f"| {statistics.median(lags):.2f} / {max(lags):.2f} "
                      f"| {statistics.median(waits):.2f} / {max(waits):.2f} |",
                      flush=True)  # fmt: skip
        args.path = [p for p in args.path if p != "segments"]
        if not args.path:
            return
    print(
        "| recording | audio s | path | run | finals | latency median (s) | latency p90 (s) "
        "| latency max (s) | after a pause: median / max (s) | WER vs file transcript |"
    )
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for path in paths:
        data = _pcm(path)
        language = args.language or _manifest_language(path)
        reference = file_transcript(path, language)
        for kind in args.path:
            for run, python in runs.items():
                for _ in range(args.repeat):
                    lat, arrivals, text = runners[kind](python, data, language)
                    med = f"{statistics.median(lat):.2f}" if lat else "–"
                    p90 = f"{_p90(lat):.2f}" if lat else "–"
                    top = f"{max(lat):.2f}" if lat else "–"
                    paused = _after_pauses(lat, arrivals)
                    pause = f"{statistics.median(paused):.2f} / {max(paused):.2f}" if lat else "–"
                    print(f"| {path.name} | {len(data) / PER_SECOND:.1f} | {kind} | {run} "
                          f"| {len(lat)} | {med} | {p90} | {top} | {pause} "
                          f"| {_wer(reference, text):.3f} |", flush=True)  # fmt: skip
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
