"""Why the server will not take a connection or request now: an HTTP status and a reason, raised
where connections and requests are admitted and answered by each endpoint in its own shape."""

from __future__ import annotations

from http import HTTPStatus


class Refusal(Exception):
    """A connection or request the server refuses: ``status`` (401, 404, 429, 503...) and why."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
