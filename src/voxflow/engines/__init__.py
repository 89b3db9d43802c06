"""Recognition engines behind one async protocol; ``create_engine`` is the registry."""

from __future__ import annotations

from typing import Any

from voxflow.engines.base import Capabilities, Clip, Engine, Identified, capabilities
from voxflow.errors import ConfigError

ENGINES = ("whisper", "azure")


def create_engine(name: str, **options: Any) -> Engine:
    """Build the named engine with its options (see each engine's options class)."""
    if name == "whisper":
        from voxflow.engines.whisper import WhisperEngine, WhisperOptions

        return WhisperEngine(WhisperOptions(**options))
    if name == "azure":
        from voxflow.engines.azure import AzureEngine
        from voxflow.engines.azure.config import AzureOptions

        return AzureEngine(AzureOptions.from_env(**options))
    raise ConfigError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")


__all__ = [
    "ENGINES",
    "Capabilities",
    "Clip",
    "Engine",
    "Identified",
    "capabilities",
    "create_engine",
]
