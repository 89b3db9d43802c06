"""A speech session's websocket as the session sees it: receive a message, send a text message,
close with a code and a reason. A thin adapter over aiohttp's ``WebSocketResponse``, so that the
session and turn logic know nothing of the server library."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web


class ChannelClosed(Exception):
    """The connection has closed (either side): nothing more comes or goes."""


class Channel:
    """One accepted websocket; ``target`` is its upgrade request's path and query, as sent."""

    def __init__(self, ws: web.WebSocketResponse, target: str) -> None:
        self._ws = ws
        self.target = target
        self._receiving: asyncio.Future[object] | None = None  # the receive in progress
        self._closing = False

    @property
    def close_code(self) -> int | None:
        """The close code the connection ended with (the client's or ours); None while open."""
        return self._ws.close_code

    async def recv(self) -> str | bytes:
        """The next text (str) or binary (bytes) message; ChannelClosed once the connection is
        closing. A frame over the size limit or invalid UTF-8 has already been answered with
        its close code (1009, 1007) by then."""
        if self._closing:
            raise ChannelClosed
        self._receiving = receiving = asyncio.ensure_future(self._ws.receive())
        try:
            message = await receiving
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._closing and receiving.cancelled() and not (task and task.cancelling()):
                raise ChannelClosed from None  # ``close`` stopped it
            raise
        finally:
            self._receiving = None
        if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
            return message.data  # type: ignore[no-any-return]
        raise ChannelClosed

    async def send(self, text: str) -> None:
        """Send one text message; ChannelClosed when the connection is closing or gone."""
        if self._ws.closed:
            raise ChannelClosed
        try:
            await self._ws.send_str(text)
        except ConnectionError:  # aiohttp's "cannot write to closing transport" among them
            raise ChannelClosed from None

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame and wait (bounded) for the client's, dropping what comes first.
        A receive in progress is stopped first: aiohttp would take the close for the client's
        and drop the connection at once, and audio the client still sent would then reset it
        before the client had read why it was closed."""
        self._closing = True
        receiving = self._receiving
        if receiving is not None and not receiving.done():
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving
        await self._ws.close(code=code, message=reason.encode("utf-8"))
