"""One websocket connection: client frames through the USP codec, turns to their runners.

The connection is a ``Channel`` (receive, send, close), whatever server library accepted it.

The codec (``voxflow.server.usp.Connection``) checks every frame and its order; anything it
rejects closes this connection with 1002 and a readable reason, and only this one. The session
also applies the limits (audio per turn, idle time) and the test faults of its ``ServerConfig``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from voxflow.errors import ConfigError, ProtocolError
from voxflow.server.admission import Ticket
from voxflow.server.channel import Channel, ChannelClosed
from voxflow.server.turn import TurnRunner, turn_plan
from voxflow.server.usp import (
    Audio,
    AudioEnd,
    AudioStart,
    Connection,
    Event,
    Limits,
    RecognitionStatus,
    Replies,
    SpeechContext,
)

if TYPE_CHECKING:
    from voxflow.server.app import SpeechServer

log = logging.getLogger("voxflow.server")

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY = 1008


class Session:
    """Serves one client connection until it closes, misbehaves or idles."""

    def __init__(self, server: SpeechServer, ws: Channel, number: int, ticket: Ticket) -> None:
        self.server = server
        self.ticket = ticket  # this connection's place in the server's admission
        self.config = server.config
        self.ws = ws
        self.number = number
        self.audio_bytes = 0  # audio payload received on this connection, all turns
        self.runner: TurnRunner | None = None
        self._send_lock = asyncio.Lock()
        self._close_code: int | None = None  # the code this server closed with, once it does
        self._close_task: asyncio.Task[None] | None = None
        self._turn_clock = 0.0  # loop time when the current turn's audio began (pacing)

    @property
    def _closing(self) -> bool:
        return self._close_code is not None

    def closed(self) -> str:
        """How the connection ended, for the log: who closed it, with which code."""
        if self._close_code is not None:
            return f"closed by the server: {self._close_code}"
        return f"closed by the client: {self.ws.close_code}"

    async def run(self) -> None:
        """Receive and handle frames until the connection ends."""
        limits = Limits(max_frame_bytes=self.config.max_frame_bytes)
        conn = Connection(self.ws.target, limits=limits)
        try:
            while True:
                message = await self._receive()
                if self._closing:
                    # A message already queued when the close began is dropped; the channel's
                    # close reads the rest, up to the client's close frame.
                    continue
                try:
                    events = conn.receive(message)
                except ProtocolError as exc:
                    self.server.stats["protocol_errors"] += 1
                    self.close(CLOSE_PROTOCOL_ERROR, str(exc))
                    continue
                for event in events:
                    await self._handle(conn, event)
                    if self._closing:
                        break
        except ChannelClosed:
            pass
        finally:
            if self.runner is not None:
                await self.runner.aclose()
            await self.wait_closed()

    async def _receive(self) -> str | bytes:
        """The next message; ChannelClosed at the end. Closes a client idle too long."""
        while True:
            try:
                async with asyncio.timeout(self.config.idle_timeout):
                    return await self.ws.recv()
            except TimeoutError:
                runner = self.runner
                waiting = runner is not None and runner.audio_ended and runner.working
                if not waiting:  # not a client that waits for its results
                    self.close(1000, "idle timeout")

    async def send(self, message: str) -> None:
        """Send one service message, in order; a closed connection drops it."""
        async with self._send_lock:
            delay = self.config.faults.reply_delay
            if delay:
                await asyncio.sleep(delay)
            with contextlib.suppress(ChannelClosed):
                await asyncio.shield(self.ws.send(message))

    def close(self, code: int, reason: str) -> None:
        """Start closing with ``code`` and a reason (trimmed to fit a close frame); ``run``
        reads on until the client's close frame comes."""
        if self._closing:
            return
        self._close_code = code
        log.info("connection %d closing: %d %s", self.number, code, reason)
        reason = reason.encode("utf-8")[:120].decode("utf-8", "ignore")
        self._close_task = asyncio.ensure_future(self.ws.close(code, reason))

    async def wait_closed(self) -> None:
        """Until the close that ``close`` started is done."""
        if self._close_task is not None:
            with contextlib.suppress(ChannelClosed, asyncio.CancelledError):
                await self._close_task

    async def _fail(self, code: int, reason: str) -> None:
        self.close(code, reason)

    async def _handle(self, conn: Connection, event: Event) -> None:
        if isinstance(event, SpeechContext):
            await self._context(conn, event)
        elif isinstance(event, AudioStart):
            await self._audio_start(conn, event)
        elif isinstance(event, Audio):
            await self._audio(conn, event)
        elif isinstance(event, AudioEnd):
            runner = self.runner
            if runner is not None and runner.turn.request_id == event.request_id:
                await runner.end_audio()
        # speech.config, telemetry and unknown paths need no answer.

    async def _context(self, conn: Connection, event: SpeechContext) -> None:
        if self.runner is not None:  # the SDK opens a turn only after the last one ended
            await self.runner.aclose()
            self.runner = None
        turn = conn.turns[event.request_id]
        replies = Replies(turn.request_id, turn.settings.offset_base)
        self.server.stats["turns"] += 1
        log.debug("connection %d: turn %s (%s)", self.number, turn.request_id, turn.settings.mode)
        await self.send(replies.turn_start())

    async def _audio_start(self, conn: Connection, event: AudioStart) -> None:
        turn = conn.turns[event.request_id]
        replies = Replies(turn.request_id, turn.settings.offset_base)
        base = turn.settings.offset_base
        status = self.config.faults.error_status
        reason = None  # why the turn is refused: the SDK shows it in the error details
        try:
            plan = turn_plan(turn.settings)
        except ConfigError as exc:
            log.info("connection %d: bad turn: %s", self.number, exc)
            status, reason = status or RecognitionStatus.BAD_REQUEST, str(exc)
        if status is not None:
            await self.send(replies.status(status, base, base, reason=reason))
            await self.send(replies.turn_end())
            return
        self._turn_clock = asyncio.get_running_loop().time()
        if turn.settings.previous_service_tag is not None:
            self.server.stats["continuations"] += 1
        if turn.settings.phrases:
            self.server.stats["phrase_lists"] += 1
        self.runner = TurnRunner(
            turn,
            event.format,
            plan=plan,
            engine=self.server.engine,
            options=self.config.options,
            send=self.send,
            fail=self._fail,
            ticket=self.ticket,
            interim_gate=self.server.interim_gate,
            interim_interval=self.config.interim_interval,
        )
        self.runner.start()

    async def _audio(self, conn: Connection, event: Audio) -> None:
        self.audio_bytes += len(event.data)
        self.server.stats["audio_bytes"] += len(event.data)
        faults = self.config.faults
        limit = faults.close_after_bytes
        if limit is not None and self.audio_bytes >= limit and self.server.faulty(self.number):
            self.close(faults.close_code, f"fault: closed after {limit} audio bytes")
            return
        turn = conn.turns[event.request_id]
        if turn.audio_seconds > self.config.max_turn_seconds:
            self.close(CLOSE_POLICY, f"turn audio exceeds {self.config.max_turn_seconds:g} s")
            return
        runner = self.runner
        if runner is None or runner.turn is not turn:
            return  # a rejected or finished turn: its audio is dropped
        await runner.feed(event.data)
        pace = self.config.pace
        if pace:
            ahead = self._turn_clock + turn.audio_seconds / pace - asyncio.get_running_loop().time()
            if ahead > 0:
                await asyncio.sleep(ahead)
