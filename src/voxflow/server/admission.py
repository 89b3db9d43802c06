"""Admission: take on only the work the engine can finish before the client gives up.

The Azure SDK cancels a turn with ``ServiceTimeout`` when no result comes within about 80 s,
so a server that accepts every connection and shares its cores among them all ends with every
client waiting and many timing out. Here a turn recognises only while it holds one of
``max_recognitions`` slots; the others wait in turn (first come, first served) at most
``max_queue_wait`` seconds, and a connection is refused at once when the wait it would face,
estimated from how long slots have recently been held, is longer than that. The transport
calls ``refusal()`` before it accepts a connection (HTTP 503 with the reason), ``connect()``
once it has, and each turn recognises inside ``Ticket.recognition()``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voxflow.errors import VoxflowError

CLOSE_TRY_AGAIN_LATER = 1013  # the websocket close code for "overloaded, retry later"
_SMOOTHING = 0.3  # weight of the newest slot hold time in the running estimate
# A new connection counts as a turn about to ask for a slot this long: the SDK sends its audio
# at once, while a client that connects and idles must not make the server refuse others.
FRESH_SECONDS = 5.0


class Overloaded(VoxflowError):
    """A turn or connection the server cannot take on now; the message says why."""


class Admission:
    """The server's one admission policy: open connections, recognition slots, queue wait."""

    def __init__(self, *, max_sessions: int, max_recognitions: int, max_queue_wait: float) -> None:
        self.max_sessions = max_sessions
        self.max_recognitions = max_recognitions
        self.max_queue_wait = max_queue_wait
        self.sessions = 0  # connections admitted and not yet closed
        self.recognising = 0  # slots held
        # Admitted connections whose first turn has not asked for a slot yet: when they came.
        self._fresh: dict[Ticket, float] = {}
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._hold: float | None = None  # running estimate of how long a slot is held, s
        self._closed = False

    @property
    def waiting(self) -> int:
        """Turns waiting for a slot, and connections of the last few seconds that will ask."""
        recent = time.monotonic() - FRESH_SECONDS
        return len(self._waiting) + sum(1 for since in self._fresh.values() if since > recent)

    def expected_wait(self) -> float | None:
        """Seconds a new connection's turn would wait for a slot (None: not measured yet)."""
        ahead = self.waiting + 1 - (self.max_recognitions - self.recognising)
        if ahead <= 0:
            return 0.0
        if self._hold is None:
            return None
        return self._hold * math.ceil(ahead / self.max_recognitions)

    def refusal(self) -> str | None:
        """Why a new connection must be refused now, or None to admit it."""
        if self._closed:
            return "the server is shutting down"
        if self.sessions >= self.max_sessions:
            return "too many sessions; retry later"
        wait = self.expected_wait()
        # Until a slot hold has been measured, the queue holds at most one round of turns.
        if (wait is None and self.waiting >= self.max_recognitions) or (
            wait is not None and wait > self.max_queue_wait
        ):
            return (
                f"busy: {self.recognising} recognitions running and {self.waiting} waiting; "
                "retry later"
            )
        return None

    def connect(self) -> Ticket:
        """Count a connection the transport has accepted; close the ticket when it ends."""
        self.sessions += 1
        ticket = Ticket(self)
        self._fresh[ticket] = time.monotonic()
        return ticket

    def close(self) -> None:
        """Shutting down: refuse new connections and wake every waiting turn with Overloaded."""
        self._closed = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(Overloaded("the server is shutting down"))

    async def _acquire(self) -> None:
        if self._closed:
            raise Overloaded("the server is shutting down")
        if self.recognising < self.max_recognitions and not self._waiting:
            self.recognising += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(self.max_queue_wait):
                await waiter  # _release hands its slot over: recognising stays counted
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(None)  # handed a slot just as it gave up: pass it on
            if isinstance(exc, TimeoutError):
                raise Overloaded(
                    f"busy: no recognition slot within {self.max_queue_wait:g} s; retry later"
                ) from None
            raise
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)

    def _release(self, held: float | None) -> None:
        if held is not None:
            old = self._hold
            self._hold = held if old is None else old + _SMOOTHING * (held - old)
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next in line
                return
        self.recognising -= 1


class Ticket:
    """One admitted connection's place in the admission count."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._open = True

    @asynccontextmanager
    async def recognition(self) -> AsyncIterator[None]:
        """Hold a recognition slot for the block; waits in line, Overloaded after the bound."""
        admission = self._admission
        admission._fresh.pop(self, None)
        await admission._acquire()
        began = time.monotonic()
        try:
            yield
        finally:
            admission._release(time.monotonic() - began)

    def close(self) -> None:
        """The connection ended (idempotent)."""
        if self._open:
            self._open = False
            self._admission._fresh.pop(self, None)
            self._admission.sessions -= 1
