"""Why a training cannot go on; the message says what to change."""

from __future__ import annotations

from gnnjets.base.errors import GnnjetsError


class TrainingError(GnnjetsError, RuntimeError):
    """Pretraining cannot go on (bad data, non-finite loss, incompatible resume); the message says why."""


class DownstreamError(GnnjetsError, RuntimeError):
    """A downstream run cannot go on (bad data, incompatible checkpoint); the message says why."""
