"""``voxflow silence`` and ``voxflow split``: pydub's silence detection over files, streamed.

Both decode each file chunk by chunk (memory does not grow with its length), go on past a bad
file and report every failure at the end, one line each, with a non-zero exit code. Paths are
not checked by click (``readable=False``): the decoder reports an unreadable file in that line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from voxflow import silence as vs
from voxflow._silence_core import ms_to_frame
from voxflow._silence_scan import check_params
from voxflow.errors import ConfigError, InputError, OutputError, VoxflowError, printable
from voxflow.outputs import write_atomic

from .app import app

MinSilence = Annotated[
    int, typer.Option("--min-silence-len", help="Shortest silence that counts, in ms.")
]
Thresh = Annotated[
    float, typer.Option("--silence-thresh", help="Quieter than this (dBFS) is silence.")
]
SeekStep = Annotated[int, typer.Option("--seek-step", help="Step between windows, in ms.")]


class ListFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class AudioFormat(StrEnum):
    wav = "wav"
    flac = "flac"
    mp3 = "mp3"
    opus = "opus"


def _fail(failures: list[str]) -> None:
    """Report every failure, one line each, and end with exit code 1."""
    for message in failures:
        print(f"voxflow: error: {message}", file=sys.stderr)
    if failures:
        raise SystemExit(1)  # main() turns this into the exit code


def _error_text(exc: Exception, name: str) -> str:
    if isinstance(exc, VoxflowError):
        return str(exc) if exc.source else f"{name}: {exc}"
    return printable(f"{name}: {getattr(exc, 'strerror', None) or exc}")


@app.command("silence")
def silence_command(
    files: Annotated[list[Path], typer.Argument(help="Audio or video files.", readable=False)],
    min_silence_len: MinSilence = 1000,
    silence_thresh: Thresh = -16.0,
    seek_step: SeekStep = 1,
    nonsilent: Annotated[
        bool, typer.Option("--nonsilent", help="List the sound between silences instead.")
    ] = False,
    fmt: Annotated[ListFormat, typer.Option("--format", help="Output format.")] = ListFormat.table,
) -> None:
    """List silent (or non-silent) ranges, start and end in ms, as pydub's detect_silence."""
    detect = vs.stream_nonsilent if nonsilent else vs.stream_silence
    check_params(min_silence_len, seek_step)
    results: dict[str, list[list[int]]] = {}
    failures: list[str] = []
    for path in files:
        try:
            results[str(path)] = list(detect(path, min_silence_len, silence_thresh, seek_step))
        except (VoxflowError, OSError) as exc:
            failures.append(_error_text(exc, str(path)))
    if results:
        sys.stdout.write(_render(results, fmt, single=len(files) == 1))
    _fail(failures)


def _render(results: dict[str, list[list[int]]], fmt: ListFormat, single: bool) -> str:
    if fmt is ListFormat.json:
        payload: object = next(iter(results.values())) if single else results
        return json.dumps(payload) + "\n"
    if fmt is ListFormat.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["file", "start_ms", "end_ms"])
        for name, ranges in results.items():
            writer.writerows([name, start, end] for start, end in ranges)
        return out.getvalue()
    lines = []  # a table for people: names with control characters escaped
    shown = {printable(name): ranges for name, ranges in results.items()}
    width = max(len(name) for name in shown)
    lines.append(f"{'file':<{width}}  {'start_ms':>10}  {'end_ms':>10}  {'length_ms':>10}")
    for name, ranges in shown.items():
        lines.extend(
            f"{name:<{width}}  {start:>10}  {end:>10}  {end - start:>10}" for start, end in ranges
        )
    return "\n".join(lines) + "\n"


@app.command("split")
def split_command(
    file: Annotated[Path, typer.Argument(help="Audio or video file to cut.", readable=False)],
    out: Annotated[
        Path,
        typer.Option("--out", help="Directory for the chunks and manifest.", readable=False),
    ],
    fmt: Annotated[AudioFormat, typer.Option("--format", help="Chunk file format.")] = (
        AudioFormat.wav
    ),
    min_silence_len: MinSilence = 1000,
    silence_thresh: Thresh = -16.0,
    seek_step: SeekStep = 1,
    keep_silence: Annotated[
        int, typer.Option("--keep-silence", help="Silence kept at each side of a chunk, ms.")
    ] = 100,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace chunk and manifest files that exist.")
    ] = False,
) -> None:
    """Cut FILE at its silences, as pydub's split_on_silence, into numbered chunk files plus
    manifest.json and manifest.csv giving each chunk's start_ms and end_ms."""
    check_params(min_silence_len, seek_step)
    if keep_silence < 0:
        raise ConfigError(f"--keep-silence must be >= 0 ms, got {keep_silence}")
    _check_rereadable(file)
    ranges = vs.stream_split_ranges(file, min_silence_len, silence_thresh, keep_silence,
                                    seek_step)
    names = [f"chunk-{i + 1:04d}.{fmt.value}" for i in range(len(ranges))]
    targets = [out / name for name in [*names, "manifest.json", "manifest.csv"]]
    if not overwrite:
        taken = [str(t) for t in targets if t.exists()]
        if taken:
            raise OutputError(
                f"{len(taken)} output file(s) already exist, e.g. {taken[0]} "
                "(use --overwrite to replace them)",
                source=str(out),
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create: {exc.strerror or exc}", source=str(out)) from None
    _write_chunks(file, ranges, [out / n for n in names], fmt.value, overwrite)
    chunks = [
        {"index": i + 1, "file": name, "start_ms": start, "end_ms": end}
        for i, (name, (start, end)) in enumerate(zip(names, ranges, strict=True))
    ]
    manifest = {
        "source": str(file),
        "min_silence_len": min_silence_len,
        "silence_thresh": silence_thresh,
        "seek_step": seek_step,
        "keep_silence": keep_silence,
        "chunks": chunks,
    }
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2) + "\n",
                 overwrite=overwrite)
    table = io.StringIO()
    writer = csv.DictWriter(table, ["index", "file", "start_ms", "end_ms"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(chunks)
    write_atomic(out / "manifest.csv", table.getvalue(), overwrite=overwrite)
    print(printable(f"{file}: {len(chunks)} chunk(s) written to {out}"), file=sys.stderr)


def _check_rereadable(file: Path) -> None:
    """Refuse a pipe or device at once: split reads FILE twice (find the silences, then cut),
    and a pipe gives its data only once (the second pass would find it empty or writerless)."""
    try:
        mode = stat.S_IFIFO if str(file) == "-" else os.stat(file).st_mode  # "-": stdin
    except OSError:
        return  # missing or unreadable: the decoder says so in its usual words
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError("split reads its input twice, and a pipe or device only once: "
                         "save it to a file first",
                         source="<stdin>" if str(file) == "-" else str(file))  # fmt: skip


def _write_chunks(
    file: Path, ranges: list[tuple[int, int]], paths: list[Path], fmt: str, overwrite: bool
) -> None:
    """Second streaming pass: decode again and send each chunk's frames to its own file."""
    from voxflow.audio import open_audio
    from voxflow.export import AudioWriter, cut_frames

    with open_audio(file, sample_rate=None, channels=None, dtype="native") as stream:
        rate, channels, width = stream.sample_rate, stream.channels, stream.sample_width
        frame_ranges = [(ms_to_frame(a, rate), ms_to_frame(b, rate)) for a, b in ranges]
        blocks = (chunk.samples for chunk in stream)
        for index, pieces in cut_frames(blocks, frame_ranges):
            with AudioWriter(paths[index], sample_rate=rate, channels=channels,
                             sample_width=width, fmt=fmt, overwrite=overwrite) as writer:
                for piece in pieces:
                    writer.write(piece)
