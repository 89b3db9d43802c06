"""Errors of the OpenAI-style API in OpenAI's JSON shape, with the status each deserves.

``{"error": {"message", "type", "param", "code"}}``: the ``openai`` client raises the matching
exception class by the status (``BadRequestError`` for 400, ``AuthenticationError`` for 401...)
and shows the message.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from aiohttp import web

from voxflow.errors import ConfigError, DecodeError, InputError, VoxflowError
from voxflow.server.admission import Overloaded

_TYPES = {
    HTTPStatus.UNAUTHORIZED: "invalid_request_error",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limit_error",
    HTTPStatus.INTERNAL_SERVER_ERROR: "server_error",
    HTTPStatus.SERVICE_UNAVAILABLE: "server_error",
}


class ApiError(Exception):
    """An API request that fails: the status, the message, and which form field caused it."""

    def __init__(
        self,
        status: HTTPStatus,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        """The error object OpenAI sends."""
        kind = _TYPES.get(self.status, "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param,
                          "code": self.code}}  # fmt: skip

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            text=json.dumps(self.body()),
            content_type="application/json",
            headers=self.headers,
        )

    @classmethod
    def of(cls, exc: VoxflowError) -> ApiError:
        """A transcription's failure: the upload's fault (400, naming the file and the cause),
        no engine time for it (503), or the server's (500)."""
        if isinstance(exc, Overloaded):  # no recognition slot within the bound
            return cls(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "1"})
        if isinstance(exc, InputError | DecodeError):
            return cls(HTTPStatus.BAD_REQUEST, str(exc), param="file", code="invalid_audio")
        if isinstance(exc, ConfigError):
            return cls(HTTPStatus.BAD_REQUEST, str(exc))
        return cls(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
