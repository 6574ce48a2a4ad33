"""gnnjets: self-supervised representations of detector-level jets with graph neural networks.

The Python API mirrors the command-line tools:

>>> import gnnjets                                                          # doctest: +SKIP
>>> result = gnnjets.pretrain("default", overwrite=True)                   # gnnjets-pretrain
>>> summary = gnnjets.downstream({"task": "qg", ...})                      # gnnjets-downstream
>>> h, ids = gnnjets.Embedder.from_checkpoint(result.checkpoint).embed_file("jets.root")   # gnnjets-embed
>>> gnnjets.export_onnx(result.checkpoint, "model.onnx")                  # gnnjets-export

(the simulation's is :func:`detector_sim.generate`). Kept import-light: ``import gnnjets`` does not
import torch (``detector_sim`` imports :mod:`gnnjets.io.schema`); each name above imports what it
needs when first used.
"""

__version__ = "0.2.0"

#: public name -> (module, attribute), imported on first use
_LAZY = {
    "Embedder": ("gnnjets.embed", "Embedder"),
    "pretrain": ("gnnjets.train.pretrain", "pretrain"),
    "downstream": ("gnnjets.train.downstream", "run_downstream"),
    "export_onnx": ("gnnjets.export", "export_onnx"),
    "read_jets": ("gnnjets.io.reader", "read_jets"),
    "read_all": ("gnnjets.io.reader", "read_all"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'gnnjets' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
