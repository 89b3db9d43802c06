"""Settings of the Azure Speech engine: where the service is, the credential, and how to run.

The service is named by a region (with a key or a token), an endpoint URL, or a host such as
``ws://127.0.0.1:5000`` (``voxflow serve``, Speech containers). Values passed explicitly win
over the environment (``SPEECH_KEY``, ``SPEECH_TOKEN``, ``SPEECH_REGION``, ``SPEECH_ENDPOINT``,
``SPEECH_HOST``). The key and the token are kept out of ``repr`` and every message; ``redact``
removes them from any text that came back from the SDK.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal
from urllib.parse import urlsplit

from voxflow.errors import ConfigError

ENV_KEY = "SPEECH_KEY"
ENV_TOKEN = "SPEECH_TOKEN"
ENV_REGION = "SPEECH_REGION"
ENV_ENDPOINT = "SPEECH_ENDPOINT"
ENV_HOST = "SPEECH_HOST"

Profanity = Literal["masked", "removed", "raw"]
PROFANITY: tuple[Profanity, ...] = ("masked", "removed", "raw")

_LOCATION = ("region", "endpoint", "host")
_CREDENTIAL = ("key", "token")


@dataclass(frozen=True)
class AzureOptions:
    """How the Azure engine reaches the service and runs its sessions.

    Location (one): ``region`` (needs ``key`` or ``token``), ``endpoint`` or ``host``.
    ``compressed``: push the file's own MP3/Opus/FLAC/A-law/mu-law bytes (decoded by the SDK
    with GStreamer; one session per file) instead of PCM decoded by voxflow.
    ``sessions``: sessions at once, across all files. ``session_seconds``: the longest
    session; long audio is cut at silences into sessions up to this long. A session gets
    ``timeout_factor`` × its audio + ``timeout_slack`` seconds, and transient failures are
    retried ``max_retries`` times after ``retry_backoff``, doubling, seconds. ``push_speed``:
    audio is pushed at most this many times real time after its first seconds (None or 0: as
    fast as it comes), as a service that reads at real time expects.
    """

    key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    region: str | None = None
    endpoint: str | None = None
    host: str | None = None
    compressed: bool = False
    sessions: int = 8
    session_seconds: float = 300.0
    max_retries: int = 3
    retry_backoff: float = 1.0
    timeout_factor: float = 3.0
    timeout_slack: float = 60.0
    push_speed: float | None = 1.0
    profanity: Profanity | None = None

    def __post_init__(self) -> None:
        if self.profanity is not None:
            value = str(self.profanity).lower()
            if value not in PROFANITY:
                raise ConfigError(
                    f"unknown profanity option {self.profanity!r}: use {', '.join(PROFANITY)}"
                )
            object.__setattr__(self, "profanity", value)
        if self.sessions < 1:
            raise ConfigError("Azure Speech needs at least 1 session at once")
        if not 5.0 <= self.session_seconds <= 3600.0:
            raise ConfigError("Azure session length must be between 5 s and 3600 s")
        if self.max_retries < 0 or self.retry_backoff < 0:
            raise ConfigError("Azure retries and backoff must not be negative")
        if self.push_speed is not None and self.push_speed <= 0:
            object.__setattr__(self, "push_speed", None)  # 0: as fast as it comes
        if not (self.timeout_factor >= 1.0 and self.timeout_slack > 0):
            raise ConfigError("Azure timeout factor must be at least 1 and the slack positive")
        for name in (*_LOCATION, *_CREDENTIAL):
            value = getattr(self, name)
            if value is not None and not str(value).strip():
                object.__setattr__(self, name, None)  # an empty variable means "not set"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **given: Any) -> AzureOptions:
        """Options from explicit values (None means not given) over the environment.

        A location given explicitly replaces every location from the environment, and so does
        a credential: ``--azure-host`` beats ``SPEECH_REGION`` in the shell.
        """
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ConfigError(f"unknown Azure option(s): {', '.join(unknown)}")
        values = {k: v for k, v in given.items() if v is not None}
        if not any(values.get(n) for n in _LOCATION):
            values.update(
                region=env.get(ENV_REGION) or None,
                endpoint=env.get(ENV_ENDPOINT) or None,
                host=env.get(ENV_HOST) or None,
            )
        if not any(values.get(n) for n in _CREDENTIAL):
            values.update(key=env.get(ENV_KEY) or None, token=env.get(ENV_TOKEN) or None)
        return cls(**values)

    def checked(self) -> AzureOptions:
        """These options when they name one usable service location; ConfigError otherwise."""
        located = [n for n in _LOCATION if getattr(self, n)]
        if not located:
            raise ConfigError(
                "Azure Speech needs a service: set SPEECH_KEY and SPEECH_REGION (or pass a key "
                "and region), SPEECH_ENDPOINT, or SPEECH_HOST (e.g. ws://127.0.0.1:5000 for "
                "voxflow serve)"
            )
        if len(located) > 1:
            raise ConfigError(
                f"Azure Speech takes one of region, endpoint or host; got {' and '.join(located)}"
            )
        if self.key and self.token:
            raise ConfigError("Azure Speech takes a key or an authorization token, not both")
        if self.region and not (self.key or self.token):
            raise ConfigError(
                f"Azure region {self.region!r} needs a key (SPEECH_KEY) or an authorization "
                "token (SPEECH_TOKEN)"
            )
        for name in ("endpoint", "host"):
            url = getattr(self, name)
            if url:
                parts = urlsplit(url)
                if parts.scheme not in ("ws", "wss", "http", "https") or not parts.netloc:
                    raise ConfigError(
                        f"Azure {name} {url!r} is not a ws://, wss://, http:// or https:// URL"
                    )
        return self

    @property
    def where(self) -> str:
        """The service location for messages (never the credential)."""
        if self.region:
            return f"region {self.region}"
        url = urlsplit(str(self.endpoint or self.host or ""))
        return f"{url.scheme}://{url.netloc}{url.path}" if url.netloc else "no service"

    def redact(self, text: str) -> str:
        """``text`` with the key and token replaced by ``***`` (for SDK messages)."""
        for secret in (self.key, self.token):
            if secret:
                text = text.replace(secret, "***")
        return text

    def fingerprint(self) -> dict[str, object]:
        """The service, the input path, the session length and the profanity option change a
        transcript; the credential, pacing, retries and concurrency do not."""
        return {"engine": "azure", "service": self.where, "compressed": self.compressed,
                "session_seconds": self.session_seconds, "profanity": self.profanity}  # fmt: skip
