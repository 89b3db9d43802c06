"""voxflow: transcribe long, multilingual audio quickly and without losing anything."""

from __future__ import annotations

from voxflow.errors import (
    ConfigError,
    DecodeError,
    EngineError,
    InputError,
    ModelError,
    OutputError,
    ProtocolError,
    VoxflowError,
)
from voxflow.transcript import Segment, Transcript, Word

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DecodeError",
    "EngineError",
    "InputError",
    "ModelError",
    "OutputError",
    "ProtocolError",
    "Segment",
    "Transcript",
    "VoxflowError",
    "Word",
    "__version__",
]
