"""The typer application that every ``voxflow`` sub-command registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="voxflow",
    help="Transcribe long, multilingual audio quickly and without losing anything.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
