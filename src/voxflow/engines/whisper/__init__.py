"""The embedded engine: faster-whisper on the bundled base model, with voxflow's own decoding."""

from voxflow.engines.whisper.engine import WhisperEngine, WhisperOptions

__all__ = ["WhisperEngine", "WhisperOptions"]
