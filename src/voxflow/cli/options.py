"""Command-line options that several commands take the same way (``transcribe``, ``listen``):
one declaration each, so their names, help and defaults cannot drift apart."""

from __future__ import annotations

from typing import Annotated

import typer

Model = Annotated[
    str | None,
    typer.Option(help="Whisper model: base (bundled, default), a faster-whisper name, a dir."),
]
Languages = Annotated[
    str | None, typer.Option(help="Candidate languages, e.g. en-US,es-MX,zh-CN.")
]
Lid = Annotated[str, typer.Option(help="Language id: at-start or continuous.")]
Language = Annotated[
    str | None, typer.Option(help="Force one language (e.g. en or es-MX); no identification.")
]
Vad = Annotated[str, typer.Option(help="Segmenter: silero (VAD) or silence.")]
Task = Annotated[
    str, typer.Option(help="transcribe, or translate: the speech in English (Whisper's task).")
]
Phrase = Annotated[list[str] | None, typer.Option(help="A phrase-list hint (repeatable).")]
