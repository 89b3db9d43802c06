"""Test helper: running a command as a user that file permissions stop (root is not one)."""

from __future__ import annotations

import os
import shutil

import pytest

needs_unprivileged = pytest.mark.skipif(
    os.name != "posix" or (os.geteuid() == 0 and shutil.which("setpriv") is None),
    reason="needs POSIX permissions and a user they stop",
)


def unprivileged(command: list[str]) -> list[str]:
    """``command`` as a user that file permissions stop: as is, or as nobody under root."""
    return command if os.geteuid() != 0 else ["setpriv", "--reuid=65534", "--regid=65534",
                                              "--clear-groups", *command]  # fmt: skip
