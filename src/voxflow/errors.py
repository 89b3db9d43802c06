"""The one exception family voxflow raises: messages name the input and the cause in one line."""

from __future__ import annotations


class VoxflowError(Exception):
    """Base of every error voxflow raises on purpose; ``str()`` is a one-line message for users."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        self.reason = message
        super().__init__(f"{source}: {message}" if source else message)


class InputError(VoxflowError):
    """An input cannot be used: missing, a directory, unreadable."""


class DecodeError(VoxflowError):
    """An input exists but holds no decodable audio: empty, truncated, corrupt, not audio."""


class ConfigError(VoxflowError):
    """Options that contradict each other or name something that does not exist."""


class ModelError(VoxflowError):
    """A speech model that cannot be found, verified or loaded."""


class EngineError(VoxflowError):
    """A recognition engine failed on an input (service error, inference failure)."""


class OutputError(VoxflowError):
    """An output cannot be written: unwritable directory, full disk, would clobber a file."""


class ProtocolError(VoxflowError):
    """A Speech-protocol frame that is malformed or arrives out of order."""
