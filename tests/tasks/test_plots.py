"""Plots: no backend switch on import, PNG and PDF, AUC in the legend, bands, empty bins, gnnjets-plot."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

from gnnjets.cli import plot as plot_cli
from gnnjets.tasks import plots
from gnnjets.tasks.metrics import response_table


def test_importing_the_plots_does_not_switch_the_backend():
    code = ("import matplotlib; matplotlib.use('svg'); import gnnjets.tasks.plots, gnnjets.tasks.report, "
            "gnnjets.train.downstream; print(matplotlib.get_backend())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "svg", done.stderr[-2000:]


def test_roc_with_auc_band_and_both_formats(tmp_path):
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 400)
    score = label + rng.normal(0, 0.8, 400)
    path = plots.plot_roc({"gnn": (label, score)}, tmp_path / "roc.png", signal="quark", background="gluon")
    assert path.stat().st_size > 0 and (tmp_path / "roc.pdf").stat().st_size > 0
    grid, low, high = plots.roc_band(label, score)
    finite = np.isfinite(low) & np.isfinite(high)
    assert finite.sum() > 50 and (low[finite] <= high[finite]).all()


def test_response_skips_empty_bins_and_draws_when_all_are_empty(tmp_path):
    """Issue case 1: every bin under the minimum count."""
    e_true = np.linspace(150, 900, 30)
    table = response_table(e_true * 0.9, e_true, [100, 300, 600, 1000])
    assert all(not np.isfinite(row["median"]) for row in table["bins"])
    plots.plot_response({"em": table}, tmp_path / "response.png")
    assert (tmp_path / "response.png").exists() and (tmp_path / "response.pdf").exists()


def test_mplhep_style_is_used_when_installed(tmp_path, monkeypatch):
    fake = types.ModuleType("mplhep")
    fake.style = types.SimpleNamespace(ATLAS={"lines.linewidth": 3.0})
    monkeypatch.setitem(sys.modules, "mplhep", fake)
    seen = {}
    original = plots._save

    def spy(fig, path):
        import matplotlib

        seen["linewidth"] = matplotlib.rcParams["lines.linewidth"]
        return original(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    plots.plot_label_efficiency({"gnn": [(10, 0.6, 0.02), (100, 0.7, 0.01)]}, tmp_path / "le.png", metric="AUC")
    assert seen["linewidth"] == 3.0


def test_gnnjets_plot_redraws_from_results_json(tmp_path, capsys):
    rng = np.random.default_rng(1)
    label = rng.integers(0, 2, 200)
    results = [{"method": "pretrained", "head": "linear", "labels": n, "train": {},
                "metrics": {"auc": 0.6 + 0.01 * i, "rejection@0.5": 3.0 + i, "rejection@0.3": 5.0},
                "uncertainty": {"auc": 0.01, "rejection@0.5": 0.2}} for i, n in enumerate((50, 100))]
    (tmp_path / "results.json").write_text(json.dumps({"task": "qg", "results": results}))
    np.savez(tmp_path / "predictions.npz", test_label=label, pred_pretrained=label + rng.normal(0, 1, 200))
    assert plot_cli.main([str(tmp_path / "results.json"), "--out", str(tmp_path / "again")]) == 0
    for name in ("roc", "label_efficiency", "label_efficiency_rejection"):
        assert (tmp_path / "again" / f"{name}.png").exists() and (tmp_path / "again" / f"{name}.pdf").exists()
    assert plot_cli.main([str(tmp_path / "nope.json")]) == 2
    assert "nope.json does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["[1, 2]", "not json"])
def test_gnnjets_plot_refuses_other_files(tmp_path, capsys, text):
    (tmp_path / "results.json").write_text(text)
    assert plot_cli.main([str(tmp_path / "results.json")]) == 2
    assert "results.json" in capsys.readouterr().err
