"""The OpenAI-style routes: ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``,
``GET /v1/models``. Each transcription is the pipeline's (``voxflow.stream``) on the server's
one engine, so concurrent requests and speech sessions share its batching."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from voxflow.errors import VoxflowError, printable
from voxflow.pipeline import assemble, stream, transcribe_async
from voxflow.server.openai_api import render
from voxflow.server.openai_api.errors import ApiError
from voxflow.server.openai_api.form import AudioRequest, ResponseFormat, Task, read_form
from voxflow.server.refusal import Refusal, shown_path
from voxflow.transcript import Segment

if TYPE_CHECKING:
    from voxflow.server.app import SpeechServer

log = logging.getLogger("voxflow.server")
_CREATED = int(time.time())  # when this process started serving its model

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, server: SpeechServer) -> None:
    """The API's routes on ``app``, served by ``server``'s engine under its limits."""
    api = _Api(server)
    app.router.add_post("/v1/audio/transcriptions", api.guarded(api.transcriptions))
    app.router.add_post("/v1/audio/translations", api.guarded(api.translations))
    app.router.add_get("/v1/models", api.guarded(api.models))
    app.router.add_get("/v1/models/{model}", api.guarded(api.model))
    app.router.add_route("*", "/v1/{tail:.*}", api.guarded(api.not_found))


class _Api:
    def __init__(self, server: SpeechServer) -> None:
        self.server = server

    def guarded(self, handler: Handler) -> Handler:
        """The handler behind the key check, with every failure in OpenAI's error shape."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            began = time.monotonic()
            shown = f"{request.method} {shown_path(request.raw_path)}"
            try:
                if not self.server.authorized(request):
                    self.server.stats["unauthorized"] += 1
                    raise ApiError(
                        HTTPStatus.UNAUTHORIZED,
                        "a valid API key is required (Authorization: Bearer KEY)",
                        code="invalid_api_key",
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                response = await handler(request)
            except ApiError as exc:
                log.info("refused %s: %d %s", shown, exc.status, printable(exc.message))
                return exc.response()
            except Refusal as refusal:
                log.info("refused %s: %d %s", shown, refusal.status, refusal.message)
                return ApiError(refusal.status, refusal.message, headers=_retry(refusal)).response()
            except Exception:
                log.exception("%s failed", shown)
                failed = ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")
                return failed.response()
            log.info("answered %s: %d in %.1f s", shown, response.status, time.monotonic() - began)
            return response

        return guarded

    # -- models --------------------------------------------------------------------------------
    def _model_id(self) -> str:
        engine = self.server.engine
        assert engine is not None
        model = engine.options.fingerprint().get("model")
        return f"{engine.name}-{model}" if model else engine.name

    def _model(self) -> dict[str, object]:
        return {"id": self._model_id(), "object": "model", "created": _CREATED,
                "owned_by": "voxflow"}  # fmt: skip

    async def models(self, request: web.Request) -> web.StreamResponse:
        """The one model the server runs (any ``model`` a request names is served by it)."""
        return web.json_response({"object": "list", "data": [self._model()]})

    async def model(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["model"] != self._model_id():
            raise ApiError(HTTPStatus.NOT_FOUND, "no such model", code="model_not_found")
        return web.json_response(self._model())

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no route {request.method} {request.path}")

    # -- transcriptions ------------------------------------------------------------------------
    async def transcriptions(self, request: web.Request) -> web.StreamResponse:
        return await self._audio(request, "transcribe")

    async def translations(self, request: web.Request) -> web.StreamResponse:
        return await self._audio(request, "translate")

    async def _audio(self, request: web.Request, task: Task) -> web.StreamResponse:
        """Admit the request, stream its upload to a temporary file (removed afterwards) and
        answer with the transcript in the asked format. The transcription holds one of the
        engine's recognition slots, as a speech turn does (``voxflow.server.admission``): a
        request that waits past the bound for one gets 503."""
        server, cfg = self.server, self.server.config
        server.admit("request")
        ticket = server.admission.connect()
        try:
            with tempfile.TemporaryDirectory(prefix="voxflow-upload-") as folder:
                form, path = await read_form(
                    request, Path(folder), task=task, base=cfg.options,
                    max_bytes=round(cfg.max_upload_mb * 1024**2), idle_timeout=cfg.idle_timeout,
                )  # fmt: skip
                server.stats["api_requests"] += 1
                try:
                    async with ticket.recognition():
                        if form.stream:
                            return await self._stream(request, form, path)
                        transcript = await transcribe_async(
                            path, engine=server.engine, options=form.options, name=form.filename
                        )
                except VoxflowError as exc:
                    raise ApiError.of(exc) from None
                text, content_type = render.body(transcript, form)
                return web.Response(text=text, content_type=content_type.partition(";")[0],
                                    charset="utf-8")  # fmt: skip
        finally:
            ticket.close()
            server.release("request")

    async def _stream(
        self, request: web.Request, form: AudioRequest, path: Path
    ) -> web.StreamResponse:
        """Server-sent events: a ``transcript.text.delta`` per segment as it is recognised,
        then ``transcript.text.done``; a ``verbose_json`` stream adds each segment's times and
        language (``transcript.text.segment``) and the finished files. Audio that cannot be
        decoded is still a 400, since the first segment (or the failure) comes before the
        response starts; a failure later is an error event."""
        info: dict[str, Any] = {}
        verbose = form.response_format is ResponseFormat.VERBOSE_JSON
        segments = stream(path, engine=self.server.engine, options=form.options,
                          name=form.filename, info=info)  # fmt: skip
        async with contextlib.aclosing(segments):
            try:
                first = await anext(segments, None)
            except VoxflowError as exc:
                raise ApiError.of(exc) from None
            response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
            response.content_type = "text/event-stream"
            await response.prepare(request)
            said: list[Segment] = []
            texts: list[str] = []
            try:
                segment = first
                while segment is not None:
                    if text := segment.text.strip():
                        await response.write(render.delta(f" {text}" if texts else text))
                        texts.append(text)
                    if verbose:
                        await response.write(render.segment(len(said), segment))
                    said.append(segment)
                    segment = await anext(segments, None)
                whole = assemble(form.filename, said, info) if verbose else None
                await response.write(render.done(" ".join(texts), whole))
            except VoxflowError as exc:
                await response.write(render.event(ApiError.of(exc).body()))
            except ConnectionError:  # the client went away: its work stops here
                return response
            await response.write_eof()
            return response


def _retry(refusal: Refusal) -> dict[str, str]:
    """A refusal for capacity says when to try again."""
    busy = refusal.status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE)
    return {"Retry-After": "1"} if busy else {}
