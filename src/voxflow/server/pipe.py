"""A bounded byte pipe from the event loop to a decoder thread: a turn's audio as a file.

The websocket handler ``await``s ``write`` (which waits for room, so a slow recogniser slows
the socket down instead of filling memory); the pipeline's decoder thread calls ``read``
like on a pipe (it blocks until bytes or the end come). ``close`` marks the end of the audio;
``abort`` drops everything and wakes both sides, for a turn that is abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque


class AudioPipe:
    """Bytes written on the loop, read (blocking) by one thread; at most ``limit`` held."""

    name = "<speech turn>"

    def __init__(self, limit: int = 256 * 1024) -> None:
        self.limit = limit
        self._loop = asyncio.get_running_loop()
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._closed = False
        self._aborted = False
        self._cond = threading.Condition()
        self._room: asyncio.Future[None] | None = None

    @property
    def held(self) -> int:
        """Bytes written but not yet read."""
        return self._size

    async def write(self, data: bytes) -> None:
        """Queue ``data``, waiting while the pipe holds ``limit`` bytes or more."""
        while True:
            with self._cond:
                if self._aborted or self._closed:
                    return
                if self._size < self.limit:
                    self._chunks.append(bytes(data))
                    self._size += len(data)
                    self._cond.notify()
                    return
                room = self._room = self._loop.create_future()
            await room

    def close(self) -> None:
        """End of audio: the reader gets what is left, then EOF."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Abandon the turn: drop queued bytes; reads return EOF and writes are ignored."""
        with self._cond:
            self._closed = self._aborted = True
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()
            self._wake_writer()

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all queued when ``n`` < 0), blocking until some come; b"" at EOF."""
        with self._cond:
            while not self._chunks and not self._closed:
                self._cond.wait()
            if not self._chunks:
                return b""
            want = self._size if n is None or n < 0 else n
            parts, got = [], 0
            while self._chunks and got < want:
                chunk = self._chunks.popleft()
                if got + len(chunk) > want:
                    keep = want - got
                    self._chunks.appendleft(chunk[keep:])
                    chunk = chunk[:keep]
                parts.append(chunk)
                got += len(chunk)
            self._size -= got
            if self._size < self.limit:
                self._wake_writer()
            return b"".join(parts)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def _wake_writer(self) -> None:
        room, self._room = self._room, None
        if room is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(_resolve, room)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
