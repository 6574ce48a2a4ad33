"""Logging for the command-line tools: library modules log, the tools decide what is shown.

Every library module logs through ``logging.getLogger(__name__)`` and never prints; a notebook
user silences or redirects it like any other library (``logging.getLogger("gnnjets")``). The
command-line tools call :func:`add_logging_arguments` and :func:`configure_logging`: info messages
go to stderr by default, ``-v`` adds debug messages, ``--quiet`` keeps warnings and errors only
and hides the progress bars.
"""

from __future__ import annotations

import argparse
import logging
import sys

#: the loggers of both packages
PACKAGES = ("gnnjets", "detector_sim")


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` on ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", help="also show debug messages")
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")


def configure_logging(prog: str, *, verbose: bool = False, quiet: bool = False) -> int:
    """Send the packages' log records to stderr as ``prog: message``; return the level set.

    Replaces the handler a previous call installed (a tool run twice in one process, as the tests
    and the demo do, does not print every line twice).
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    formatter = logging.Formatter(f"{prog}: %(message)s")
    for name in PACKAGES:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if getattr(handler, "_gnnjets_cli", False):
                logger.removeHandler(handler)
        handler = _StderrHandler()
        handler._gnnjets_cli = True
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        logger.setLevel(level)
    return level


class _StderrHandler(logging.StreamHandler):
    """A StreamHandler on the *current* ``sys.stderr`` (pytest's capsys swaps it between calls)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ sets it; the property always reads sys.stderr
        pass

