"""Where the computation runs: the device, and the CPUs this process may use.

One home for what every entry point (pretraining, downstream, embedding, benchmarks) decides the
same way: ``"auto"`` means the GPU when one is usable, and on CPU the number of torch threads
comes from the CPUs this process may actually run on (its affinity mask and, in a container or
batch slot, the cgroup CPU quota), less the CPUs left to data-loading worker processes.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: cuda when available, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"'device' must be 'auto', 'cpu', 'cuda' (or 'cuda:N') or a torch.device, "
                         f"not {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no GPU is usable here (torch {torch.__version__}, "
                         f"torch.cuda.is_available() is False); use device 'cpu' or 'auto'")
    return resolved


def _cgroup_cpu_limit() -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota/period``), or None if unlimited."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by the cgroup quota (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.floor(limit)))
    return max(1, cpus)


def configure_threads(threads: int | None = None, *, workers: int = 0) -> int:
    """Set torch's intra-op threads on CPU and return the number set.

    ``threads``: an explicit count (a ``--threads`` option); ``None`` or 0: the available CPUs
    (:func:`available_cpus`) minus the ``workers`` data-loading processes, at least 1, so that the
    workers and the training threads do not compete for the same cores (oversubscribed torch
    threads on a busy 2-core machine make every scatter call ~100x slower).
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 0):
        raise ValueError(f"'threads' must be a positive int (or 0/None for automatic), not {threads!r}")
    chosen = threads or max(1, available_cpus() - max(0, workers))
    if torch.get_num_threads() != chosen:
        torch.set_num_threads(chosen)
    log.debug("torch CPU threads: %d (available CPUs %d, workers %d)", chosen, available_cpus(), workers)
    return chosen
