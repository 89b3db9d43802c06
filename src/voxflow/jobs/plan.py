"""Planning a job run: which input writes which outputs, and which inputs still need work.

An input is known by its absolute path, which keeps the output stem it was first given, so
names stay put however the inputs are listed next time. A new input takes its natural stem
unless the job used that stem before: then it gets ``-2``, ``-3``…; except that a file moved
elsewhere (same name, same content, old path gone) takes its old record and stem back.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat as st
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from voxflow.outputs import next_free_stem, safe_stem, stem_key

from .state import Item, JobState

if TYPE_CHECKING:
    from voxflow.engines.base import EngineOptions
    from voxflow.pipeline import TranscribeOptions

HASH_BLOCK = 1 << 20
Verdict = Literal["done", "give-up"]


def fingerprint(
    options: TranscribeOptions, engine: EngineOptions, formats: Sequence[str]
) -> str:
    """A short stable hash of what an output depends on: the transcription options, the
    engine's options and the formats, each options class naming its own output-changing
    fields (so a changed beam or phrase list redoes a file, and more workers do not)."""
    settings = {"transcribe": options.fingerprint(), "engine": engine.fingerprint(),
                "formats": sorted(formats)}  # fmt: skip
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 of a file's content, streamed in blocks; None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(HASH_BLOCK):
                digest.update(block)
    except OSError:
        return None  # the transcription reports why, in the same words as without a job
    return digest.hexdigest()


def regular_stat(path: str) -> os.stat_result | None:
    """The stat of a regular file (the only kind whose content can be hashed and trusted)."""
    if path == "-":
        return None
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info if st.S_ISREG(info.st_mode) else None


@dataclass(frozen=True)
class Planned:
    """One input of this run: its name as given, its job record, its hash if already known."""

    name: str
    path: str  # absolute, or "-" for stdin
    item: Item | None
    sha256: str | None = None


def verdict(item: Item, sha256: str | None, options: str, directory: Path,
            max_attempts: int) -> Verdict | None:  # fmt: skip
    """``done`` when this content was transcribed with these options and its outputs are all
    still there; ``give-up`` when it failed ``max_attempts`` times; else None: do the work."""
    if not item.same_work(sha256, options):
        return None
    outputs = item.outputs
    if item.state == "done" and outputs and all((directory / n).is_file() for n in outputs):
        return "done"
    if item.state == "failed" and item.attempts >= max_attempts:
        return "give-up"
    return None


async def plan(job: JobState, names: list[str]) -> list[Planned]:
    """The job records of ``names`` (created where new), without duplicates, in order."""
    paths = ["-" if n == "-" else os.path.abspath(n) for n in names]
    current = set(paths)
    taken = job.taken_stems()
    out: list[Planned] = []
    seen: set[str] = set()
    for name, path in zip(names, paths, strict=True):
        if path in seen:
            continue  # the same file named twice ("a.wav" and "./a.wav")
        seen.add(path)
        item = job.item(path)
        if item is None:
            stem = safe_stem("stdin" if path == "-" else name)
            item = await _moved_here(job, name, path, stem, current)
            if item is None:
                stem = next_free_stem(stem, taken)
                taken.add(stem_key(stem))
                item = job.add(path, name, stem)
        out.append(Planned(name, path, item, item.cached_hash(regular_stat(path))))
    return out


async def _moved_here(
    job: JobState, name: str, path: str, stem: str, current: set[str]
) -> Item | None:
    """The record of a file that was moved to ``path`` (its old path gone, same content)."""
    owner = job.owner_of_stem(stem)
    if (
        owner is None
        or owner.path == "-"
        or owner.path in current
        or owner.sha256 is None
        or os.path.lexists(owner.path)
        or regular_stat(path) is None
    ):
        return None
    if await asyncio.to_thread(file_sha256, path) != owner.sha256:
        return None
    return job.adopt(owner, path, name)
