"""The thread-to-loop handoff: bounded, and leaving nothing pending when the loop goes first."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

import pytest

from voxflow.handoff import Handoff


def test_the_bound_holds_the_thread_back_until_the_loop_takes_an_item() -> None:
    async def main() -> list[int]:
        handoff: Handoff[int] = Handoff(2)
        handed: list[bool] = []
        thread = threading.Thread(target=lambda: handed.extend(handoff.put(i) for i in range(3)))
        thread.start()
        await asyncio.sleep(0.3)
        assert handoff.qsize() == 2 and thread.is_alive()  # the third waits for room
        got = [await handoff.get() for _ in range(3)]
        thread.join(5)
        assert handed == [True, True, True]
        return got

    assert asyncio.run(main()) == [0, 1, 2]


def test_a_loop_that_ends_first_leaves_no_pending_task_and_frees_the_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's shutdown used to report 'Task was destroyed but it is pending!' for a
    Queue.put scheduled from the decode thread; the handoff schedules no task at all."""
    results: list[bool] = []

    async def main() -> tuple[Handoff[int], threading.Thread]:
        handoff: Handoff[int] = Handoff(1)
        thread = threading.Thread(target=lambda: results.extend(handoff.put(i) for i in range(3)))
        thread.start()
        await asyncio.sleep(0.2)  # the second put waits for room
        return handoff, thread

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        handoff, thread = asyncio.run(main())
        handoff.close()
        thread.join(5)
        gc.collect()
    assert not thread.is_alive()
    assert results == [True, False, False]
    assert "pending" not in caplog.text


def test_a_put_after_the_loop_closed_is_refused() -> None:
    handoff: Handoff[int] = asyncio.run(_unbounded())
    started = time.monotonic()
    assert handoff.put(1) is False
    assert time.monotonic() - started < 1


async def _unbounded() -> Handoff[int]:
    return Handoff(0)
