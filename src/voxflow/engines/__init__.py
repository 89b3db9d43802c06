"""Recognition engines behind one async protocol; ``create_engine`` is the registry."""

from __future__ import annotations

from typing import Any

from voxflow.engines.base import Clip, Engine, Identified
from voxflow.errors import ConfigError

ENGINES = ("whisper",)


def create_engine(name: str, **options: Any) -> Engine:
    """Build the named engine with its options (see each engine's options class)."""
    if name == "whisper":
        from voxflow.engines.whisper import WhisperEngine, WhisperOptions

        return WhisperEngine(WhisperOptions(**options))
    raise ConfigError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Clip", "Engine", "Identified", "create_engine"]
