"""voxflow: transcribe long, multilingual audio quickly and without losing anything.

The Python API: ``transcribe`` (sync), ``transcribe_async`` and ``stream`` (segments as they
are ready), ``transcribe_many`` (many sources at once), with ``TranscribeOptions`` (speaker
labels with ``diarize=DiarizeOptions()``) and the result types ``Transcript``, ``Segment``,
``Word`` and ``Speaker``.
"""

from __future__ import annotations

from voxflow.engines import DecodeSettings, create_engine
from voxflow.engines.azure import AzureOptions
from voxflow.engines.whisper import WhisperOptions
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
from voxflow.languages import LanguagePlan, LidMode
from voxflow.pipeline import (
    LiveSegmentation,
    Progress,
    TranscribeOptions,
    stream,
    transcribe,
    transcribe_async,
    transcribe_many,
)
from voxflow.speakers import DiarizeOptions
from voxflow.transcript import Segment, Speaker, Transcript, Word

__version__ = "0.1.0"

__all__ = [
    "AzureOptions",
    "ConfigError",
    "DecodeError",
    "DecodeSettings",
    "DiarizeOptions",
    "EngineError",
    "InputError",
    "LanguagePlan",
    "LidMode",
    "LiveSegmentation",
    "ModelError",
    "OutputError",
    "Progress",
    "ProtocolError",
    "Segment",
    "Speaker",
    "TranscribeOptions",
    "Transcript",
    "VoxflowError",
    "WhisperOptions",
    "Word",
    "__version__",
    "create_engine",
    "stream",
    "transcribe",
    "transcribe_async",
    "transcribe_many",
]
