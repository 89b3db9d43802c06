"""Running a batch of inputs: bounded concurrency, job state, bounds, interruption.

With an output directory every input is a row of the job state (see :mod:`.state`): finished
inputs are skipped, failed ones retried up to a limit, and each state change is committed as
it happens. Without one (stdout), results are rendered and kept for the caller to print.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from voxflow.engines.base import Engine
from voxflow.errors import VoxflowError, printable
from voxflow.formats import render
from voxflow.outputs import DiskFullError, encode_text, write_atomic
from voxflow.pipeline import ProgressCallback, TranscribeOptions, transcribe_async
from voxflow.progress import Reporter
from voxflow.transcript import Transcript

from .bounds import Transcribe, transcribe_bounded
from .plan import Planned, file_sha256, fingerprint, plan, regular_stat, verdict
from .signals import Interrupts
from .state import Item, JobState

State = Literal["done", "skipped", "failed", "pending"]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs and where it writes."""

    formats: tuple[str, ...]
    out_dir: Path | None = None  # None: render for stdout, no job state
    overwrite: bool = False
    concurrency: int = 2
    timeout: float | None = None
    max_duration: float | None = None
    max_attempts: int = 3
    retry_failed: bool = False  # try given-up inputs again (their count starts afresh)


@dataclass
class Outcome:
    """What became of one input in this run."""

    name: str
    state: State  # skipped: done by an earlier run
    error: str | None = None
    text: str | None = None  # stdout mode: the rendered transcript


@dataclass
class BatchResult:
    """The outcomes in input order, and why the batch ended early, if it did."""

    outcomes: list[Outcome]
    signal: int | None = None  # the signal that interrupted the batch
    stopped: str | None = None  # a reason that stopped the batch (a full disk)

    def count(self, *states: State) -> int:
        """How many inputs ended in any of ``states``."""
        return sum(1 for o in self.outcomes if o.state in states)


async def run_batch(
    names: list[str],
    *,
    engine: Engine,
    options: TranscribeOptions,
    batch: BatchOptions,
    reporter: Reporter | None = None,
    job: JobState | None = None,
) -> BatchResult:
    """Transcribe ``names`` as one batch in this process: a resumable job when
    ``batch.out_dir`` is set (its state opened here, or given open as ``job``), else rendered
    for stdout."""

    def here(source: Any, *, name: str, progress: ProgressCallback) -> Awaitable[Transcript]:
        return transcribe_async(
            source, engine=engine, options=options, progress=progress, name=name
        )

    return await run_batch_with(
        names, here, fingerprint(options, engine.options, batch.formats),
        batch=batch, reporter=reporter, job=job,
    )  # fmt: skip


async def run_batch_with(
    names: list[str],
    transcribe: Transcribe,
    options_fingerprint: str,
    *,
    batch: BatchOptions,
    reporter: Reporter | None = None,
    job: JobState | None = None,
) -> BatchResult:
    """:func:`run_batch` with each input transcribed by ``transcribe`` (e.g. on a cluster);
    ``options_fingerprint`` (:func:`.plan.fingerprint`) says what its outputs depend on."""
    own = job is None and batch.out_dir is not None
    if own and batch.out_dir is not None:
        job = JobState.open(batch.out_dir)
    try:
        planned = await plan(job, names) if job else [Planned(n, n, None) for n in names]
        work = _Batch(planned, job, transcribe, options_fingerprint, batch, reporter or Reporter())
        return await work.run()
    finally:
        if own and job is not None:
            job.close()


class _Batch:
    def __init__(
        self,
        planned: list[Planned],
        job: JobState | None,
        transcribe: Transcribe,
        options_fingerprint: str,
        batch: BatchOptions,
        reporter: Reporter,
    ) -> None:
        self.planned = planned
        self.job = job
        self.transcribe = transcribe
        self.batch = batch
        self.reporter = reporter
        self.fingerprint = options_fingerprint
        self.signal: int | None = None
        self.stopped: str | None = None
        self.tasks: list[asyncio.Task[Outcome]] = []

    async def run(self) -> BatchResult:
        outcomes: list[Outcome | None] = []
        todo: list[tuple[int, Planned]] = []
        for i, p in enumerate(self.planned):
            settled = self._settled(p, p.sha256) if p.sha256 else None
            outcomes.append(settled)
            if settled is None:
                todo.append((i, p))
        self.reporter.start([_display(p) for _, p in todo])
        gate = asyncio.Semaphore(self.batch.concurrency)
        loop = asyncio.get_running_loop()
        try:
            with Interrupts(loop, self._interrupt):
                self.tasks = [asyncio.ensure_future(self._one(p, gate)) for _, p in todo]
                results = await asyncio.gather(*self.tasks, return_exceptions=True)
        finally:
            self.reporter.close()
        for (i, p), result in zip(todo, results, strict=True):
            if isinstance(result, VoxflowError):  # the job state failed under this input
                result = Outcome(_display(p), "failed", str(result))
            elif isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError
            ):
                raise result  # a bug: let it show
            outcomes[i] = result if isinstance(result, Outcome) else Outcome(_display(p), "pending")
        final = [o for o in outcomes if o is not None]
        return BatchResult(final, self.signal, self.stopped)

    def _interrupt(self, signum: int) -> None:
        self.signal = signum
        self._cancel_all()

    def _stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
        self._cancel_all()

    def _cancel_all(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    def _settled(self, p: Planned, sha256: str | None) -> Outcome | None:
        """The outcome of an input that needs no work: done before, or given up on."""
        if p.item is None or self.job is None:
            return None
        item = self.job.item(p.path) or p.item
        found = verdict(item, sha256, self.fingerprint, self.job.directory,
                        self.batch.max_attempts)  # fmt: skip
        if found == "done":
            return Outcome(_display(p), "skipped")
        if found == "give-up" and not self.batch.retry_failed:
            reason = f"gave up after {item.attempts} attempts; the last: {item.error}"
            return Outcome(_display(p), "failed", reason)
        return None

    async def _one(self, p: Planned, gate: asyncio.Semaphore) -> Outcome:
        name = _display(p)
        try:
            async with gate:
                if self.signal is not None or self.stopped is not None:
                    return Outcome(name, "pending")
                outcome = await self._work(p, name)
        except asyncio.CancelledError:
            return Outcome(name, "pending")
        except DiskFullError as exc:  # the job state itself could not be written
            self._stop(str(exc))
            return Outcome(name, "pending", str(exc))
        self.reporter.finished(name, outcome.error)
        return outcome

    async def _work(self, p: Planned, name: str) -> Outcome:
        stat = regular_stat(p.path)
        sha = p.sha256
        if sha is None and stat is not None and self.job is not None:
            sha = await asyncio.to_thread(file_sha256, p.path)
        settled = self._settled(p, sha)
        if settled is not None:
            return settled
        item = self.job.item(p.path) if self.job and p.item else None
        if self.job and item:
            self.job.start(item, sha, self.fingerprint, stat, fresh=self.batch.retry_failed)
        source: Any = sys.stdin.buffer if p.path == "-" else p.name
        try:
            transcript = await transcribe_bounded(
                source, name=name, transcribe=self.transcribe,
                progress=self.reporter, timeout=self.batch.timeout,
                max_duration=self.batch.max_duration,
            )  # fmt: skip
        except VoxflowError as exc:
            return self._failed(item, name, exc.reason if exc.source else str(exc))
        except asyncio.CancelledError:
            if self.job and item:
                with contextlib.suppress(VoxflowError):
                    self.job.release(item)
            raise
        try:
            written = self._deliver(item, transcript)
        except DiskFullError as exc:
            if self.job and item:
                with contextlib.suppress(VoxflowError):
                    self.job.release(item)
            self._stop(str(exc))
            return Outcome(name, "pending", str(exc))
        except VoxflowError as exc:
            return self._failed(item, name, str(exc))
        if isinstance(written, str):
            return Outcome(name, "done", text=written)
        if self.job and item:
            self.job.finish(item, written)
        return Outcome(name, "done")

    def _failed(self, item: Item | None, name: str, reason: str) -> Outcome:
        if self.job and item:
            with contextlib.suppress(DiskFullError):
                self.job.fail(item, reason)
        return Outcome(name, "failed", reason)

    def _deliver(self, item: Item | None, transcript: Transcript) -> list[str] | str:
        """Render every format, then write each (stdout mode: return the one text).

        Rendering all first means a transcript that cannot be rendered writes nothing.
        """
        texts = [(fmt, render(transcript, fmt)) for fmt in self.batch.formats]
        if self.batch.out_dir is None or self.job is None or item is None:
            return texts[0][1]
        written = []
        for fmt, text in texts:
            target = self.batch.out_dir / f"{item.stem}.{fmt}"
            data = encode_text(text, target)
            digest = hashlib.sha256(data).hexdigest()
            replace = self.batch.overwrite or self._ours(target)
            self.job.record_output(item, target.name, digest)  # before it can exist
            temp = self.job.temp_for(target.name, digest)  # so is its temporary's name
            write_atomic(target, data, overwrite=replace, temp=temp)
            self.job.forget_other_outputs(target.name, digest)
            written.append(target.name)
        return written

    def _ours(self, target: Path) -> bool:
        """Whether ``target`` holds exactly what this job once wrote there (so may replace it)."""
        if self.job is None or not target.is_file():
            return False
        sha = file_sha256(target)
        return sha is not None and self.job.wrote(target.name, sha)


def _display(p: Planned) -> str:
    return "<stdin>" if p.path == "-" else printable(p.name)
