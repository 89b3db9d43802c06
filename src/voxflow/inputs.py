"""Turning command-line arguments (files, directories, globs, ``-``) into a list of inputs."""

from __future__ import annotations

import glob
from pathlib import Path

# What a directory scan picks up; files named explicitly are taken whatever their extension.
MEDIA_SUFFIXES = frozenset(
    {
        ".wav",
        ".wave",
        ".mp3",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".mp4",
        ".aac",
        ".webm",
        ".mkv",
        ".mka",
        ".mov",
        ".avi",
        ".wma",
        ".aif",
        ".aiff",
        ".amr",
        ".3gp",
        ".caf",
        ".au",
        ".spx",
    }
)


def expand_inputs(args: list[str]) -> list[str]:
    """Files as given, directories scanned recursively for media, globs expanded; in order,
    without duplicates. A name that matches nothing is kept so that it is reported as missing."""
    out: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            out.append(name)

    for arg in args:
        path = Path(arg)
        if arg == "-":
            add(arg)
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in MEDIA_SUFFIXES:
                    add(str(child))
        elif not path.exists() and glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            for match in matches or [arg]:
                if Path(match).is_dir():
                    continue
                add(match)
        else:
            add(arg)
    return out
