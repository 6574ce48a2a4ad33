"""Global negatives under DDP: N ranks of B jets give the loss and gradients of one process on N B jets."""

from __future__ import annotations

import gc
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnjets.losses import NTXentLoss, VICRegLoss
from gnnjets.losses.distributed import gather_across_ranks

WORLD, LOCAL, DIM = 2, 6, 5


def inputs():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(DIM, DIM, generator=generator)
    x = torch.randn(WORLD * LOCAL, 2, DIM, generator=generator)  # (jets, views, features)
    return weight, x


def _one_step(rank: int, kind: str) -> tuple[float, list]:
    """This rank's loss and gradient, as plain data (a tensor sent through a queue dies with this
    process's shared memory); the DDP model is freed on return, before the group is destroyed."""
    weight, x = inputs()
    model = torch.nn.parallel.DistributedDataParallel(_Linear(weight))
    criterion = NTXentLoss(temperature=0.2) if kind == "ntxent" else VICRegLoss()
    loss = criterion(gather_across_ranks(model(x[rank * LOCAL:(rank + 1) * LOCAL])))
    loss.backward()
    return loss.item(), model.module.weight.grad.tolist()


def _rank(rank: int, port: int, kind: str, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        queue.put((rank, *_one_step(rank, kind)))
        gc.collect()  # the reducer's reference cycles go before the group they use
        dist.barrier()
    finally:
        dist.destroy_process_group()
    queue.close()
    queue.join_thread()
    # Skip the interpreter's teardown: gloo's threads, torn down there, can abort the process
    # ("terminate called without an active exception", SIGABRT) after the work is done and sent.
    os._exit(0)


class _Linear(torch.nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = torch.nn.Parameter(weight.detach().clone())

    def forward(self, x):
        return x @ self.weight


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ntxent", "vicreg"])
def test_two_ranks_equal_one_process_on_the_whole_batch(kind):
    weight, x = inputs()
    single = _Linear(weight)
    criterion = NTXentLoss(temperature=0.2) if kind == "ntxent" else VICRegLoss()
    expected = criterion(single(x))
    expected.backward()
    context = mp.get_context("spawn")
    queue = context.Queue()
    port = 29_400 + os.getpid() % 500
    processes = [context.Process(target=_rank, args=(rank, port, kind, queue)) for rank in range(WORLD)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in range(WORLD)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    for _, loss, grad in results:
        assert loss == pytest.approx(expected.item(), rel=1e-5)
        torch.testing.assert_close(torch.tensor(grad), single.weight.grad, rtol=1e-4, atol=1e-6)


def test_single_process_passes_through():
    z = torch.randn(3, 2, 4)
    assert gather_across_ranks(z) is z
