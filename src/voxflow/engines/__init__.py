"""Recognition engines behind one async protocol; ``create_engine`` is the one factory."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from voxflow.engines.base import (
    Capabilities,
    Clip,
    DecodeSettings,
    Engine,
    EngineOptions,
    SourceReadingEngine,
)
from voxflow.errors import ConfigError

if TYPE_CHECKING:
    from voxflow.engines.azure import AzureOptions
    from voxflow.engines.whisper import WhisperOptions

_default: Engine | None = None
_default_lock = threading.Lock()


def create_engine(options: WhisperOptions | AzureOptions | None = None) -> Engine:
    """The engine for these options, chosen by their type: ``WhisperOptions`` → the embedded
    Whisper engine, ``AzureOptions`` → Azure Speech. None: the embedded engine on the bundled
    model, created once per process and shared (the CLI, the server and the Python API)."""
    global _default
    if options is None:
        with _default_lock:
            if _default is None:
                from voxflow.engines.whisper import WhisperEngine

                _default = WhisperEngine()
            return _default
    from voxflow.engines.azure.config import AzureOptions
    from voxflow.engines.whisper.engine import WhisperOptions

    if isinstance(options, WhisperOptions):
        from voxflow.engines.whisper import WhisperEngine

        return WhisperEngine(options)
    if isinstance(options, AzureOptions):
        from voxflow.engines.azure import AzureEngine

        return AzureEngine(options)
    raise ConfigError(f"no engine takes options of type {type(options).__name__}")


__all__ = [
    "Capabilities",
    "Clip",
    "DecodeSettings",
    "Engine",
    "EngineOptions",
    "SourceReadingEngine",
    "create_engine",
]
