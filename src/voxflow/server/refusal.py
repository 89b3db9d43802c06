"""Why the server will not take a connection or request now: an HTTP status and a reason, raised
where connections and requests are admitted and answered by each endpoint in its own shape; and
how a request's path appears in the log lines that tell of it."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import unquote


class Refusal(Exception):
    """A connection or request the server refuses: ``status`` (401, 404, 429, 503...) and why."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def shown_path(target: str) -> str:
    """The path of a request target as a log shows it: without the query (whatever a client
    put there stays out of the log), unquoted, escaped and cut short."""
    path = unquote(target.partition("?")[0])
    return ascii(path[:200])
