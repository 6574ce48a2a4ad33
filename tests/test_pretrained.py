"""Shipped backbones: slim release checkpoints, loadable by name, without pretraining first."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gnnjets.pretrained as pretrained
from gnnjets import Embedder
from gnnjets.base.errors import GnnjetsError
from gnnjets.checkpoint import load_checkpoint, save_checkpoint
from gnnjets.config import config_from_dict
from gnnjets.nn.model import build_model


def pretraining_checkpoint(path):
    config = config_from_dict({"data": {"train": ["data/qg_small.root"]},
                               "model": {"backbone": {"hidden": 8, "layers": 1, "embedding_dim": 8},
                                         "projection_dim": 8, "projection_hidden": 8}}).to_dict()
    model = build_model(config["model"], seed=0)
    optimizer = torch.optim.AdamW(model.parameters())
    return save_checkpoint(path, {"config": config, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                  "step": 7})


def test_release_keeps_what_an_embedder_needs(tmp_path, monkeypatch):
    source = pretraining_checkpoint(tmp_path / "last.pt")
    monkeypatch.setattr(pretrained, "folder", lambda: tmp_path / "shipped")
    (tmp_path / "shipped").mkdir()
    assert pretrained.main(["release", str(source), "--name", "tiny"]) == 0
    slim = load_checkpoint(tmp_path / "shipped" / "tiny.pt")
    assert "optimizer" not in slim and slim["step"] == 7
    assert all(key.startswith("backbone.") for key in slim["model"])
    assert pretrained.available() == ("tiny",)
    h_slim, _ = Embedder.from_pretrained("tiny", device="cpu").embed_file("data/qg_small.root", replica=0)
    h_full, _ = Embedder.from_checkpoint(source, device="cpu").embed_file("data/qg_small.root", replica=0)
    np.testing.assert_array_equal(h_slim, h_full)
    with pytest.raises(GnnjetsError, match="no shipped backbone 'tinny'; did you mean 'tiny'"):
        Embedder.from_pretrained("tinny")


def test_release_refuses_to_replace_a_backbone_without_overwrite(tmp_path, monkeypatch, capsys):
    source = pretraining_checkpoint(tmp_path / "last.pt")
    monkeypatch.setattr(pretrained, "folder", lambda: tmp_path)
    (tmp_path / "tiny.pt").write_bytes(b"the shipped one")
    assert pretrained.main(["release", str(source), "--name", "tiny"]) == 2
    assert "tiny.pt exists; remove it, choose another path, or pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "tiny.pt").read_bytes() == b"the shipped one"
    assert pretrained.main(["release", str(source), "--name", "tiny", "--overwrite"]) == 0
    assert load_checkpoint(tmp_path / "tiny.pt")["step"] == 7


@pytest.mark.parametrize("name", pretrained.available())
def test_every_shipped_backbone_embeds_the_bundled_jets(name):
    embedder = Embedder.from_pretrained(name, device="cpu")
    h, _ = embedder.embed_file("data/qg_small.root" if name == "qg" else "data/top_small.root", replica=0)
    assert np.isfinite(h).all() and h.shape[1] == embedder.dim
    assert pretrained.path(name).stat().st_size < 5 * 2**20  # well under 5 MB


def test_module_runs_as_a_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "gnnjets.pretrained", "list"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and done.stdout.split() == (list(pretrained.available()) or ["none"])
