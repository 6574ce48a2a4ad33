"""The analysis example runs on a bundled sample: embed, score, cut."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gnnjets.checkpoint import save_checkpoint
from gnnjets.config import config_from_dict
from gnnjets.graphs.features import NUM_JET_FEATURES
from gnnjets.io import count_entries
from gnnjets.nn.model import build_model

ROOT = Path(__file__).resolve().parents[1]


def test_analysis_example_embeds_scores_and_cuts(tmp_path, capsys):
    config = config_from_dict({"data": {"train": ["data/qg_small.root"]},
                               "model": {"backbone": {"hidden": 8, "layers": 1, "embedding_dim": 8},
                                         "projection_dim": 8, "projection_hidden": 8}})
    checkpoint = save_checkpoint(tmp_path / "last.pt", {"config": config.to_dict(),
                                                        "model": build_model(config.model, seed=0).state_dict()})
    spec = importlib.util.spec_from_file_location("analysis", ROOT / "examples" / "analysis.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--checkpoint", str(checkpoint), "--file", str(ROOT / "data" / "qg_small.root")]) == 0
    out = capsys.readouterr().out
    jets = count_entries(ROOT / "data" / "qg_small.root") // 2  # two replicas per jet, one embedded
    width = 2 * 8 + NUM_JET_FEATURES  # mean + energy pooling of D = 8, then the jet scalars
    assert f"{jets} jets embedded (D = {width})" in out and "quark efficiency 0.50" in out
