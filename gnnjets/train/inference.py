"""One inference loop for every consumer: the linear probe, the downstream heads and the Embedder.

:func:`run_batches` passes ``(rows, batch)`` pairs through a model in eval mode without gradients
and puts each output into its rows of one array, so the result is in row order whatever order the
batches come in. The model's training mode is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


class NoBatchError(ValueError):
    """:func:`run_batches` got no batch at all (no jets selected)."""


@torch.no_grad()  # not inference_mode: its tensors cannot feed a downstream model's autograd
def run_batches(model: nn.Module, batches: Iterable, n: int | None = None, *, device: torch.device | str = "cpu",
                transform: Callable | None = None, progress: bool = False, desc: str = "embed") -> np.ndarray:
    """Outputs of ``model``, float32 ``(n, D)`` (or ``(n,)`` for scalar outputs), in row order.

    Args:
        model: PyG batch -> (B, D) or (B,) tensor.
        batches: ``(rows, batch)`` pairs: ``rows`` (B,) the row of each graph of the PyG ``batch``
            in the result, or ``None`` for the next B rows (batches in row order).
        n: the number of rows of the result; ``None``: as many as the batches hold.
        transform: ``transform(output, batch)`` applied to each output (on the model's device)
            before it is stored, e.g. to mask the rows of empty graphs; default none.
        progress: a tqdm bar over the jets.

    Raises :class:`NoBatchError` (a ``ValueError``) when there is no batch at all; errors of the
    batches themselves (an unreadable file) pass through unchanged.
    """
    was_training = model.training
    model.eval()
    out, pieces, filled = None, [], 0  # with n known, outputs go straight into `out`
    try:
        with tqdm(total=n, unit="jet", desc=desc, disable=not progress, leave=False) as bar:
            for rows, batch in batches:
                output = model(batch.to(device, non_blocking=True))
                if transform is not None:
                    output = transform(output, batch)
                output = output.float().cpu().numpy()
                rows = np.arange(filled, filled + len(output)) if rows is None else np.asarray(rows)
                filled = max(filled, int(rows.max()) + 1 if len(rows) else filled)
                if n is None:
                    pieces.append((rows, output))
                else:
                    if out is None:
                        out = np.empty((n,) + output.shape[1:], dtype=np.float32)
                    out[rows] = output
                bar.update(len(rows))
    finally:
        model.train(was_training)
    if out is None and not pieces:
        raise NoBatchError("no batch to run: there are no jets")
    if out is None:
        out = np.empty((filled,) + pieces[0][1].shape[1:], dtype=np.float32)
        for rows, output in pieces:
            out[rows] = output
    return out
