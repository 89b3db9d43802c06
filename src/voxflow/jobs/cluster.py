"""Running a batch on a Dask ``distributed`` cluster: the client keeps the job, workers compute.

The client does what the local runner does — plans the job, holds its SQLite state, writes
every output atomically (the same :func:`.runner.run_batch_with`) — and hands the work on each
input to the cluster as three kinds of task:

1. ``plan_source`` (one per input): decodes the whole input, cuts it into clips with the very
   code the local pipeline uses (:class:`voxflow.pipeline.SpeechClips`), decides the language
   from the first speech as the pipeline does (:func:`voxflow.pipeline.starting_plan`), and
   groups the clips into pieces of at most ``piece_seconds`` of the source. Pieces end where
   clips end, so a long input is cut at its silences (as the Azure engine cuts sessions).
2. ``piece_of`` (one per piece, on the planning worker): takes one piece's clips out of the plan,
   so that only that piece's audio travels to the worker that recognises it.
3. ``recognize_piece`` (one per piece, anywhere): each clip in a call of its own
   (:func:`voxflow.pipeline.recognize_clip`), gathered with :class:`voxflow.pipeline.ClipOutcomes`;
   with ``--diarize`` also the speaker embeddings of the piece's speech (``Voiceprints``, a few
   KB a minute), clip by clip as the local pipeline makes them.

The client merges the pieces in order, clusters the voiceprints of all of them into speakers
(so that a speaker keeps one label across pieces), and builds the transcript with
:func:`voxflow.pipeline.assemble`. Every clip, its start in the source (so its times: no
re-basing is needed) and the plan it is recognised by are what a local run uses, and each clip
is its own engine call either way, so a cluster run writes the same bytes as a local run, by
construction.

Audio: a worker reads an input from its path when it sees a regular file there of the same size
and SHA-256 (a shared file system); otherwise the client sends the input's bytes with the task
(so the scheduler holds them, and a worker that dies does not lose them). Standard input is
always sent as bytes.

Faults are Dask's: a task whose worker dies is run again elsewhere from its inputs (the plan
from the input, a piece from the plan), and the client only writes once every piece is in, so
nothing is lost or written twice; a task that killed ``distributed.scheduler.allowed-failures``
workers fails its input with that reason; an input that cannot be decoded fails with its own
one-line error; the batch goes on. The job state lives with the client, so a client killed and
run again skips the inputs it finished (the pieces of unfinished ones are redone).

Each worker process creates one engine per engine options (the model loads once per process),
and the typed options travel to it with the tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import os
import re
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voxflow.audio.sources import read_bytes
from voxflow.engines import create_engine
from voxflow.engines.base import Clip, DecodeSettings, Engine, EngineOptions
from voxflow.errors import ConfigError, VoxflowError
from voxflow.languages import LanguagePlan
from voxflow.numerics import blas_threads, use_blas_threads
from voxflow.pipeline import (
    ClipOutcomes,
    Progress,
    ProgressCallback,
    SpeechClips,
    TranscribeOptions,
    assemble,
    recognize_clip,
    starting_plan,
    voiced,
    with_speakers,
)
from voxflow.progress import Reporter
from voxflow.speakers import DiarizeOptions, SpeakerTracker, Voiceprints
from voxflow.transcript import Segment, Transcript

from .plan import file_sha256, fingerprint, regular_stat
from .runner import BatchOptions, BatchResult, run_batch_with
from .state import JobState

if TYPE_CHECKING:
    from distributed import Client

PIECE_SECONDS = 180.0  # audio per recognition task: minutes, so a long input spreads widely
_LOCAL = re.compile(r"local(?::(\d+))?")
_EXTRA = "the cluster runner needs Dask distributed: pip install 'voxflow[cluster]'"


@dataclass(frozen=True)
class ClusterOptions:
    """Where the batch runs: ``address`` of a running scheduler (``tcp://HOST:PORT``), or
    ``local`` workers started here (``local_workers`` processes); ``piece_seconds``: the most
    audio of one input one recognition task takes."""

    address: str | None = None
    local_workers: int = 0
    piece_seconds: float = PIECE_SECONDS

    def __post_init__(self) -> None:
        if (self.address is None) == (self.local_workers == 0):
            raise ConfigError("a cluster is a scheduler address or a number of local workers")
        if self.local_workers < 0:
            raise ConfigError(f"local workers must be at least 1, got {self.local_workers}")
        if not self.piece_seconds > 0:
            raise ConfigError(f"piece length must be positive, got {self.piece_seconds:g} s")

    @classmethod
    def parse(cls, spec: str, *, piece_seconds: float = PIECE_SECONDS) -> ClusterOptions:
        """``tcp://HOST:PORT`` (any Dask address with a scheme), ``local`` (a worker process
        per core) or ``local:N``."""
        spec = spec.strip()
        if local := _LOCAL.fullmatch(spec):
            count = int(local.group(1)) if local.group(1) else os.cpu_count() or 1
            if count < 1:
                raise ConfigError(f"--cluster {spec}: local needs at least 1 worker")
            return cls(local_workers=count, piece_seconds=piece_seconds)
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", spec):
            raise ConfigError(
                f"--cluster {spec!r}: give a scheduler address (tcp://HOST:PORT) or local[:N]"
            )
        return cls(address=spec, piece_seconds=piece_seconds)


async def run_batch_on_cluster(
    names: list[str],
    *,
    cluster: ClusterOptions,
    engine_options: EngineOptions,
    options: TranscribeOptions,
    batch: BatchOptions,
    reporter: Reporter | None = None,
    job: JobState | None = None,
) -> BatchResult:
    """:func:`voxflow.jobs.run_batch` with the work done on a Dask cluster. At least twice as
    many inputs are in flight as the cluster has worker threads, so that none waits idle."""
    engine_options = _for_local_workers(engine_options, cluster.local_workers)
    async with _connect(cluster, task_threads(engine_options)) as client:
        threads = sum((await client.nthreads()).values())
        concurrency = max(batch.concurrency, 2 * threads)
        remote = ClusterTranscriber(client, engine_options, options, cluster.piece_seconds)
        return await run_batch_with(
            names, remote, fingerprint(options, engine_options, batch.formats),
            batch=dataclasses.replace(batch, concurrency=concurrency), reporter=reporter, job=job,
        )  # fmt: skip


def task_threads(engine_options: EngineOptions) -> int:
    """Tasks a worker process should run at once: twice the engine's model workers, so that
    every model worker stays busy while a piece of one clip, or a planning task, runs."""
    from voxflow.engines.whisper import WhisperOptions

    return 2 * (engine_options.num_workers if isinstance(engine_options, WhisperOptions) else 1)


def _for_local_workers(engine_options: EngineOptions, workers: int) -> EngineOptions:
    """Whisper options whose threads share this machine's cores among ``workers`` processes
    (a remote worker's engine takes all of its own machine's cores)."""
    from voxflow.engines.whisper import WhisperOptions

    if workers and isinstance(engine_options, WhisperOptions) and not engine_options.cpu_threads:
        share = (os.cpu_count() or 1) // (workers * engine_options.num_workers)
        return dataclasses.replace(engine_options, cpu_threads=max(1, share))
    return engine_options


@contextlib.asynccontextmanager
async def _connect(cluster: ClusterOptions, threads: int) -> AsyncIterator[Client]:
    """An asynchronous Client of the scheduler, or of a LocalCluster of ``threads`` threads
    per worker process started for the batch."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(_EXTRA) from None
    async with contextlib.AsyncExitStack() as stack:
        address: Any = cluster.address
        if address is None:
            local = LocalCluster(
                n_workers=cluster.local_workers, threads_per_worker=threads, processes=True,
                dashboard_address=None, asynchronous=True,
            )  # fmt: skip
            address = await stack.enter_async_context(local)
        try:
            client = await stack.enter_async_context(
                Client(address, asynchronous=True, timeout="10s")
            )
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        yield client


# -- what travels to the workers -----------------------------------------------------------


@dataclass(frozen=True)
class AudioRef:
    """An input as a worker gets it: its path, with the size and SHA-256 that tell whether the
    worker sees the same file there, or (``data``) the bytes themselves."""

    path: str
    size: int | None = None
    sha256: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class Piece:
    """Consecutive clips of one input, recognised by one task; ``settles``: the seconds of the
    input it completes (the silence before it included), for progress."""

    clips: tuple[Clip, ...]
    settles: float


@dataclass(frozen=True)
class SourcePlan:
    """What the planning task found: the plan the clips are recognised by (its language decided
    when decided at the start), the input's lengths, and its pieces."""

    plan: LanguagePlan
    duration: float | None  # decoded
    total: float | None  # declared by the container
    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class Outline:
    """A :class:`SourcePlan` without its audio, for the client."""

    plan: LanguagePlan
    duration: float | None
    total: float | None
    settles: tuple[float, ...]


@dataclass(frozen=True)
class Unseen:
    """The worker does not see the input at its path (or sees another file there)."""


@dataclass(frozen=True)
class TaskFailed:
    """An input that cannot be done, and why in one line (the client names the input)."""

    reason: str


@dataclass(frozen=True)
class PieceResult:
    """Each clip's segments, what the engine lost or returned without text, and (diarizing)
    the voiceprints of the piece's speech."""

    segments: tuple[list[Segment], ...]
    outcomes: ClipOutcomes
    voiceprints: Voiceprints = field(default_factory=Voiceprints)


# -- worker side ---------------------------------------------------------------------------

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_engines: dict[EngineOptions, Engine] = {}
_engines_lock = threading.Lock()


def worker_engine(options: EngineOptions, blas: int | None = None) -> Engine:
    """This process's engine for ``options``, created (its model loaded) on first use; numpy's
    BLAS runs the client's ``blas`` threads, so that its numbers are the client's."""
    use_blas_threads(blas)
    with _engines_lock:
        if options not in _engines:
            _keep_large_buffers()
            _engines[options] = create_engine(options)  # type: ignore[arg-type]
        return _engines[options]


def _keep_large_buffers() -> None:
    """Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, which turns off glibc's
    adaptive mmap threshold: every large buffer of the model is then mapped and unmapped anew,
    and recognition ran 1.7x slower. A fixed threshold of 32 MiB gives the speed back."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to undo
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 32 << 20)


def _as_value(work: Coroutine[Any, Any, Any]) -> Any:
    """Run a task's coroutine on a loop of its own; voxflow's one-line errors come back as a
    :class:`TaskFailed` value (an exception would lose its parts on the way)."""
    try:
        return asyncio.run(work)
    except VoxflowError as exc:
        return TaskFailed(exc.reason if exc.source else str(exc))


def plan_source(
    audio: AudioRef,
    name: str,
    options: TranscribeOptions,
    engine_options: EngineOptions,
    piece_seconds: float,
    blas: int | None = None,
) -> SourcePlan | Unseen | TaskFailed:
    """Task: decode and segment one input as the local pipeline does, decide its language,
    and cut its clips into pieces."""
    source: Any
    if audio.data is not None:
        source = audio.data
    elif _sees(audio):
        source = audio.path
    else:
        return Unseen()

    async def work() -> SourcePlan:
        engine = worker_engine(engine_options, blas)
        if engine.capabilities.reads_source:
            raise ConfigError("an engine that reads whole files (--azure-compressed) "
                              "does not run on a cluster")  # fmt: skip
        clips = SpeechClips(source, options, name, engine.capabilities)
        found = list(clips)
        plan = await starting_plan(engine, options.languages, found)
        return SourcePlan(plan, clips.duration, clips.total, _pieces(found, piece_seconds))

    return _as_value(work())


def _sees(audio: AudioRef) -> bool:
    """Whether this worker sees the input itself at its path: same size, same content."""
    found = regular_stat(audio.path)
    return (
        found is not None
        and found.st_size == audio.size
        and file_sha256(audio.path) == audio.sha256
    )


def _pieces(clips: Sequence[Clip], piece_seconds: float) -> tuple[Piece, ...]:
    """Consecutive clips, each group spanning at most ``piece_seconds`` (one clip at least)."""
    groups: list[list[Clip]] = []
    for clip in clips:
        if groups and clip.end - groups[-1][0].start <= piece_seconds:
            groups[-1].append(clip)
        else:
            groups.append([clip])
    pieces, settled = [], 0.0
    for group in groups:
        pieces.append(Piece(tuple(group), max(0.0, group[-1].end - settled)))
        settled = max(settled, group[-1].end)
    return tuple(pieces)


def outline_of(planned: SourcePlan | Unseen | TaskFailed) -> Outline | Unseen | TaskFailed:
    """Task: the plan without its audio (on the planning worker, so no audio moves)."""
    if not isinstance(planned, SourcePlan):
        return planned
    settles = tuple(p.settles for p in planned.pieces)
    return Outline(planned.plan, planned.duration, planned.total, settles)


def piece_of(planned: SourcePlan, index: int) -> Piece:
    """Task: one piece of the plan (on the planning worker)."""
    return planned.pieces[index]


def recognize_piece(
    piece: Piece,
    plan: LanguagePlan,
    settings: DecodeSettings,
    engine_options: EngineOptions,
    diarize: DiarizeOptions | None = None,
    blas: int | None = None,
) -> PieceResult | TaskFailed:
    """Task: recognise a piece's clips, each in a call of its own, all at once (the engine
    shares its model workers among them); diarizing, embed their speech meanwhile."""

    async def work() -> PieceResult:
        engine = worker_engine(engine_options, blas)
        calls = (recognize_clip(engine, clip, plan, settings) for clip in piece.clips)
        prints = asyncio.ensure_future(asyncio.to_thread(_voiceprints, piece, diarize))
        done = await asyncio.gather(*calls)
        outcomes = ClipOutcomes()
        segments = tuple(segs for segs, _ in done)
        outcomes.add(piece.clips, segments, [f for _, lost in done for f in lost])
        return PieceResult(segments, outcomes, await prints)

    return _as_value(work())


def _voiceprints(piece: Piece, diarize: DiarizeOptions | None) -> Voiceprints:
    """The speaker embeddings of a piece's speech, clip by clip as the local pipeline's (none
    without diarization)."""
    if diarize is None:
        return Voiceprints()
    tracker = SpeakerTracker(diarize)
    for clip in piece.clips:
        for speech in voiced(clip):
            tracker.add(speech.start, speech.samples)
    return tracker.voiceprints()


# -- client side ---------------------------------------------------------------------------


class ClusterTranscriber:
    """Transcribes one input on the cluster (a :class:`.bounds.Transcribe`)."""

    def __init__(
        self,
        client: Client,
        engine_options: EngineOptions,
        options: TranscribeOptions,
        piece_seconds: float = PIECE_SECONDS,
    ) -> None:
        self.client = client
        self.engine_options = engine_options
        self.options = options
        self.piece_seconds = piece_seconds
        self.blas = blas_threads()  # the workers compute with as many BLAS threads

    async def __call__(self, source: Any, *, name: str, progress: ProgressCallback) -> Transcript:
        held: list[Any] = []  # the futures of work to cancel when the input fails or is given up
        try:
            return await self._transcribe(source, name, progress, held)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.client.cancel(held)
            raise

    async def _transcribe(
        self, source: Any, name: str, progress: ProgressCallback, held: list[Any]
    ) -> Transcript:
        from distributed import as_completed

        audio = await asyncio.to_thread(_reference, source, name)
        planned, outline = await self._plan(audio, name, held)
        if isinstance(outline, Unseen):  # the workers do not share this file system
            data = await asyncio.to_thread(read_bytes, audio.path, name)
            planned, outline = await self._plan(dataclasses.replace(audio, data=data), name, held)
        outline = _checked(outline, name)
        submit = self.client.submit
        results = [
            submit(recognize_piece, submit(piece_of, planned, i, pure=False), outline.plan,
                   self.options.decode, self.engine_options, self.options.diarize, self.blas,
                   pure=False)
            for i in range(len(outline.settles))
        ]  # fmt: skip
        held[:] = results  # the plan (the input's audio) is forgotten once its pieces are out
        del planned
        order = {future.key: i for i, future in enumerate(results)}
        pieces: list[PieceResult] = [PieceResult((), ClipOutcomes())] * len(results)
        done, count = 0.0, 0
        async for finished in as_completed(results):
            i = order[finished.key]
            pieces[i] = _checked(await _result(finished, name), name)
            done += outline.settles[i]
            count += sum(len(segs) for segs in pieces[i].segments)
            progress(Progress(name, done, outline.total, count))
        segments: list[Segment] = []
        outcomes = ClipOutcomes()
        prints = Voiceprints()
        for piece in pieces:  # in time order
            segments += [seg for segs in piece.segments for seg in segs]
            outcomes.extend(piece.outcomes)
            prints += piece.voiceprints
        info: dict[str, Any] = {}
        if self.options.diarize is not None:
            found = await asyncio.to_thread(prints.diarize, self.options.diarize)
            segments = with_speakers(segments, found.turns, info, found.overlaps)
        total = outline.duration if outline.duration is not None else outline.total
        outcomes.finish(name, outline.plan, total, info)
        progress(Progress(name, total or done, total, count, len(outcomes.dropped), finished=True))
        return assemble(name, segments, info)

    async def _plan(
        self, audio: AudioRef, name: str, held: list[Any]
    ) -> tuple[Any, Outline | Unseen | TaskFailed]:
        """Submit the planning of an input: its future and (awaited) its outline."""
        planned = self.client.submit(
            plan_source, audio, name, self.options, self.engine_options, self.piece_seconds,
            self.blas,
            pure=False,
        )  # fmt: skip
        held[:] = [planned]
        outline = await _result(self.client.submit(outline_of, planned, pure=False), name)
        return planned, outline


def _checked(value: Any, name: str) -> Any:
    """A task's value, or the input's one-line error."""
    if isinstance(value, TaskFailed):
        raise VoxflowError(value.reason, source=name)
    return value


async def _result(future: Any, name: str) -> Any:
    """A task's value; a task Dask gave up on (its workers died), a lost connection or an
    unexpected failure in a task is the input's one-line error, and the batch goes on."""
    from distributed import KilledWorker

    try:
        return await future
    except KilledWorker as exc:
        raise VoxflowError(f"the cluster gave up on it: {exc}", source=name) from None
    except (OSError, TimeoutError) as exc:
        raise VoxflowError(f"the cluster connection failed: {exc}", source=name) from None
    except Exception as exc:  # raised in a task: the worker's traceback stays in its log
        raise VoxflowError(f"{type(exc).__name__}: {exc}", source=name) from None


def _reference(source: Any, name: str) -> AudioRef:
    """How the workers are told of an input: a regular file by its path, size and hash;
    anything else (standard input, a pipe) by its bytes."""
    path = os.path.abspath(source) if isinstance(source, (str, os.PathLike)) else None
    found = regular_stat(path) if path else None
    if path and found:
        return AudioRef(path, found.st_size, file_sha256(path))
    return AudioRef(path or name, data=read_bytes(source, name=name))
