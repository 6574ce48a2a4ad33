"""Where the shards run: in this process, in a pool of worker processes, or on a Dask cluster.

Every backend runs the same tasks, ``simulate_shard(config, seed, shard, n_events, replicas)``,
and hands their results back *in shard order*, so the file does not depend on the backend or on
the number of workers (the seeds depend on the shard, never on who runs it).

- :func:`run_in_process`: one after the other.
- :func:`run_in_pool`: ``--workers N`` processes of this machine. Each worker dies with its parent
  (Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere a check of the parent at start-up), so a killed
  ``detector-sim`` leaves no orphans simulating for nobody.
- :func:`run_on_dask`: ``dask.distributed`` — an existing scheduler (``--scheduler tcp://host:8786``)
  or a local cluster of ``--workers`` processes (``--scheduler local``). At most two tasks per
  worker are in flight, so results wait neither on the workers nor here in large numbers.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from detector_sim.simulate import simulate_shard

log = logging.getLogger(__name__)

#: Linux prctl option: the signal a process gets when its parent dies
_PR_SET_PDEATHSIG = 1
#: seconds to wait for a Dask scheduler given by address
SCHEDULER_TIMEOUT_S = 20


class BackendError(ValueError):
    """A backend that cannot be used (no Dask, an unreachable scheduler); the message says what to do."""


def run_task(task: tuple):
    """One shard: ``simulate_shard(*task)``."""
    return simulate_shard(*task)


def run_in_process(tasks: list[tuple]) -> Iterator:
    for task in tasks:
        yield run_task(task)


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: be killed when the process that started this one dies.

    On Linux the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); if the parent
    is gone already (it died between fork and here), exit at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: fall back to the check below only
            log.debug("prctl unavailable: worker %d will not follow its parent's death", os.getpid())
    if os.getppid() != parent_pid:
        os._exit(1)


def run_in_pool(tasks: list[tuple], workers: int) -> Iterator:
    """The tasks on ``workers`` processes (results in task order)."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        yield from pool.map(run_task, tasks)
    finally:
        pool.shutdown(cancel_futures=True)


def run_on_dask(tasks: list[tuple], scheduler: str, workers: int) -> Iterator:
    """The tasks on a Dask cluster: ``scheduler`` an address, or ``"local"`` for ``workers`` local processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:  # a dependency, but say what to do if an environment lacks it
        raise BackendError("--scheduler needs dask[distributed]: pip install 'dask[distributed]'") from err
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as err:
            raise BackendError(f"--scheduler {scheduler}: no Dask scheduler answered ({type(err).__name__}: {err}); "
                               "check the address (tcp://host:8786) or use --scheduler local") from None
    try:
        slots = 2 * max(len(client.scheduler_info().get("workers", {})), 1)
        log.info("Dask scheduler %s: %d shards, up to %d in flight", scheduler, len(tasks), slots)
        pending = deque()
        queued = iter(tasks)
        for task in queued:
            pending.append(client.submit(run_task, task, pure=False))
            if len(pending) >= slots:
                break
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            for task in queued:
                pending.append(client.submit(run_task, task, pure=False))
                break
            yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
