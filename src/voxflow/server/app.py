"""``voxflow serve``: an Azure-Speech-compatible websocket server on the local engine.

Programs written for the Azure Speech SDK point ``SpeechConfig(host="ws://127.0.0.1:5000")``
at it and get the embedded Whisper engine's results. The upgrade request is checked here
(key → 401, path → 404, target → 400, capacity → 503); each accepted connection is a
``Session``. Use ``SpeechServer`` as an async context manager (port 0 picks a free port, and
``url`` says which), or ``run_server`` to serve until a signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections import Counter
from collections.abc import Callable, Sequence
from http import HTTPStatus
from types import TracebackType
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from voxflow.engines import create_engine
from voxflow.engines.base import Engine
from voxflow.errors import ConfigError, ProtocolError
from voxflow.server.auth import authorized
from voxflow.server.config import ServerConfig
from voxflow.server.session import Session
from voxflow.server.usp import parse_target

log = logging.getLogger("voxflow.server")
# websockets logs request headers (the key among them) at DEBUG: never let it.
_ws_log = logging.getLogger("voxflow.server.websockets")
_ws_log.setLevel(logging.INFO)

_SPEECH_PATH = re.compile(  # matched against the whole path (fullmatch), never a part of it
    r"/speech/recognition/(interactive|conversation|dictation)/cognitiveservices/v1/?"
    r"|/speech/universal/v2/?",  # the SDK's ConversationTranscriber with host=
    re.IGNORECASE,
)


class SpeechServer:
    """The speech websocket server; ``start``/``aclose`` or ``async with``."""

    def __init__(self, config: ServerConfig | None = None, *, engine: Engine | None = None) -> None:
        self.config = config or ServerConfig()
        self.engine: Engine | None = engine
        self.sessions: set[Session] = set()
        self.stats: Counter[str] = Counter()
        self.interim_gate: asyncio.Semaphore | None = None
        self._server: Server | None = None
        self._connections = 0

    @property
    def port(self) -> int:
        """The port it listens on (the real one when the config said 0)."""
        if self._server is None:
            raise RuntimeError("the speech server is not started")
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        """What to give ``SpeechConfig(host=...)``: ``ws://HOST:PORT``."""
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self.port}"

    async def start(self) -> None:
        """Load the engine (once per process) and start listening."""
        if self.engine is None:
            self.engine = await asyncio.to_thread(create_engine)
        if self.config.interim:
            self.interim_gate = asyncio.Semaphore(1)
        cfg = self.config
        try:
            self._server = await serve(
                self._handle,
                cfg.host,
                cfg.port,
                process_request=self._check_request,
                select_subprotocol=_select_usp,
                max_size=cfg.max_frame_bytes,
                max_queue=16,
                compression=None,
                server_header="voxflow",
                logger=_ws_log,
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"cannot listen on {cfg.host}:{cfg.port}: {reason}") from None
        log.info("listening on %s", self.url)

    async def aclose(self) -> None:
        """Stop listening and close every connection (1001, going away)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SpeechServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def faulty(self, number: int) -> bool:
        """Whether the close-after-bytes fault applies to connection ``number`` (from 1)."""
        first = self.config.faults.close_connections
        return first is None or number <= first

    # -- the upgrade request -----------------------------------------------------------------
    def _check_request(self, ws: ServerConnection, request: Request) -> Response | None:
        cfg = self.config
        if cfg.faults.force_401 or not authorized(request.headers.get_all, cfg.key):
            self.stats["unauthorized"] += 1
            return _respond(ws, HTTPStatus.UNAUTHORIZED, "a valid subscription key is required")
        path = unquote(request.path.partition("?")[0])
        if not _SPEECH_PATH.fullmatch(path):
            self.stats["not_found"] += 1
            return _respond(
                ws,
                HTTPStatus.NOT_FOUND,
                "not a speech path: use /speech/recognition/{interactive,conversation,dictation}"
                "/cognitiveservices/v1",
            )
        try:
            parse_target(request.path)
        except ProtocolError as exc:
            self.stats["bad_requests"] += 1
            return _respond(ws, HTTPStatus.BAD_REQUEST, str(exc))
        if len(self.sessions) >= cfg.max_sessions:
            self.stats["refused"] += 1
            return _respond(ws, HTTPStatus.SERVICE_UNAVAILABLE, "too many sessions; retry later")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        if len(self.sessions) >= self.config.max_sessions:  # handshakes that raced the check
            self.stats["refused"] += 1
            await ws.close(1013, "too many sessions; retry later")
            return
        self._connections += 1
        self.stats["connections"] += 1
        session = Session(self, ws, self._connections)
        self.sessions.add(session)
        try:
            await session.run()
        except Exception:
            log.exception("session %d failed", session.number)
            session.close(1011, "internal server error")
            with contextlib.suppress(Exception):
                await ws.wait_closed()
        finally:
            self.sessions.discard(session)


def _select_usp(ws: ServerConnection, offered: Sequence[str]) -> str | None:
    """USP when offered (the SDK always offers it); plain websocket clients are let in too."""
    return "USP" if "USP" in offered else None


def _respond(ws: ServerConnection, status: HTTPStatus, text: str) -> Response:
    return ws.respond(status, text + "\n")


async def run_server(
    config: ServerConfig,
    *,
    engine: Engine | None = None,
    ready: Callable[[SpeechServer], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set or SIGINT/SIGTERM arrives; ``ready`` is called once listening."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with SpeechServer(config, engine=engine) as server:
            if ready is not None:
                ready(server)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
