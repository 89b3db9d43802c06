"""Continuous batching: requests from concurrent callers merged into batched model calls.

Files transcribed at the same time each ask the engine for a few clips; alone, each call
would run a small batch. Requests wait in groups (by a key such as the language) while the
workers are busy, and a free worker takes the largest group, up to the batch size. The first
request never waits for company: a free worker starts on it at once.

Background requests (interim hypotheses) are best effort: a worker takes one only when no
other request waits, and never the last free worker while there are others, so that a final
result arriving meanwhile starts at once instead of queueing behind a partial decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any


@dataclass
class _Job:
    item: Any
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class Batcher:
    """Runs ``work(key, items) -> results`` (one result per item) in ``executor``'s threads."""

    def __init__(
        self,
        work: Callable[[Hashable, list[Any]], Sequence[Any]],
        executor: Executor,
        *,
        workers: int,
        batch_size: int,
    ) -> None:
        self._work = work
        self._executor = executor
        self._free = workers
        self._batch_size = batch_size
        self._workers = workers
        self._pending: dict[tuple[bool, Hashable], list[_Job]] = {}  # (background, key)
        self._lock = threading.Lock()  # callers may run event loops in several threads

    async def run(
        self, key: Hashable, items: Sequence[Any], *, background: bool = False
    ) -> list[Any]:
        """Queue ``items`` under ``key`` and wait for their results, in order."""
        loop = asyncio.get_running_loop()
        jobs = [_Job(item, loop.create_future(), loop) for item in items]
        with self._lock:
            self._pending.setdefault((background, key), []).extend(jobs)
        self._dispatch()
        return list(await asyncio.gather(*(job.future for job in jobs)))

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                live = {k: [j for j in v if not j.future.done()] for k, v in self._pending.items()}
                self._pending = {k: v for k, v in live.items() if v}
                urgent = [k for k in self._pending if not k[0]]
                spare = self._free == self._workers or self._free > 1
                if self._free == 0 or not (urgent or (self._pending and spare)):
                    return
                group = max(urgent or self._pending, key=lambda k: len(self._pending[k]))
                jobs = self._pending[group][: self._batch_size]
                self._pending[group] = self._pending[group][self._batch_size :]
                self._free -= 1
            done = self._executor.submit(self._work, group[1], [job.item for job in jobs])
            done.add_done_callback(lambda f, jobs=jobs: self._finished(f, jobs))

    def _finished(self, done: Any, jobs: list[_Job]) -> None:
        """Runs in the worker thread: hand results to each caller's loop, then dispatch more."""
        with self._lock:
            self._free += 1
        error = done.exception()
        results = None if error else list(done.result())
        for i, job in enumerate(jobs):
            value = error if error else results[i]  # type: ignore[index]
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed meanwhile
                job.loop.call_soon_threadsafe(_settle, job.future, value, error is not None)
        self._dispatch()


def _settle(future: asyncio.Future[Any], value: Any, failed: bool) -> None:
    if future.done():  # the caller gave up (cancelled)
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)
