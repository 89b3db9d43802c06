"""A job's summary for ``voxflow jobs status``: counts by state and the failures' reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voxflow.errors import printable

from .state import STATES, JobState


@dataclass(frozen=True)
class FileStatus:
    """One input as the job sees it now."""

    path: str
    stem: str
    state: str  # pending, running, done or failed
    attempts: int
    error: str | None


@dataclass(frozen=True)
class JobStatus:
    """Counts by state and every input's status."""

    directory: str
    active: bool  # a run holds the job now
    counts: dict[str, int]
    files: list[FileStatus]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_status(directory: Path) -> JobStatus:
    """Read the job in ``directory``: a done input whose outputs went missing counts as
    pending (the next run redoes it), and so does one left running by a killed run."""
    with JobState.read(directory) as job:
        active = job.active()
        files = []
        for item in job.items():
            state, error = item.state, item.error
            if state == "running" and not active:
                state = "pending"  # killed while transcribing it; the next run starts afresh
            if state == "done":
                missing = [n for n in item.outputs if not (directory / n).is_file()]
                if missing:
                    state, error = "pending", f"output missing: {missing[0]}"
            files.append(FileStatus(item.name, item.stem, state, item.attempts, error))
    counts = {s: sum(1 for f in files if f.state == s) for s in STATES}
    return JobStatus(str(directory), active, counts, files)


def format_status(status: JobStatus) -> str:
    """Lines for a person: the counts, then each failed input with its one-line reason."""
    c = status.counts
    total = len(status.files)
    parts = [f"{c['done']} done", f"{c['failed']} failed", f"{c['pending']} pending"]
    if c["running"]:
        parts.append(f"{c['running']} running")
    lines = [f"{printable(status.directory)}: {total} files: {', '.join(parts)}"
             + (" (a run is in progress)" if status.active else "")]  # fmt: skip
    for f in status.files:
        if f.state == "failed":
            tries = f"{f.attempts} attempt{'s' if f.attempts != 1 else ''}"
            lines.append(f"  failed: {printable(f.path)}: {printable(f.error or '')} ({tries})")
    for f in status.files:
        if f.state == "pending" and f.error and f.error.startswith("output missing"):
            lines.append(f"  pending: {printable(f.path)}: {printable(f.error)}")
    return "\n".join(lines) + "\n"
