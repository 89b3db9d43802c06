"""The ``voxflow`` command: errors become one line on stderr and a non-zero exit code."""

from __future__ import annotations

import sys

import typer

from voxflow.errors import VoxflowError

# Importing a command module registers its commands on ``app``.
from . import jobs as _jobs  # noqa: F401
from . import listen as _listen  # noqa: F401
from . import serve as _serve  # noqa: F401
from . import silence as _silence  # noqa: F401
from . import transcribe as _transcribe  # noqa: F401
from .app import app

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code instead of raising for expected failures."""
    try:
        result = app(args=argv, prog_name="voxflow", standalone_mode=False)
    except VoxflowError as exc:
        print(f"voxflow: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (KeyboardInterrupt, typer.Abort):
        print("voxflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # raised by commands that choose their own exit code
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except typer.TyperException as exc:  # usage errors: click's message and exit code 2
        exc.show()  # type: ignore[attr-defined]
        return exc.exit_code  # type: ignore[attr-defined]
    return result if isinstance(result, int) else 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
