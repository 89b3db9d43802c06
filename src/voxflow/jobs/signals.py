"""Interruption of a batch: the first Ctrl-C (or SIGTERM) stops it cleanly, a second at once.

The handler is a plain Python signal handler, so it runs in the main thread as soon as the
signal arrives, even while the event loop waits: the first signal hands ``on_stop`` to the loop
(which stops taking work, abandons the running transcriptions and records the state); a second
one removes the temporary files being written and ends the process on the spot, so no partial
output is left either way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from voxflow.outputs import abandon_temps

SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


class Interrupts:
    """Context manager that routes SIGINT/SIGTERM to ``on_stop(signum)`` in the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_stop: Callable[[int], None]) -> None:
        self.loop = loop
        self.on_stop = on_stop
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():  # signals reach only it
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            self.loop.call_soon_threadsafe(self.on_stop, signum)
            return
        abandon_temps()
        os.write(2, b"voxflow: interrupted again: stopped at once, nothing half-written left\n")
        os._exit(exit_code(self.signum))


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + signum
