"""A bounded handoff from a worker thread to an asyncio loop.

The thread blocks for room and the loop awaits items. Items reach the loop as plain callbacks,
never as tasks, so a loop that stops before the thread leaves nothing pending behind it
(``run_coroutine_threadsafe(queue.put(...))`` left a ``Queue.put`` task that asyncio reported as
destroyed while pending when the server shut down).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items from threads to the running loop, at most ``size`` waiting (0: no bound)."""

    def __init__(self, size: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T] = asyncio.Queue()
        self._room = threading.Semaphore(size) if size else None
        self._closed = threading.Event()

    def put(self, item: T) -> bool:
        """From a thread: hand ``item`` over once there is room; False when the loop side has
        closed the handoff or the loop itself is gone (the item is dropped)."""
        if self._room is not None:
            while not self._room.acquire(timeout=0.5):
                if self._closed.is_set():
                    return False
        if self._closed.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop has closed
            return False
        return True

    def call(self, fn: Callable[..., object], *args: object) -> None:
        """From a thread: run ``fn(*args)`` on the loop, in order with the items handed over
        (nothing when the loop has gone)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    def put_nowait(self, item: T) -> None:
        """On the loop, for an unbounded handoff: hand ``item`` over now (for callers that must
        not wait, such as an audio device's callback, and keep their own limit)."""
        self._queue.put_nowait(item)

    async def get(self) -> T:
        """On the loop: the next item, making room for one more."""
        item = await self._queue.get()
        if self._room is not None:
            self._room.release()
        return item

    def qsize(self) -> int:
        """Items waiting for the loop."""
        return self._queue.qsize()

    def close(self) -> None:
        """The loop side wants no more: a thread waiting for room gives up."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed.is_set()
