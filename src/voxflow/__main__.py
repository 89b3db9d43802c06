"""``python -m voxflow``: the same as the ``voxflow`` command."""

from voxflow.cli import entry

entry()
