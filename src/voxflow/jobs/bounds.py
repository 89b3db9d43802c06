"""Per-file bounds: a wall-clock time limit and a cap on the decoded length.

The length is checked first from the duration the container declares, then, where that is
unknown or wrong, from the audio recognised so far (the progress events) and finally from the
decoded length. On expiry the transcription is cancelled: the pipeline stops its decoder and
drops the pending batches; a model call already running in a worker thread cannot be killed,
so it finishes in the background and its result is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable
from typing import Any, Protocol

from voxflow.errors import InputError, VoxflowError
from voxflow.pipeline import Progress, ProgressCallback
from voxflow.transcript import Transcript


class Transcribe(Protocol):
    """How one input becomes its Transcript: the pipeline in this process, or a cluster."""

    def __call__(
        self, source: Any, *, name: str, progress: ProgressCallback
    ) -> Awaitable[Transcript]: ...


def too_long(name: str, limit: float, seconds: float | None = None) -> InputError:
    """The error of an input longer than ``--max-duration``."""
    length = f" ({seconds:.1f} s)" if seconds is not None else ""
    return InputError(f"longer than the --max-duration limit of {limit:g} s{length}", source=name)


async def declared_duration(source: Any) -> float | None:
    """The duration a regular file's container declares; None if unknown or unreadable."""
    if not isinstance(source, (str, os.PathLike)) or not os.path.isfile(source):
        return None  # a pipe or a device would be consumed by probing
    from voxflow.audio import probe

    try:
        return (await asyncio.to_thread(probe, source)).duration
    except VoxflowError:
        return None  # the transcription reports the problem in its own words


async def transcribe_bounded(
    source: Any,
    *,
    name: str,
    transcribe: Transcribe,
    progress: ProgressCallback | None = None,
    timeout: float | None = None,
    max_duration: float | None = None,
) -> Transcript:
    """``transcribe`` (e.g. :func:`voxflow.pipeline.transcribe_async`) within ``timeout``
    seconds (wall clock) and ``max_duration`` seconds of audio; exceeding either is a one-line
    VoxflowError."""
    if max_duration is not None:
        declared = await declared_duration(source)
        if declared is not None and declared > max_duration:
            raise too_long(name, max_duration, declared)
    exceeded = False

    def watch(event: Progress) -> None:
        nonlocal exceeded
        if max_duration is not None and event.done > max_duration and not exceeded:
            exceeded = True
            inner.cancel()
        if progress is not None:
            progress(event)

    inner = asyncio.ensure_future(transcribe(source, name=name, progress=watch))
    try:
        finished, _ = await asyncio.wait({inner}, timeout=timeout)
    except asyncio.CancelledError:
        await _abandon(inner)
        raise
    if not finished:
        await _abandon(inner)
        raise VoxflowError(f"timed out after {timeout:g} s", source=name)
    if exceeded and inner.cancelled():
        raise too_long(name, max_duration or 0.0)
    transcript = inner.result()
    if max_duration is not None and transcript.duration > max_duration:
        raise too_long(name, max_duration, transcript.duration)
    return transcript


async def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel the transcription and let its clean-up run (stopping the decoder thread)."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
