"""The multipart form of ``POST /v1/audio/transcriptions`` and ``/translations``, read as it
streams: the ``file`` part goes chunk by chunk into a temporary file (never whole into memory,
bounded by ``--max-upload-mb``), the other fields become one typed ``AudioRequest``."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from pathlib import Path
from typing import Literal, TypeVar

from aiohttp import BodyPartReader, web

from voxflow.errors import ConfigError
from voxflow.languages import LanguagePlan
from voxflow.pipeline import TranscribeOptions
from voxflow.server.openai_api.errors import ApiError

CHUNK = 64 * 1024  # bytes read from the request at a time
MAX_FIELDS = 64 * 1024  # the text fields together (a prompt is a few hundred bytes)
FORM_OVERHEAD = 64 * 1024  # what the form adds to the file's size: boundaries, other fields
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")

Task = Literal["transcribe", "translate"]
T = TypeVar("T")


class ResponseFormat(StrEnum):
    """What the response body holds: OpenAI's ``response_format`` values."""

    JSON = "json"
    TEXT = "text"
    SRT = "srt"
    VERBOSE_JSON = "verbose_json"
    VTT = "vtt"


@dataclass(frozen=True)
class AudioRequest:
    """One transcription or translation request, its fields checked. ``model`` is not read:
    the server runs the one model it loaded. ``temperature`` is checked and not used: voxflow
    always decodes at temperature 0, so the same audio gives the same text."""

    task: Task
    filename: str
    options: TranscribeOptions
    response_format: ResponseFormat = ResponseFormat.JSON
    words: bool = False  # timestamp_granularities[] has word
    segments: bool = True  # ... has segment (the default when none is given)
    stream: bool = False


async def read_form(
    request: web.Request,
    folder: Path,
    *,
    task: Task,
    base: TranscribeOptions,
    max_bytes: int,
    idle_timeout: float,
) -> tuple[AudioRequest, Path]:
    """The request's fields and the path its upload was written to (inside ``folder``).

    ApiError: 415 for a body that is not multipart/form-data, 413 for a file over
    ``max_bytes``, 408 for a client that stops sending for ``idle_timeout`` s, 400 for a
    missing file or a bad field."""
    if request.content_type != "multipart/form-data":
        raise ApiError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"the body must be multipart/form-data, not {request.content_type or 'nothing'}",
        )
    length = request.content_length
    if length is not None and length > max_bytes + FORM_OVERHEAD:
        raise _too_large(max_bytes)
    reader = await request.multipart()
    fields: dict[str, list[str]] = {}
    room = MAX_FIELDS  # bytes the text fields may still take
    upload: tuple[str, Path] | None = None
    while True:
        part = await _within(idle_timeout, reader.next())
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise ApiError(HTTPStatus.BAD_REQUEST, "nested multipart bodies are not accepted")
        if part.name == "file":
            if upload is not None:
                raise ApiError(HTTPStatus.BAD_REQUEST, "send one file", param="file")
            name = part.filename or "upload"
            suffix = Path(name).suffix
            path = folder / ("audio" + (suffix if _SUFFIX.fullmatch(suffix) else ""))
            await _save(part, path, max_bytes, idle_timeout)
            upload = (name, path)
        else:
            data = await _read_field(part, room, idle_timeout)
            room -= len(data)
            fields.setdefault(part.name or "", []).append(data.decode("utf-8", "replace"))
    if upload is None:
        raise ApiError(HTTPStatus.BAD_REQUEST, "the form has no file part", param="file")
    name, path = upload
    return _parse(fields, name, task, base), path


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"the file is larger than the server's limit of {max_bytes / 1024**2:g} MB",
        param="file",
        code="file_too_large",
    )


async def _within(idle_timeout: float, step: Awaitable[T]) -> T:
    """One read from the client, which must come within ``idle_timeout`` seconds (408)."""
    try:
        async with asyncio.timeout(idle_timeout):
            return await step
    except TimeoutError:
        message = f"the upload stalled for {idle_timeout:g} s"
        raise ApiError(HTTPStatus.REQUEST_TIMEOUT, message) from None


async def _save(part: BodyPartReader, path: Path, max_bytes: int, idle_timeout: float) -> None:
    size = 0
    with path.open("wb") as out:
        while chunk := await _within(idle_timeout, part.read_chunk(CHUNK)):
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            out.write(chunk)  # to the page cache: quick enough for the loop


async def _read_field(part: BodyPartReader, room: int, idle_timeout: float) -> bytes:
    """A text field's bytes, refused (400) when the fields together exceed MAX_FIELDS."""
    data = bytearray()
    while chunk := await _within(idle_timeout, part.read_chunk(CHUNK)):
        data += chunk
        if len(data) > room:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"the form's fields exceed {MAX_FIELDS // 1024} KB",
                param=part.name,
            )
    return bytes(data)


def _one(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} given {len(values)} times", param=name)
    return values[0].strip()


def _parse(
    fields: dict[str, list[str]], filename: str, task: Task, base: TranscribeOptions
) -> AudioRequest:
    """The typed request; ApiError (400) names the field that is wrong."""
    fmt = _one(fields, "response_format") or "json"
    try:
        response_format = ResponseFormat(fmt)
    except ValueError:
        choices = ", ".join(f.value for f in ResponseFormat)
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"unsupported response_format {fmt!r}: use one of {choices}",
            param="response_format",
        ) from None
    temperature = _number(_one(fields, "temperature"), "temperature")
    if not 0.0 <= temperature <= 1.0:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "temperature must be between 0 and 1", param="temperature"
        )
    stream = (_one(fields, "stream") or "false").lower()
    if stream not in ("true", "false"):
        raise ApiError(HTTPStatus.BAD_REQUEST, "stream must be true or false", param="stream")
    granularities = {
        g.strip()
        for key in ("timestamp_granularities[]", "timestamp_granularities")
        for g in fields.get(key, [])
    }
    if granularities - {"word", "segment"}:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "timestamp_granularities[] takes word and segment",
            param="timestamp_granularities",
        )
    language = _one(fields, "language")
    prompt = _one(fields, "prompt")
    try:
        plan = LanguagePlan.parse(forced=language) if language else base.languages
        decode = dataclasses.replace(
            base.decode, task=task, phrases=(prompt,) if prompt else base.decode.phrases
        )
    except ConfigError as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, str(exc), param="language") from None
    return AudioRequest(
        task=task,
        filename=filename,
        options=dataclasses.replace(base, languages=plan, decode=decode),
        response_format=response_format,
        words="word" in granularities,
        segments="segment" in granularities or not granularities,
        stream=stream == "true",
    )


def _number(value: str | None, name: str) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be a number", param=name) from None
