"""The ``voxflow`` command: errors become one line on stderr and a non-zero exit code."""

from __future__ import annotations

import sys

from voxflow.errors import VoxflowError

from .app import app

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code instead of raising for expected failures."""
    try:
        app(args=argv, prog_name="voxflow", standalone_mode=False)
    except VoxflowError as exc:
        print(f"voxflow: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("voxflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # raised by commands that choose their own exit code
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR
    except Exception as exc:  # click's usage errors and aborts
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return EXIT_INTERRUPTED
        raise
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
