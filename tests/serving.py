"""Test helper: the speech server on its own event loop in a daemon thread.

The Azure SDK is blocking, so a test that drives it needs the server running elsewhere:
``with BackgroundServer(ServerConfig(port=0)) as server: SpeechConfig(host=server.url)``.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from voxflow.engines.base import Engine
from voxflow.server.app import SpeechServer
from voxflow.server.config import ServerConfig

T = TypeVar("T")


class BackgroundServer:
    """Runs a ``SpeechServer`` in a thread; ``start`` returns once it listens."""

    def __init__(self, config: ServerConfig | None = None, *, engine: Engine | None = None) -> None:
        self.server = SpeechServer(config or ServerConfig(port=0), engine=engine)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="voxflow-serve", daemon=True
        )

    @property
    def url(self) -> str:
        """``ws://HOST:PORT``, for ``SpeechConfig(host=...)``."""
        return self.server.url

    @property
    def http_url(self) -> str:
        """``http://HOST:PORT``, the OpenAI API's base without ``/v1``."""
        return self.server.http_url

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the server's loop, from the test's thread."""
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def start(self, timeout: float = 120.0) -> BackgroundServer:
        """Start the loop and the server (loading the engine if needed); raise what start raises."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Close every connection, stop the loop and join the thread."""
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.aclose(), self._loop).result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LiveAudio:
    """A file read as a client streams it: forward only, its length unknown until it ends (no
    seek), so the pipeline treats it as the server treats a turn's audio."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed with the object)

    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)

    def __enter__(self) -> LiveAudio:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


class HeldAudio(LiveAudio):
    """Live audio from bytes whose reader gets the first ``hold_at`` bytes, then waits until
    ``release()`` (at most ``timeout`` seconds) for the rest: a client that has not yet sent
    the end of its audio, for tests of what comes before it."""

    def __init__(self, data: bytes, hold_at: int, timeout: float = 60.0) -> None:
        self._file = io.BytesIO(data)
        self._hold_at = hold_at
        self._timeout = timeout
        self._released = threading.Event()
        self.held = False  # whether the reader reached the hold and waited there

    def read(self, n: int = -1) -> bytes:
        at = self._file.tell()
        if at >= self._hold_at and not self._released.is_set():
            self.held = True
            self._released.wait(self._timeout)
            self._released.set()  # a timeout gives the rest too
        elif at < self._hold_at and (n < 0 or at + n > self._hold_at):
            n = self._hold_at - at
        return self._file.read(n)

    @property
    def released(self) -> bool:
        """Whether the rest has been given (by ``release`` or the timeout)."""
        return self._released.is_set()

    def release(self) -> None:
        """Let the reader have the rest."""
        self._released.set()
