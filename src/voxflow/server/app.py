"""``voxflow serve``: the Azure Speech websocket protocol and OpenAI's audio API, on one port.

Programs written for the Azure Speech SDK point ``SpeechConfig(host="ws://127.0.0.1:5000")``
at it, and the ``openai`` client ``base_url="http://127.0.0.1:5000/v1"``; both get the one
embedded engine's results, sharing its batching. One aiohttp application serves both: websocket
upgrades go to the speech endpoint (key → 401, path → 404, target → 400, overload → 503 as
``voxflow.server.admission`` decides), each accepted connection a ``Session``; plain HTTP goes
to the routes of ``openai_api`` and the web page (``page``). Every connection or request is
admitted in one place, ``admit``. Use ``SpeechServer`` as an async context manager (port 0
picks a free port; ``url`` and ``http_url`` say which), or ``run_server`` to serve until a
signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from types import TracebackType
from typing import Literal
from urllib.parse import unquote

from aiohttp import hdrs, web

from voxflow.engines import create_engine
from voxflow.engines.base import Engine
from voxflow.errors import ConfigError, ProtocolError
from voxflow.server import openai_api
from voxflow.server.admission import Admission
from voxflow.server.auth import authorized
from voxflow.server.channel import Channel
from voxflow.server.config import ServerConfig
from voxflow.server.page import add_page
from voxflow.server.refusal import Refusal, shown_path
from voxflow.server.session import Session
from voxflow.server.usp import RequestOptions, parse_target

log = logging.getLogger("voxflow.server")

_SPEECH_PATH = re.compile(  # matched against the whole path (fullmatch), never a part of it
    r"/speech/recognition/(interactive|conversation|dictation)/cognitiveservices/v1/?"
    r"|/speech/universal/v2/?"  # the SDK's ConversationTranscriber with host=
    r"|/stt/speech/universal/v2/?"  # its TranslationRecognizer with host=
    r"|/speech/translation/cognitiveservices/v1/?",  # the translation service's own path
    re.IGNORECASE,
)
HEARTBEAT = 20.0  # seconds between pings to a websocket client; one unanswered closes it
SHUTDOWN_GRACE = 10.0  # seconds requests in progress get to finish when the server stops

Kind = Literal["session", "request"]  # a speech websocket, or an OpenAI API transcription
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SpeechServer:
    """The speech server; ``start``/``aclose`` or ``async with``."""

    def __init__(self, config: ServerConfig | None = None, *, engine: Engine | None = None) -> None:
        self.config = config or ServerConfig()
        self.engine: Engine | None = engine
        self.sessions: set[Session] = set()
        self.requests = 0  # OpenAI API transcriptions in progress
        self.stats: Counter[str] = Counter()
        self.interim_gate: asyncio.Semaphore | None = None
        cfg = self.config
        self.admission = Admission(
            max_sessions=cfg.max_sessions,
            max_recognitions=cfg.max_recognitions,
            max_queue_wait=cfg.max_queue_wait,
        )
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._connections = 0
        self._stopping = False

    @property
    def port(self) -> int:
        """The port it listens on (the real one when the config said 0)."""
        if self._port is None:
            raise RuntimeError("the speech server is not started")
        return self._port

    @property
    def url(self) -> str:
        """What to give ``SpeechConfig(host=...)``: ``ws://HOST:PORT``."""
        return f"ws://{self._authority()}"

    @property
    def http_url(self) -> str:
        """The same address for HTTP: ``http://HOST:PORT`` (OpenAI's ``base_url`` adds ``/v1``)."""
        return f"http://{self._authority()}"

    def _authority(self) -> str:
        host = self.config.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def start(self) -> None:
        """Load the engine (once per process) and start listening."""
        if self.engine is None:
            self.engine = await asyncio.to_thread(create_engine)
        if self.config.interim:
            self.interim_gate = asyncio.Semaphore(1)
        cfg = self.config
        try:
            family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
            sock = socket.create_server((cfg.host, cfg.port), family=family)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"cannot listen on {cfg.host}:{cfg.port}: {reason}") from None
        self._port = int(sock.getsockname()[1])
        app = web.Application(middlewares=[self._upgrades], client_max_size=1024**2)
        openai_api.add_routes(app, self)
        add_page(app)
        app.on_response_prepare.append(_server_header)
        # No access log: it would print every request line; the key is never in one, but
        # nothing per request belongs in the server's log. A client that goes away cancels
        # its request's work, so it holds no slot and no engine time.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_GRACE
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        log.info("listening on %s", self.url)

    async def aclose(self) -> None:
        """Stop listening, close every speech connection (1001, going away) and give requests
        in progress a few seconds to finish."""
        if self._runner is None:
            return
        self._stopping = True
        self.admission.close()  # turns waiting for a slot give up now, not at their bound
        sessions = list(self.sessions)
        for session in sessions:
            session.close(1001, "server shutting down")
        # The clients' close frames first: aiohttp's shutdown stops reading from connections,
        # so a handshake left to it would wait out its timeout.
        closing = [asyncio.ensure_future(session.wait_closed()) for session in sessions]
        if closing:
            await asyncio.wait(closing, timeout=SHUTDOWN_GRACE)
        await self._runner.cleanup()
        self._runner = None

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

    # -- admission: the one place a connection or request is let in ----------------------------
    def admit(self, kind: Kind) -> None:
        """Raise Refusal when the server cannot take one more speech session or transcription
        request now; else count it in (the caller releases it with ``release``)."""
        cfg = self.config
        if self._stopping:
            raise Refusal(HTTPStatus.SERVICE_UNAVAILABLE, "the server is shutting down")
        if kind == "session":
            if (reason := self.admission.refusal()) is not None:
                self.stats["refused"] += 1
                raise Refusal(HTTPStatus.SERVICE_UNAVAILABLE, reason)
        else:
            if self.requests >= cfg.max_requests:
                self.stats["refused_requests"] += 1
                raise Refusal(HTTPStatus.TOO_MANY_REQUESTS, "too many requests; retry later")
            if (reason := self.admission.refusal()) is not None:  # the engine's own queue
                self.stats["refused_requests"] += 1
                raise Refusal(HTTPStatus.SERVICE_UNAVAILABLE, reason)
            self.requests += 1

    def release(self, kind: Kind) -> None:
        """The end of what ``admit`` let in (a session closes its admission ticket itself)."""
        if kind == "request":
            self.requests -= 1

    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries the server's key (or none is required)."""
        if self.config.faults.force_401:
            return False
        return authorized(lambda name: request.headers.getall(name, []), self.config.key)

    # -- the speech websocket endpoint ---------------------------------------------------------
    @web.middleware
    async def _upgrades(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Websocket upgrades, on any path, are the speech endpoint's; the rest is routed."""
        if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
            return await self._speech(request)
        return await handler(request)

    def _check_upgrade(self, request: web.Request) -> RequestOptions:
        """What an upgrade asks for; Refusal when the speech endpoint cannot serve it, in the
        order the SDK expects."""
        if not self.authorized(request):
            self.stats["unauthorized"] += 1
            raise Refusal(HTTPStatus.UNAUTHORIZED, "a valid subscription key is required")
        target = request.raw_path
        if not _SPEECH_PATH.fullmatch(unquote(target.partition("?")[0])):
            self.stats["not_found"] += 1
            raise Refusal(
                HTTPStatus.NOT_FOUND,
                "not a speech path: use /speech/recognition/{interactive,conversation,dictation}"
                "/cognitiveservices/v1, /speech/universal/v2, /stt/speech/universal/v2 or"
                " /speech/translation/cognitiveservices/v1",
            )
        try:
            options = parse_target(target)
        except ProtocolError as exc:
            self.stats["bad_requests"] += 1
            raise Refusal(HTTPStatus.BAD_REQUEST, str(exc)) from None
        self.admit("session")
        return options

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        path = shown_path(request.raw_path)
        try:
            options = self._check_upgrade(request)
        except Refusal as refusal:
            log.info("refused %s: %d %s", path, refusal.status, refusal.message)
            return web.Response(status=refusal.status, text=refusal.message + "\n")
        ws = web.WebSocketResponse(
            protocols=("USP",),  # chosen when offered (the SDK always does); plain clients too
            max_msg_size=self.config.max_frame_bytes,
            heartbeat=HEARTBEAT,
            compress=False,
        )
        self._connections += 1
        ticket = self.admission.connect()
        session = Session(self, Channel(ws, request.raw_path), self._connections, ticket)
        self.sessions.add(session)  # before any await: admitted and counted at once
        try:
            await ws.prepare(request)  # an invalid handshake raises its HTTP answer (400...)
            self.stats["connections"] += 1
            mode = options.mode or "mode from speech.context"
            language = ", ".join(options.languages) or options.language or "no language"
            log.info("connection %d accepted: %s (%s, %s)", session.number, path, mode, language)
            await session.run()
        except web.HTTPException as exc:
            log.info("refused %s: %d %s", path, exc.status, exc.reason)
            raise
        except Exception:
            log.exception("session %d failed", session.number)
            if ws.prepared:
                session.close(1011, "internal server error")
                with contextlib.suppress(Exception):
                    await session.wait_closed()
        finally:
            ticket.close()
            self.sessions.discard(session)
            if ws.prepared:
                log.info("connection %d %s", session.number, session.closed())
        return ws


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[hdrs.SERVER] = "voxflow"


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
