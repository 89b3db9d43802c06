"""``voxflow transcribe``: many files at once, several formats, progress, a report of failures.

With an output directory the batch is a resumable job (see :mod:`voxflow.jobs`): run the same
command again after a crash, a kill or Ctrl-C and only what is left is done.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from voxflow.engines import DecodeSettings, create_engine
from voxflow.engines.azure import AzureOptions
from voxflow.engines.azure.engine import check_task
from voxflow.engines.whisper import WhisperOptions
from voxflow.errors import ConfigError
from voxflow.formats import render
from voxflow.inputs import expand_inputs
from voxflow.jobs import BatchOptions, BatchResult, JobState, exit_code, run_batch
from voxflow.jobs.cluster import ClusterOptions, run_batch_on_cluster
from voxflow.languages import LanguagePlan
from voxflow.pipeline import TranscribeOptions
from voxflow.progress import make_reporter
from voxflow.speakers import DiarizeOptions
from voxflow.transcript import Transcript

from . import options as opt
from .app import app


def _split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@app.command()
def transcribe(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="Files, directories, globs, @LIST files (one path a line); - stdin."),
    ] = None,
    output: Annotated[
        str, typer.Option("-o", "--output", help="Output directory, or - for stdout.")
    ] = "-",
    formats: Annotated[
        str, typer.Option("-f", "--format", help="Comma-separated: txt,json,srt,vtt.")
    ] = "txt",
    manifest: Annotated[
        list[str] | None,
        typer.Option(help="A file listing inputs, one path a line (repeatable; - for stdin)."),
    ] = None,
    engine: Annotated[str, typer.Option(help="Recognition engine.")] = "whisper",
    model: opt.Model = None,
    languages: opt.Languages = None,
    lid: opt.Lid = "at-start",
    language: opt.Language = None,
    vad: opt.Vad = "silero",
    concurrency: Annotated[int, typer.Option(help="Files transcribed at once.")] = 4,
    workers: Annotated[
        int, typer.Option(help="Whisper model calls at once (the cores are shared among them).")
    ] = 2,
    beam_size: Annotated[int, typer.Option(help="Beam width (1 = greedy, fastest).")] = 5,
    batch_size: Annotated[
        int, typer.Option(help="Segments per batched model call (on a GPU; a CPU takes one).")
    ] = 8,
    task: opt.Task = "transcribe",
    word_timestamps: Annotated[
        bool, typer.Option(help="Word times and probabilities in the output.")
    ] = True,
    min_window: Annotated[
        float | None,
        typer.Option(
            help="Encode segments shorter than 30 s in a window of this many seconds (at "
            "least their length + 1 s) instead of Whisper's 30 s: faster on short clips, at "
            "some risk to accuracy (docs/benchmarks.md)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    diarize: Annotated[
        bool, typer.Option(help="Say who spoke: speaker labels S1, S2 … on segments and words.")
    ] = False,
    speakers: Annotated[
        int | None, typer.Option(help="With --diarize: exactly this many speakers.")
    ] = None,
    min_speakers: Annotated[
        int | None, typer.Option(help="With --diarize: at least this many speakers (default 1).")
    ] = None,
    max_speakers: Annotated[
        int | None, typer.Option(help="With --diarize: at most this many speakers (default 8).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing output files, even ones voxflow did not write.")
    ] = False,
    max_attempts: Annotated[
        int, typer.Option(help="Runs that may try a failing file before it is given up.")
    ] = 3,
    retry_failed: Annotated[
        bool, typer.Option(help="Try files given up on (after --max-attempts) again.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds one file may take; then it fails, others go on.")
    ] = None,
    max_duration: Annotated[
        float | None, typer.Option(help="Longest input accepted, in seconds of audio.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    progress: Annotated[
        str | None, typer.Option(help="json: machine-readable progress lines on stderr.")
    ] = None,
    azure_key: Annotated[
        str | None, typer.Option(help="Azure Speech key (default: $SPEECH_KEY).")
    ] = None,
    azure_token: Annotated[
        str | None, typer.Option(help="Azure authorization token instead of a key.")
    ] = None,
    azure_region: Annotated[
        str | None, typer.Option(help="Azure region (default: $SPEECH_REGION).")
    ] = None,
    azure_endpoint: Annotated[
        str | None, typer.Option(help="Azure endpoint URL (default: $SPEECH_ENDPOINT).")
    ] = None,
    azure_host: Annotated[
        str | None, typer.Option(help="Speech host, e.g. ws://127.0.0.1:5000 for voxflow serve.")
    ] = None,
    azure_compressed: Annotated[
        bool, typer.Option(help="Push the file's own MP3/Opus/FLAC bytes (needs GStreamer).")
    ] = False,
    azure_sessions: Annotated[
        int, typer.Option(help="Azure sessions at once, across all files.")
    ] = 8,
    azure_session_seconds: Annotated[
        float, typer.Option(help="Longest Azure session; long audio is cut at silences.")
    ] = 300.0,
    phrase: opt.Phrase = None,
    azure_profanity: Annotated[
        str | None, typer.Option(help="Azure profanity option: masked, removed or raw.")
    ] = None,
    azure_retries: Annotated[
        int, typer.Option(help="Retries of an Azure session after a transient failure.")
    ] = 3,
    azure_push_speed: Annotated[
        float, typer.Option(help="Push audio at most this many times real time (0: no limit).")
    ] = 1.0,
    cluster: Annotated[
        str | None,
        typer.Option(
            envvar="VOXFLOW_CLUSTER",
            help="Run on a Dask cluster: a scheduler's tcp://HOST:PORT, or local[:N] worker "
            "processes here (needs voxflow[cluster]).",
        ),
    ] = None,
) -> None:
    """Transcribe audio or video files: the embedded offline Whisper engine by default, or
    Azure Speech with --engine azure (a real resource, or `voxflow serve` via --azure-host).

    With -o DIR the batch is a job that resumes: run the same command again after a crash
    or Ctrl-C; `voxflow jobs status DIR` shows where it stands.
    """
    fmts = _formats(formats, output)
    if progress not in (None, "json"):
        raise ConfigError(f"unknown progress mode {progress!r}: only json")
    _check_bounds(concurrency, max_attempts, timeout, max_duration)
    names = expand_inputs(inputs or [], manifest)
    if not names:
        where = ", ".join([*(inputs or []), *(f"--manifest {m}" for m in manifest or ())])
        raise ConfigError(f"no audio or video files in {where or 'the arguments'}")
    # Build: every option object, checked, before any work.
    options = TranscribeOptions(
        languages=LanguagePlan.parse(languages or (), forced=language, lid=lid),
        vad=vad,  # type: ignore[arg-type]
        batch_size=batch_size,
        decode=DecodeSettings(
            beam_size, word_timestamps, tuple(phrase or ()), task=task  # type: ignore[arg-type]
        ),
        diarize=_diarize_options(diarize, speakers, min_speakers, max_speakers, engine),
    )
    engine_options: WhisperOptions | AzureOptions
    if engine == "whisper":
        engine_options = WhisperOptions(
            model=model, device=device, num_workers=workers, batch_size=batch_size,
            min_window=min_window,
        )  # fmt: skip
    elif engine == "azure":
        check_task(options.decode)
        engine_options = AzureOptions.from_env(
            key=azure_key, token=azure_token, region=azure_region, endpoint=azure_endpoint,
            host=azure_host, compressed=azure_compressed, sessions=azure_sessions,
            session_seconds=azure_session_seconds, max_retries=azure_retries,
            profanity=azure_profanity, push_speed=azure_push_speed,
        )  # fmt: skip
    else:
        raise ConfigError(f"unknown engine {engine!r}: choose whisper or azure")
    batch = BatchOptions(
        formats=fmts, out_dir=None if output == "-" else Path(output), overwrite=overwrite,
        concurrency=concurrency, timeout=timeout, max_duration=max_duration,
        max_attempts=max_attempts, retry_failed=retry_failed,
    )  # fmt: skip
    on = ClusterOptions.parse(cluster) if cluster else None
    code, interrupted = run(
        names, engine_options, options, batch, progress=progress, quiet=quiet, cluster=on
    )
    if code:
        _exit(code, interrupted=interrupted)


def run(
    names: list[str],
    engine_options: WhisperOptions | AzureOptions,
    options: TranscribeOptions,
    batch: BatchOptions,
    *,
    progress: str | None = None,
    quiet: bool = False,
    cluster: ClusterOptions | None = None,
) -> tuple[int, bool]:
    """Run the batch, here or on a cluster, and report it: the exit code, and whether a signal
    interrupted it.

    The job is opened (and locked) first, so a bad output directory fails before the model
    loads."""
    job = JobState.open(batch.out_dir) if batch.out_dir is not None else None
    try:
        reporter = make_reporter(progress, quiet)
        if cluster is None:
            recognizer = create_engine(engine_options)
            work = run_batch(
                names, engine=recognizer, options=options, batch=batch, reporter=reporter, job=job
            )
        else:
            work = run_batch_on_cluster(
                names, cluster=cluster, engine_options=engine_options, options=options,
                batch=batch, reporter=reporter, job=job,
            )  # fmt: skip
        result = asyncio.run(work)
    finally:
        if job is not None:
            job.close()
    _print_stdout(result, batch.out_dir is None)
    return _summarise(result, batch.out_dir, quiet), result.signal is not None


def _diarize_options(
    diarize: bool, speakers: int | None, low: int | None, high: int | None, engine: str
) -> DiarizeOptions | None:
    """The speaker options of the command line, or None without --diarize. For the embedded
    engine the speaker model is loaded here, so that a missing one fails before any work
    (Azure identifies speakers itself and uses the model, when present, across sessions)."""
    if not diarize:
        if (speakers, low, high) != (None, None, None):
            raise ConfigError("--speakers, --min-speakers and --max-speakers need --diarize")
        return None
    if speakers is not None and (low, high) != (None, None):
        raise ConfigError("give --speakers or --min-speakers/--max-speakers, not both")
    defaults = DiarizeOptions()
    options = DiarizeOptions(
        speakers=speakers,
        min_speakers=defaults.min_speakers if low is None else low,
        max_speakers=max(defaults.max_speakers, low or 0) if high is None else high,
    )
    if engine == "whisper":
        from voxflow.speakers.models import campplus

        campplus()
    return options


def _formats(spec: str, output: str) -> tuple[str, ...]:
    """The output formats, each known, in the order given, once each."""
    fmts = list(dict.fromkeys(fmt.lower().lstrip(".") for fmt in _split_list(spec)))
    for fmt in fmts:
        render(Transcript("", 0.0), fmt)  # an unknown format fails here, before any work
    if not fmts:
        raise ConfigError("no output format given")
    if output == "-" and len(fmts) > 1:
        raise ConfigError("-o - writes one format to stdout; give an output directory for more")
    return tuple(fmts)


def _check_bounds(
    concurrency: int, max_attempts: int, timeout: float | None, max_duration: float | None
) -> None:
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    if max_attempts < 1:
        raise ConfigError(f"--max-attempts must be at least 1, got {max_attempts}")
    for flag, value in (("--timeout", timeout), ("--max-duration", max_duration)):
        if value is not None and not value > 0:
            raise ConfigError(f"{flag} must be a positive number of seconds, got {value:g}")


def _print_stdout(result: BatchResult, to_stdout: bool) -> None:
    """Stdout gets the results in input order, whatever order they finished in."""
    if not to_stdout:
        return
    for outcome in result.outcomes:
        if outcome.text is not None:
            if len(result.outcomes) > 1:  # several inputs on one stream: say which, as tail does
                sys.stdout.write(f"==> {outcome.name} <==\n")
            sys.stdout.write(outcome.text)
    sys.stdout.flush()


def _summarise(result: BatchResult, out_dir: Path | None, quiet: bool) -> int:
    """Print how the batch ended on stderr; return the exit code."""
    total = len(result.outcomes)
    done = result.count("done", "skipped")
    failed = [o for o in result.outcomes if o.state == "failed"]
    pending = result.count("pending")
    counts = f"{done} of {total} files transcribed, {len(failed)} failed, {pending} pending"
    resume = "; run the same command again to resume" if out_dir and pending else ""
    if result.signal is not None:
        head, code = f"voxflow: interrupted: {counts}{resume}", exit_code(result.signal)
    elif result.stopped is not None:
        head, code = f"voxflow: stopped: {result.stopped}; {counts}{resume}", 1
    elif failed:
        head, code = f"voxflow: {done} of {total} files transcribed; {len(failed)} failed", 1
    else:
        skipped = result.count("skipped")
        if skipped and not quiet:
            print(f"voxflow: {total} files transcribed ({skipped} already done before)",
                  file=sys.stderr)  # fmt: skip
        return 0
    print(head + (":" if failed else ""), file=sys.stderr)
    for outcome in failed:
        print(f"  {outcome.name}: {outcome.error}", file=sys.stderr)
    return code


def _exit(code: int, *, interrupted: bool) -> NoReturn:
    """Exit with ``code``. After Ctrl-C, a model call abandoned in a worker thread would hold
    the interpreter's exit until it ends: the state is saved and closed, so do not wait."""
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if interrupted and busy:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
