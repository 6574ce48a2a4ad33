"""Where the computation runs: the device, the CPUs this process may use, and the allocator.

One home for what every entry point (pretraining, downstream, embedding, the study, benchmarks)
decides the same way: ``"auto"`` means the GPU when one is usable; on CPU the number of torch
threads comes from the CPUs this process may actually run on (its affinity mask and, in a
container or batch slot, the cgroup CPU quota), less the CPUs left to data-loading worker
processes; and glibc's allocator is told to keep freed memory (:func:`tune_allocator`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import os
import sys
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


#: glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: allocations below this come from the heap and freed memory is kept up to this much
ALLOCATOR_THRESHOLD_BYTES = 1 << 30
_allocator_tuned = False


def tune_allocator(threshold_bytes: int = ALLOCATOR_THRESHOLD_BYTES) -> bool:
    """Stop glibc from handing every large tensor back to the kernel when it is freed.

    By default glibc serves allocations above ~128 kB-32 MB with ``mmap`` and returns them with
    ``munmap`` when freed: every training step then maps and faults in its activations afresh.
    Measured on a 20-step pretraining of the bundled sample (2 cores): 10.3 million minor page
    faults and 21 s of system time beside 108 s of user time; with the thresholds raised to
    ``threshold_bytes`` (here, once per process, through ``mallopt``), 0.47 million faults and
    1.5 s of system time, at a peak RSS of 2.0 GB instead of 1.3 GB (freed memory is kept for
    the next step). A no-op outside glibc, and when ``GNNJETS_MALLOC=0`` is set. Returns whether
    the allocator is tuned.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if os.environ.get("GNNJETS_MALLOC", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: nothing to tune
        return False
    value = ctypes.c_int(min(int(threshold_bytes), 2**31 - 1))
    _allocator_tuned = bool(mallopt(_M_MMAP_THRESHOLD, value)) and bool(mallopt(_M_TRIM_THRESHOLD, value))
    log.debug("glibc allocator thresholds %s: %d bytes", "set" if _allocator_tuned else "unchanged", value.value)
    return _allocator_tuned
