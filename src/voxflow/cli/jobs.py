"""``voxflow jobs``: look at the resumable batch jobs that ``voxflow transcribe -o DIR`` keeps."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from voxflow.errors import ConfigError
from voxflow.jobs import format_status, job_status

from .app import app

jobs_app = typer.Typer(
    help="Batch jobs: what is done, failed or pending in an output directory.",
    no_args_is_help=True,
)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command()
def status(
    directory: Annotated[
        Path, typer.Argument(help="The output directory of a transcribe job.", readable=False)
    ],
    format: Annotated[
        str, typer.Option("--format", help="text (for people) or json.")
    ] = "text",
) -> None:
    """Counts of done, failed and pending files, and each failure's reason in one line."""
    if format not in ("text", "json"):
        raise ConfigError(f"unknown format {format!r}: text or json")
    summary = job_status(directory)
    if format == "json":
        sys.stdout.write(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(format_status(summary))
