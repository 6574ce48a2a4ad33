"""Conventions every command-line tool follows: common options, and one line per user error.

- ``--version``, ``-v/--verbose`` and ``-q/--quiet`` on every command
  (:func:`add_common_arguments`); the tools configure :mod:`logging` from them
  (:mod:`gnnjets.base.logs`).
- A :class:`~gnnjets.base.errors.GnnjetsError` (bad config, missing or broken file, output that
  cannot be written, incompatible checkpoint, ...) is printed as ``prog: error: message`` on one
  line and the exit code is :data:`EXIT_USAGE` (2); Ctrl-C exits with 130 and says that nothing
  was written (outputs are atomic). Anything else is a bug and keeps its traceback.

Heavy modules (torch, PyG, uproot) are imported inside the command functions, after the
arguments are parsed, so that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from gnnjets import __version__
from gnnjets.base.errors import GnnjetsError
from gnnjets.base.logs import add_logging_arguments, configure_logging

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def plain_text(text: str) -> str:
    """A docstring paragraph for ``--help``: RST literals (double backticks) shown as plain text."""
    return text.replace("``", "")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--version``, ``-v/--verbose``, ``-q/--quiet``."""
    parser.add_argument("--version", action="version", version=f"%(prog)s (gnnjets {__version__})")
    add_logging_arguments(parser)


def run_command(prog: str, command: Callable[[argparse.Namespace], int], args: argparse.Namespace,
                errors: tuple[type[BaseException], ...] = ()) -> int:
    """Configure logging from ``args``, run ``command(args)``, map user errors to one line and exit 2.

    ``errors``: further exception types that are user errors for this command (e.g. ``OSError``
    of an output that cannot be written), besides :class:`GnnjetsError`.
    """
    configure_logging(prog, verbose=getattr(args, "verbose", False), quiet=getattr(args, "quiet", False))
    try:
        return command(args)
    except (GnnjetsError, *errors) as err:
        message = " ".join(str(err).split("\n"))
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; outputs are written atomically, so no partial file was left", file=sys.stderr)
        return EXIT_INTERRUPTED
