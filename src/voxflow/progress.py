"""Progress reports for the CLI: rich bars on a terminal, plain lines otherwise, or JSON lines.

Names reach the terminal through :func:`voxflow.errors.printable`, control characters escaped.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from voxflow.errors import printable
from voxflow.pipeline import Progress


class Reporter:
    """Receives pipeline progress and per-file outcomes; this base class reports nothing."""

    def start(self, names: list[str]) -> None:
        """Called once with every input name before work starts."""

    def __call__(self, event: Progress) -> None:
        """A file advanced (seconds of audio done)."""

    def finished(self, name: str, error: str | None) -> None:
        """A file ended, successfully or with a one-line error."""

    def close(self) -> None:
        """All work ended."""


class PlainReporter(Reporter):
    """One line per finished file and a line now and then for long ones: fit for logs."""

    def __init__(self, out: TextIO | None = None, every: float = 10.0) -> None:
        self.out = out or sys.stderr
        self.every = every
        self._last: dict[str, float] = {}
        self._total = 0
        self._done = 0

    def start(self, names: list[str]) -> None:
        self._total = len(names)

    def __call__(self, event: Progress) -> None:
        now = time.monotonic()
        if event.finished or now - self._last.get(event.source, 0.0) < self.every:
            return
        self._last[event.source] = now
        total = f"/{event.total:.0f}" if event.total else ""
        print(f"{printable(event.source)}: {event.done:.0f}{total} s", file=self.out, flush=True)

    def finished(self, name: str, error: str | None) -> None:
        self._done += 1
        state = f"failed: {printable(error)}" if error else "done"
        line = f"[{self._done}/{self._total}] {printable(name)}: {state}"
        print(line, file=self.out, flush=True)


class JsonReporter(Reporter):
    """JSON lines for programs: ``{"event": "progress"|"file"|"start"|"end", ...}``."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self._began: dict[str, float] = {}

    def _emit(self, **data: Any) -> None:
        print(json.dumps(data, ensure_ascii=False), file=self.out, flush=True)

    def start(self, names: list[str]) -> None:
        self._emit(event="start", files=len(names))

    def __call__(self, event: Progress) -> None:
        now = time.monotonic()
        began = self._began.setdefault(event.source, now)
        eta = None  # seconds left at the pace so far
        if event.total and event.done > 0 and not event.finished:
            eta = round(max(0.0, event.total - event.done) * (now - began) / event.done, 1)
        self._emit(
            event="progress",
            file=event.source,
            done=round(event.done, 3),
            total=None if event.total is None else round(event.total, 3),
            segments=event.segments,
            eta=eta,
            **({"dropped": event.dropped} if event.finished else {}),
        )

    def finished(self, name: str, error: str | None) -> None:
        self._emit(event="file", file=name, ok=error is None, error=error)

    def close(self) -> None:
        self._emit(event="end")


class RichReporter(Reporter):
    """A bar per running file and one overall, with ETA, for an interactive terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as Bars,
        )

        self._bars = Bars(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._overall: Any = None
        self._seen: dict[str, float] = {}

    def start(self, names: list[str]) -> None:
        self._bars.start()
        self._overall = self._bars.add_task("all files", total=len(names))

    def __call__(self, event: Progress) -> None:
        task = self._tasks.get(event.source)
        if task is None:
            task = self._bars.add_task(printable(event.source)[-40:], total=event.total or None)
            self._tasks[event.source] = task
        self._bars.update(task, completed=event.done, total=event.total or None)

    def finished(self, name: str, error: str | None) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            self._bars.remove_task(task)
        if error:
            self._bars.console.print(f"{printable(name)}: {printable(error)}", style="red",
                                     markup=False, highlight=False)  # fmt: skip
        self._bars.advance(self._overall)

    def close(self) -> None:
        self._bars.stop()


def make_reporter(mode: str | None, quiet: bool) -> Reporter:
    """The reporter for ``--progress``/``--quiet`` and whether stderr is a terminal."""
    if mode == "json":
        return JsonReporter()
    if quiet:
        return Reporter()
    if sys.stderr.isatty():
        return RichReporter()
    return PlainReporter()
