"""The engine's batcher schedules final decodes before interim (background) ones: a final
never queues behind a partial decode. The work function here stands in for the model so that
each call's start and end are under the test's control; the real engine's use of it is
covered by the interim tests in test_server.py and test_cli_listen.py."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from voxflow.engines.whisper.batching import Batcher


class Work:
    """Records which key each model call ran and holds it until the test releases it."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, items: list[int]) -> list[int]:
        with self._lock:
            self.started.append(key)
            gate = self.release.setdefault(key, threading.Event())
        assert gate.wait(10), f"{key} was never released"
        return [i * 10 for i in items]

    def let_go(self, key: str) -> None:
        with self._lock:
            self.release.setdefault(key, threading.Event()).set()


async def _until(check, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_a_final_never_waits_behind_an_interim_decode() -> None:
    async def main() -> None:
        work = Work()
        with ThreadPoolExecutor(2) as pool:
            batcher = Batcher(work, pool, workers=2, batch_size=1)
            # Idle workers: an interim starts at once, but leaves the other worker free.
            interim = asyncio.ensure_future(batcher.run("interim-1", [1], background=True))
            await _until(lambda: work.started == ["interim-1"])
            final = asyncio.ensure_future(batcher.run("final-1", [2]))
            await _until(lambda: work.started == ["interim-1", "final-1"])
            # With a final running, the last free worker is kept for finals: a second interim
            # waits, and a final queued after it still goes first.
            work.let_go("interim-1")
            assert await interim == [10]
            second = asyncio.ensure_future(batcher.run("interim-2", [3], background=True))
            await asyncio.sleep(0.2)
            assert work.started == ["interim-1", "final-1"]  # not even on the free worker
            later = asyncio.ensure_future(batcher.run("final-2", [4]))
            await _until(lambda: work.started[-1] == "final-2")
            work.let_go("final-1")
            work.let_go("final-2")
            assert await final == [20] and await later == [40]
            # Nothing else waits: the interim runs now.
            await _until(lambda: work.started[-1] == "interim-2")
            work.let_go("interim-2")
            assert await second == [30]
            assert work.started == ["interim-1", "final-1", "final-2", "interim-2"]

    asyncio.run(main())


def test_with_one_worker_an_interim_runs_when_nothing_else_waits() -> None:
    async def main() -> None:
        work = Work()
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(work, pool, workers=1, batch_size=1)
            final = asyncio.ensure_future(batcher.run("final", [1]))
            await _until(lambda: work.started == ["final"])
            interim = asyncio.ensure_future(batcher.run("interim", [2], background=True))
            second = asyncio.ensure_future(batcher.run("final-2", [3]))
            await asyncio.sleep(0.05)
            work.let_go("final")
            await _until(lambda: len(work.started) == 2)
            assert work.started[1] == "final-2"  # queued after the interim, served before it
            work.let_go("final-2")
            await _until(lambda: len(work.started) == 3)
            work.let_go("interim")
            assert (await final, await second, await interim) == ([10], [30], [20])

    asyncio.run(main())


def test_a_cancelled_interim_that_still_waits_is_never_run() -> None:
    async def main() -> None:
        work = Work()
        with ThreadPoolExecutor(2) as pool:
            batcher = Batcher(work, pool, workers=2, batch_size=1)
            final = asyncio.ensure_future(batcher.run("final", [1]))
            await _until(lambda: work.started == ["final"])
            interim = asyncio.ensure_future(batcher.run("interim", [2], background=True))
            await asyncio.sleep(0.05)
            interim.cancel()  # a phrase overtook it
            await asyncio.sleep(0.05)
            work.let_go("final")
            assert await final == [10]
            await asyncio.sleep(0.2)
            assert work.started == ["final"]

    asyncio.run(main())
