"""``voxflow serve``: the Azure Speech websocket protocol and OpenAI's audio API on the embedded
engine, on one port."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from voxflow.errors import ConfigError
from voxflow.pipeline import TranscribeOptions
from voxflow.server.config import Faults, ServerConfig
from voxflow.server.usp import RecognitionStatus

from .app import app

_TEST = "Test controls (off by default)"
_LIMITS = "Limits"


class LogLevel(StrEnum):
    """How much the server logs to stderr: info (the default) is one line per connection,
    refusal and close; debug adds each turn."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _log_to_stderr(level: LogLevel) -> None:
    """Send voxflow's log records at ``level`` and above to stderr, and only voxflow's: the
    libraries under it (faster-whisper, aiohttp) keep their own counsel."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s voxflow serve: %(levelname)s %(message)s"))
    logger = logging.getLogger("voxflow")
    logger.handlers = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback unless you mean to expose it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 5000,
    key: Annotated[
        str | None,
        typer.Option(
            envvar="VOXFLOW_SERVE_KEY",
            show_default=False,
            help="Require this key (Ocp-Apim-Subscription-Key or Authorization: Bearer; the "
            "OpenAI API's api_key). It shows in `ps`: prefer VOXFLOW_SERVE_KEY or --key-file.",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            show_default=False,
            readable=False,
            help="Require the key this file holds (one line), kept out of the command line.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Whisper model: base (bundled, default), a name, a dir.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    workers: Annotated[
        int, typer.Option(help="Parallel model calls (the cores are shared among them).")
    ] = 2,
    vad: Annotated[str, typer.Option(help="Segmenter: silero (VAD) or silence.")] = "silero",
    interim: Annotated[
        bool, typer.Option(help="Send interim results (speech.hypothesis) while audio streams.")
    ] = True,
    max_sessions: Annotated[
        int,
        typer.Option(help="Concurrent connections; more get HTTP 503.", rich_help_panel=_LIMITS),
    ] = 64,
    max_recognitions: Annotated[
        int,
        typer.Option(
            help="Turns recognised at once; later ones wait for a slot.", rich_help_panel=_LIMITS
        ),
    ] = 4,
    max_queue_wait: Annotated[
        float,
        typer.Option(
            help="Seconds a turn may wait for a slot (then 1013); a connection that would wait "
            "longer gets HTTP 503 at once.",
            rich_help_panel=_LIMITS,
        ),
    ] = 20.0,
    max_requests: Annotated[
        int,
        typer.Option(
            help="OpenAI API transcriptions at once; more get HTTP 429.", rich_help_panel=_LIMITS
        ),
    ] = 8,
    max_upload_mb: Annotated[
        float,
        typer.Option(help="Largest OpenAI API upload; more get HTTP 413.", rich_help_panel=_LIMITS),
    ] = 100.0,
    max_frame_bytes: Annotated[
        int, typer.Option(help="Largest websocket message accepted.", rich_help_panel=_LIMITS)
    ] = 256 * 1024,
    max_turn_seconds: Annotated[
        float, typer.Option(help="Audio one turn may carry.", rich_help_panel=_LIMITS)
    ] = 3600.0,
    idle_timeout: Annotated[
        float, typer.Option(help="Close a client silent this long.", rich_help_panel=_LIMITS)
    ] = 300.0,
    pace: Annotated[
        float | None,
        typer.Option(
            help="Read audio at most N× real time, as the service does.", rich_help_panel=_TEST
        ),
    ] = None,
    fault_close_after_bytes: Annotated[
        int | None,
        typer.Option(help="Close each connection after N audio bytes.", rich_help_panel=_TEST),
    ] = None,
    fault_close_connections: Annotated[
        int | None,
        typer.Option(help="...only the first N connections.", rich_help_panel=_TEST),
    ] = None,
    fault_close_code: Annotated[
        int, typer.Option(help="Close code of that fault.", rich_help_panel=_TEST)
    ] = 1011,
    fault_status: Annotated[
        str | None,
        typer.Option(
            help="Answer every turn with this status (Error, BadRequest...).", rich_help_panel=_TEST
        ),
    ] = None,
    fault_delay: Annotated[
        float, typer.Option(help="Seconds before each reply.", rich_help_panel=_TEST)
    ] = 0.0,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            case_sensitive=False,
            help="Log to stderr: info is a line per connection, refusal and close; debug adds "
            "each turn. The key is never logged.",
        ),
    ] = LogLevel.INFO,
    fault_401: Annotated[
        bool, typer.Option(help="Refuse every connection with HTTP 401.", rich_help_panel=_TEST)
    ] = False,
) -> None:
    """Serve the Azure Speech websocket protocol and OpenAI's audio API (/v1/audio/...) on the
    local engine, on one port, until Ctrl-C or SIGTERM."""
    from voxflow.server.app import SpeechServer, run_server

    status = None
    if fault_status is not None:
        by_name = {s.value.lower(): s for s in RecognitionStatus}
        status = by_name.get(fault_status.lower())
        if status is None:
            raise ConfigError(f"unknown --fault-status {fault_status!r}")
    if key_file is not None:
        if key is not None:
            raise ConfigError("give one key: --key (or VOXFLOW_SERVE_KEY) or --key-file")
        key = _read_key(key_file)
    config = ServerConfig(
        host=host,
        port=port,
        key=key,
        max_frame_bytes=max_frame_bytes,
        max_turn_seconds=max_turn_seconds,
        max_sessions=max_sessions,
        max_recognitions=max_recognitions,
        max_queue_wait=max_queue_wait,
        max_requests=max_requests,
        max_upload_mb=max_upload_mb,
        idle_timeout=idle_timeout,
        pace=pace,
        interim=interim,
        options=TranscribeOptions(vad=vad),  # type: ignore[arg-type]
        faults=Faults(
            close_after_bytes=fault_close_after_bytes,
            close_connections=fault_close_connections,
            close_code=fault_close_code,
            error_status=status,
            reply_delay=fault_delay,
            force_401=fault_401,
        ),
    )
    from voxflow.engines import create_engine
    from voxflow.engines.whisper import WhisperOptions

    engine = create_engine(WhisperOptions(model=model, device=device, num_workers=workers))
    if not _loopback(host) and key is None:
        print(
            f"voxflow serve: warning: listening on {host} without --key: anyone who can reach "
            "it can use it",
            file=sys.stderr,
        )
    if config.faults.any or pace:
        print("voxflow serve: test controls are on", file=sys.stderr)

    def ready(server: SpeechServer) -> None:
        print(f"voxflow serve: listening on {server.url}", flush=True)
        print(f"voxflow serve: OpenAI audio API at {server.http_url}/v1", flush=True)

    _log_to_stderr(log_level)  # once it serves: a refused command leaves logging alone
    asyncio.run(run_server(config, engine=engine, ready=ready))
    print("voxflow serve: stopped", file=sys.stderr)


def _read_key(path: Path) -> str:
    """The key in ``path``: its one line, without the line end (an empty file is an error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"cannot read the key file: {reason}", source=str(path)) from None
    key = text.strip()
    if not key or "\n" in key:
        raise ConfigError("a key file holds the key on one line", source=str(path))
    return key
