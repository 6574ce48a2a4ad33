"""Plots of downstream results (PNG, matplotlib's Agg backend): ROC curves, energy response, label efficiency."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from gnnjets.base.outputs import atomic_output  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    """Write atomically: a half-written PNG never carries the final name."""
    path = Path(path)
    try:
        with atomic_output(path, keep_suffix=True) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_roc(curves: dict, path: str | Path, *, signal: str, background: str, title: str = "") -> Path:
    """Background rejection 1/ε_b vs signal efficiency ε_s, one line per method.

    Args:
        curves: method name -> (label, score) arrays.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, (label, score) in curves.items():
        fpr, tpr, _ = roc_curve(label, score)
        keep = fpr > 0
        ax.plot(tpr[keep], 1.0 / fpr[keep], label=name)
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"{signal} efficiency ε_s")
    ax.set_ylabel(f"{background} rejection 1/ε_b")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)


def plot_response(tables: dict, path: str | Path, *, title: str = "") -> Path:
    """Median response and relative resolution vs E_true, one line per method.

    Args:
        tables: method name -> :func:`gnnjets.tasks.metrics.response_table` output.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6.5), sharex=True)
    for name, table in tables.items():
        rows = table["bins"]
        centre = np.array([np.sqrt(r["lo"] * r["hi"]) for r in rows])
        top.plot(centre, [r["median"] for r in rows], marker="o", label=name)
        bottom.plot(centre, [r["resolution_iqr"] for r in rows], marker="o", label=f"{name} (IQR/1.349)")
        bottom.plot(centre, [r["resolution68"] for r in rows], marker="x", linestyle=":", color=bottom.lines[-1].get_color())
    top.axhline(1.0, color="grey", lw=0.8)
    top.set_ylabel("median E_pred / E_true")
    bottom.set_ylabel("σ / median of E_pred / E_true")
    bottom.set_xlabel("E_true [GeV]")
    bottom.set_xscale("log")
    for ax in (top, bottom):
        ax.grid(alpha=0.3, which="both")
    top.legend(fontsize=8)
    bottom.legend(fontsize=7)
    top.set_title(title)
    return _save(fig, path)


def plot_label_efficiency(curves: dict, path: str | Path, *, metric: str, title: str = "") -> Path:
    """A metric vs the number of labelled training jets, one line per method.

    Args:
        curves: method name -> list of (labels, value).
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for name, points in curves.items():
        points = sorted(points)
        ax.plot([n for n, _ in points], [v for _, v in points], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training jets")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)
