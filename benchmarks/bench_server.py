"""`voxflow serve` under the real Azure Speech SDK: latency and throughput with N sessions.

Usage:
    python benchmarks/bench_server.py [--sessions 1 4 16] [--workers 2] [--no-interim]
    python benchmarks/bench_server.py --burst 64 [--workers 2]

Starts ``voxflow serve --port 0`` as a subprocess (so its memory is its own), then, for each N:
- latency: N SDK sessions each push a real recording (``LanguageDetection_enUS.wav``, 6.45 s)
  through a ``PushAudioInputStream`` at real time, as a microphone would, and close it; the
  latency is from that close (end of speech pushed) to the session's final phrase;
- throughput: N SDK sessions each recognise ``katiesteve_mono.wav`` (19.2 s) from the file
  (the SDK sends a file about 5x faster than real time) with continuous recognition; throughput
  is N x 19.2 s of audio over the wall time until every session stopped.
Every result is checked against the pipeline's own transcript (word error rate, jiwer). Prints a
markdown table, and the server's RSS before and after.

``--burst N`` is the overload test: N SDK clients start continuous recognition of the 6.45 s
recording at the same moment (one phrase: a client's first result comes only once all its audio
is recognised, the case where the SDK's 80 s timeout bites first), against the server as
configured by default and, side by side, against the same server admitting by sessions only
(``--max-recognitions N --max-queue-wait 3600``, the policy before admission by work). Each
client must end with exactly the pipeline's transcript or a refusal (HTTP 503 at the upgrade,
``ServiceUnavailable``; or close 1013, ``ServiceError``); a timeout or other text is a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("VOXFLOW_CORPUS", HERE.parent.parent / "shared" / "corpus"))
SAMPLES = CORPUS / "azure-samples"
LATENCY_CLIP = SAMPLES / "LanguageDetection_enUS.wav"
THROUGHPUT_CLIP = SAMPLES / "katiesteve_mono.wav"
SERVE = "import sys; from voxflow.cli import main; sys.exit(main(sys.argv[1:]))"


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def _pcm(path: Path) -> bytes:
    from voxflow.server.usp import parse_wave_header

    data = path.read_bytes()
    _fmt, start = parse_wave_header(data)
    return data[start : start + int.from_bytes(data[start - 4 : start], "little")]


def _rss_mib(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a process, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Server:
    """A speech server in a subprocess (``cmd``; by default ``voxflow serve``) that prints
    ``listening on URL`` once it listens."""

    def __init__(self, extra: list[str], cmd: list[str] | None = None) -> None:
        cmd = cmd or [sys.executable, "-c", SERVE, "serve", "--port", "0", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        match = re.search(r"listening on (ws://\S+)", line)
        if not match:
            self.proc.kill()
            raise SystemExit(f"the speech server did not start: {line!r}")
        self.url = match.group(1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def _session(url: str, *, pcm: bytes | None, path: Path | None) -> tuple[float, str]:
    """One continuous-recognition session; (latency or end time, text)."""
    import azure.cognitiveservices.speech as speechsdk

    config = speechsdk.SpeechConfig(host=url)
    if pcm is not None:
        stream = speechsdk.audio.PushAudioInputStream()
        audio = speechsdk.audio.AudioConfig(stream=stream)
    else:
        audio = speechsdk.audio.AudioConfig(filename=str(path))
    recognizer = speechsdk.SpeechRecognizer(config, audio_config=audio)
    texts: list[str] = []
    last = [0.0]
    done = threading.Event()

    def recognized(event: object) -> None:
        texts.append(event.result.text)  # type: ignore[attr-defined]
        last[0] = time.perf_counter()

    recognizer.recognized.connect(recognized)
    recognizer.session_stopped.connect(lambda e: done.set())
    recognizer.canceled.connect(
        lambda e: (
            e.cancellation_details.reason == speechsdk.CancellationReason.Error
            and print(f"  error: {e.cancellation_details.error_details}", file=sys.stderr)
        )
    )
    recognizer.start_continuous_recognition()
    closed = 0.0
    if pcm is not None:
        began = time.perf_counter()
        for k, i in enumerate(range(0, len(pcm), 3200)):  # 100 ms frames at real time
            stream.write(pcm[i : i + 3200])
            pause = began + (k + 1) * 0.1 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        stream.close()
        closed = time.perf_counter()
    done.wait(600)
    recognizer.stop_continuous_recognition()
    return (last[0] - closed if pcm is not None else time.perf_counter()), " ".join(texts)


def _wer(reference: str, texts: list[str]) -> float:
    import jiwer

    ref = _normalise(reference)
    return statistics.mean(jiwer.wer(ref, _normalise(t) or "-") for t in texts)


def _outcome(url: str, path: Path, expected: str) -> tuple[str, float]:
    """One continuous recognition of ``path`` started now: its outcome and seconds to it."""
    import azure.cognitiveservices.speech as speechsdk

    began = time.perf_counter()
    audio = speechsdk.audio.AudioConfig(filename=str(path))
    recognizer = speechsdk.SpeechRecognizer(speechsdk.SpeechConfig(host=url), audio_config=audio)
    texts: list[str] = []
    cancelled: list = []
    done = threading.Event()

    def recognized(event) -> None:  # type: ignore[no-untyped-def]
        if event.result.reason == speechsdk.ResultReason.RecognizedSpeech:
            texts.append(event.result.text)

    recognizer.recognized.connect(recognized)
    recognizer.canceled.connect(lambda e: cancelled.append(e.cancellation_details))
    recognizer.session_stopped.connect(lambda e: done.set())
    recognizer.start_continuous_recognition()
    finished = done.wait(300)
    took = time.perf_counter() - began
    recognizer.stop_continuous_recognition()
    if not finished:
        return "no end in 300 s", took
    details = cancelled[0] if cancelled else None
    if details is not None and details.reason == speechsdk.CancellationReason.Error:
        codes = speechsdk.CancellationErrorCode
        if details.code == codes.ServiceUnavailable:
            return "refused (503)", took
        if details.code == codes.ServiceError and "1013" in details.error_details:
            return "refused (1013)", took
        if details.code == codes.ServiceTimeout:
            return "timeout", took
        return f"error {details.code}", took
    return ("right text" if _normalise(" ".join(texts)) == expected else "wrong text"), took


def _spread(times: list[float]) -> str:
    return f"{statistics.median(times):.1f} / {max(times):.1f}" if times else "–"


def burst(n: int, workers: int) -> None:
    """N clients at once against admission by work, then against admission by sessions."""
    from voxflow.languages import LanguagePlan
    from voxflow.pipeline import TranscribeOptions, transcribe

    options = TranscribeOptions(languages=LanguagePlan.parse(forced="en-US"))
    expected = _normalise(transcribe(str(LATENCY_CLIP), options=options).text)
    policies = {
        "by work (defaults)": [],
        "by sessions only": ["--max-recognitions", str(n), "--max-queue-wait", "3600"],
    }
    print(f"{n} clients at once, workers={workers}, cpus={os.cpu_count()}, "
          f"load average before: {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| admission | right text | refused 503 | refused 1013 | timeout | wrong text | other "
          "| s to a result: median / max | s to a refusal: median / max | wall s "
          "| server RSS after warm-up → end (MiB) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|")
    for name, flags in policies.items():
        server = Server(["--workers", str(workers), "--max-sessions", str(n), *flags])
        try:
            _outcome(server.url, LATENCY_CLIP, expected)  # warm-up
            idle_rss, _ = _rss_mib(server.proc.pid)
            began = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                clients = [
                    pool.submit(_outcome, server.url, LATENCY_CLIP, expected) for _ in range(n)
                ]
                outcomes = [client.result() for client in clients]
            wall = time.perf_counter() - began
            rss, _ = _rss_mib(server.proc.pid)
        finally:
            server.stop()
        kinds = [kind for kind, _ in outcomes]
        known = ("right text", "refused (503)", "refused (1013)", "timeout", "wrong text")
        other = sorted({k for k in kinds if k not in known})
        answered = [t for k, t in outcomes if k == "right text"]
        refused = [t for k, t in outcomes if k.startswith("refused")]
        counts = " | ".join(str(kinds.count(k)) for k in known)
        print(f"| {name} | {counts} | {len(kinds) - sum(kinds.count(k) for k in known)}"
              f"{' ' + ', '.join(other) if other else ''} | {_spread(answered)} "
              f"| {_spread(refused)} | {wall:.0f} | {idle_rss:.0f} → {rss:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-interim", action="store_true")
    parser.add_argument("--burst", type=int, metavar="N", help="the overload test, N clients")
    args = parser.parse_args()
    if not SAMPLES.is_dir():
        raise SystemExit(f"the corpus is needed: {SAMPLES}")
    if args.burst:
        burst(args.burst, args.workers)
        return
    from voxflow.languages import LanguagePlan
    from voxflow.pipeline import TranscribeOptions, transcribe

    options = TranscribeOptions(languages=LanguagePlan.parse(forced="en-US"))
    refs = {p: transcribe(str(p), options=options).text for p in (LATENCY_CLIP, THROUGHPUT_CLIP)}
    # All N sessions recognise at once, as before admission by work: this measures the engine.
    extra = ["--workers", str(args.workers), "--max-recognitions", str(max(args.sessions))]
    extra += ["--no-interim"] if args.no_interim else []
    server = Server(extra)
    try:
        pcm = _pcm(LATENCY_CLIP)
        _session(server.url, pcm=None, path=LATENCY_CLIP)  # warm-up
        idle_rss, _ = _rss_mib(server.proc.pid)
        rows = []
        for n in args.sessions:
            with ThreadPoolExecutor(n) as pool:
                live = list(pool.map(lambda _: _session(server.url, pcm=pcm, path=None), range(n)))
            began = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                files = list(
                    pool.map(
                        lambda _: _session(server.url, pcm=None, path=THROUGHPUT_CLIP), range(n)
                    )
                )
            wall = max(end for end, _ in files) - began
            latencies = sorted(lat for lat, _ in live)
            rows.append(
                (
                    n,
                    statistics.median(latencies),
                    latencies[-1],
                    _wer(refs[LATENCY_CLIP], [t for _, t in live]),
                    n * 19.18 / wall,
                    _wer(refs[THROUGHPUT_CLIP], [t for _, t in files]),
                    _rss_mib(server.proc.pid),
                )
            )
            print(f"  N={n} done", file=sys.stderr, flush=True)
        rss, peak = _rss_mib(server.proc.pid)
    finally:
        server.stop()
    print(
        f"workers={args.workers} interim={'off' if args.no_interim else 'on'} cpus={os.cpu_count()}"
    )
    print(
        "| sessions | latency median (s) | latency max (s) | WER live "
        "| throughput (audio s / wall s) | WER files | server RSS after (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, med, worst, wer_live, tput, wer_files, (rss_n, _) in rows:
        print(
            f"| {n} | {med:.2f} | {worst:.2f} | {wer_live:.3f} | {tput:.1f} | {wer_files:.3f} | "
            f"{rss_n:.0f} |"
        )
    print(
        f"server RSS: {idle_rss:.0f} MiB after warm-up, {rss:.0f} MiB at the end, "
        f"peak {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
