"""``voxflow transcribe``: many files at once, several formats, progress, a report of failures."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from voxflow.errors import ConfigError, VoxflowError
from voxflow.formats import render
from voxflow.inputs import expand_inputs
from voxflow.outputs import unique_stems, write_atomic
from voxflow.pipeline import TranscribeOptions, transcribe_many
from voxflow.progress import Reporter, make_reporter
from voxflow.transcript import Transcript

from .app import app


def _split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@app.command()
def transcribe(
    inputs: Annotated[list[str], typer.Argument(help="Files, directories or globs; - for stdin.")],
    output: Annotated[
        str, typer.Option("-o", "--output", help="Output directory, or - for stdout.")
    ] = "-",
    formats: Annotated[
        str, typer.Option("-f", "--format", help="Comma-separated: txt,json,srt,vtt.")
    ] = "txt",
    engine: Annotated[str, typer.Option(help="Recognition engine.")] = "whisper",
    model: Annotated[
        str | None,
        typer.Option(help="Whisper model: base (bundled, default), a faster-whisper name, a dir."),
    ] = None,
    languages: Annotated[
        str | None, typer.Option(help="Candidate languages, e.g. en-US,es-MX,zh-CN.")
    ] = None,
    lid: Annotated[str, typer.Option(help="Language id: at-start or continuous.")] = "at-start",
    language: Annotated[
        str | None, typer.Option(help="Force one language (e.g. en or es-MX); no identification.")
    ] = None,
    vad: Annotated[str, typer.Option(help="Segmenter: silero (VAD) or silence.")] = "silero",
    concurrency: Annotated[int, typer.Option(help="Files transcribed at once.")] = 2,
    beam_size: Annotated[int, typer.Option(help="Beam width (1 = greedy, fastest).")] = 5,
    batch_size: Annotated[int, typer.Option(help="Segments per batched model call.")] = 8,
    word_timestamps: Annotated[
        bool, typer.Option(help="Word times and probabilities in the output.")
    ] = True,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    progress: Annotated[
        str | None, typer.Option(help="json: machine-readable progress lines on stderr.")
    ] = None,
) -> None:
    """Transcribe audio or video files with the embedded offline Whisper engine."""
    from voxflow.engines import create_engine

    fmts = [fmt.lower().lstrip(".") for fmt in _split_list(formats)]
    for fmt in fmts:
        render(Transcript("", 0.0), fmt)  # an unknown format fails here, before any work
    if not fmts:
        raise ConfigError("no output format given")
    to_stdout = output == "-"
    if to_stdout and len(fmts) > 1:
        raise ConfigError("-o - writes one format to stdout; give an output directory for more")
    if progress not in (None, "json"):
        raise ConfigError(f"unknown progress mode {progress!r}: only json")
    names = expand_inputs(inputs)
    if not names:
        raise ConfigError(f"no audio or video files in {', '.join(inputs)}")
    options = TranscribeOptions(
        language=language,
        languages=tuple(_split_list(languages)),
        lid=lid,  # type: ignore[arg-type]
        vad=vad,  # type: ignore[arg-type]
        batch_size=batch_size,
    )
    engine_options: dict[str, object] = {"beam_size": beam_size, "batch_size": batch_size}
    engine_options.update(model=model, device=device, word_timestamps=word_timestamps)
    # Inference threads: one model worker per concurrently transcribed file, up to two.
    engine_options["num_workers"] = max(1, min(concurrency, 2))
    recognizer = create_engine(engine, **engine_options)
    out_dir = None if to_stdout else Path(output)
    stems = dict(zip(names, unique_stems(names), strict=True))
    reporter = make_reporter(progress, quiet)
    failures = asyncio.run(
        _run(names, recognizer, options, concurrency, reporter, fmts, out_dir, stems, overwrite)
    )
    total = len(names)
    if failures:
        print(f"voxflow: {total - len(failures)} of {total} files transcribed; "
              f"{len(failures)} failed:", file=sys.stderr)
        for name, error in failures:
            print(f"  {name}: {error}", file=sys.stderr)
        raise SystemExit(1)


async def _run(
    names: list[str],
    recognizer: object,
    options: TranscribeOptions,
    concurrency: int,
    reporter: Reporter,
    fmts: list[str],
    out_dir: Path | None,
    stems: dict[str, str],
    overwrite: bool,
) -> list[tuple[str, str]]:
    failures: list[tuple[str, str]] = []
    stdout_results: dict[str, str] = {}
    reporter.start(names)
    sources = [sys.stdin.buffer if n == "-" else n for n in names]
    by_source = {id(s): n for s, n in zip(sources, names, strict=True)}
    try:
        async for source, result in transcribe_many(
            sources, engine=recognizer, options=options, concurrency=concurrency,  # type: ignore[arg-type]
            progress=reporter,
        ):
            name = by_source[id(source)]
            if isinstance(result, VoxflowError):
                failures.append((name, result.reason if result.source else str(result)))
                reporter.finished(name, failures[-1][1])
                continue
            try:
                if out_dir is None:
                    stdout_results[name] = render(result, fmts[0])
                else:
                    for fmt in fmts:
                        target = out_dir / f"{stems[name]}.{fmt}"
                        write_atomic(target, render(result, fmt), overwrite=overwrite)
            except VoxflowError as exc:
                failures.append((name, str(exc)))
                reporter.finished(name, str(exc))
                continue
            reporter.finished(name, None)
    finally:
        reporter.close()
    # stdout gets the results in input order, whatever order they finished in.
    for name in names:
        if name in stdout_results:
            if len(names) > 1:  # several inputs on one stream: say which is which, as tail does
                sys.stdout.write(f"==> {name} <==\n")
            sys.stdout.write(stdout_results[name])
    sys.stdout.flush()
    return failures
