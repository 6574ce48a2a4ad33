"""Plots of downstream results: ROC curves, energy response, label efficiency, as PNG and PDF.

Drawn with matplotlib's object-oriented API (:class:`matplotlib.figure.Figure`, no ``pyplot``), so
importing this module never switches a notebook's backend. The style is mplhep's (``ATLAS``) when
mplhep is installed, matplotlib's otherwise. Every plot is written atomically as ``name.png`` and
``name.pdf``. Uncertainty bands are bootstrap spreads: of the test jets for the ROC curve
(:func:`roc_band`), of the reported metric for the label-efficiency curves (``uncertainty`` of
each result, :meth:`gnnjets.tasks.tasks.Task.bootstrap`).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from gnnjets.base.outputs import atomic_output

#: signal efficiencies at which the ROC band is evaluated
_EFFICIENCY_GRID = np.linspace(0.02, 1.0, 99)


def _style():
    """mplhep's ATLAS style when mplhep is installed, else matplotlib's defaults (a context manager)."""
    try:
        import matplotlib.style
        import mplhep
    except ImportError:
        return contextlib.nullcontext()
    return matplotlib.style.context(mplhep.style.ATLAS)


def _save(fig: Figure, path: str | Path) -> Path:
    """``path`` (PNG) and the same name as PDF, each written atomically."""
    path = Path(path)
    for target in (path, path.with_suffix(".pdf")):
        with atomic_output(target, keep_suffix=True) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return path


def roc_band(label, score, *, resamples: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ε_s grid, 16th and 84th percentiles of 1/ε_b) over bootstrap resamples of the test jets."""
    label, score = np.asarray(label), np.asarray(score)
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(resamples):
        pick = rng.integers(0, len(label), len(label))
        if len(np.unique(label[pick])) < 2:
            continue
        fpr, tpr, _ = roc_curve(label[pick], score[pick])
        eps_b = np.interp(_EFFICIENCY_GRID, tpr, fpr)
        curves.append(np.where(eps_b > 0, 1.0 / np.maximum(eps_b, 1e-300), np.nan))
    if not curves:
        nan = np.full_like(_EFFICIENCY_GRID, np.nan)
        return _EFFICIENCY_GRID, nan, nan
    with warnings.catch_warnings():  # efficiencies where every resample rejects all background: NaN, not drawn
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(np.array(curves), [16, 84], axis=0)
    return _EFFICIENCY_GRID, low, high


def plot_roc(curves: dict, path: str | Path, *, signal: str, background: str, title: str = "",
             band: bool = True) -> Path:
    """Background rejection 1/ε_b vs signal efficiency ε_s, one line per method, AUC in the legend.

    Args:
        curves: method name -> (label, score) arrays.
        band: draw the 68% bootstrap band of each curve (:func:`roc_band`).
    """
    with _style():
        fig = Figure(figsize=(5.5, 4.5))
        ax = fig.add_subplot()
        for name, (label, score) in curves.items():
            fpr, tpr, _ = roc_curve(label, score)
            keep = fpr > 0
            line, = ax.plot(tpr[keep], 1.0 / fpr[keep], label=f"{name}, AUC = {roc_auc_score(label, score):.3f}")
            if band:
                grid, low, high = roc_band(label, score)
                ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"{signal} efficiency ε_s")
        ax.set_ylabel(f"{background} rejection 1/ε_b")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        ax.set_title(title)
        return _save(fig, path)


def plot_response(tables: dict, path: str | Path, *, title: str = "") -> Path:
    """Median response and relative resolution vs E_true, one line per method.

    Bins with too few jets for a resolution (NaN in the table) are left out; when no bin of any
    method has enough, the plot says so instead of drawing empty axes.

    Args:
        tables: method name -> :func:`gnnjets.tasks.metrics.response_table` output.
    """
    with _style():
        fig = Figure(figsize=(6, 6.5))
        top, bottom = fig.subplots(2, 1, sharex=True)
        edges = []
        for name, table in tables.items():
            rows = [r for r in table["bins"] if np.isfinite(r["median"])]
            edges += [edge for r in table["bins"] for edge in (r["lo"], r["hi"])]
            if not rows:
                continue
            centre = np.array([np.sqrt(r["lo"] * r["hi"]) for r in rows])
            line, = top.plot(centre, [r["median"] for r in rows], marker="o", label=name)
            bottom.plot(centre, [r["resolution_iqr"] for r in rows], marker="o", color=line.get_color(),
                        label=f"{name} (IQR/1.349)")
            bottom.plot(centre, [r["resolution68"] for r in rows], marker="x", linestyle=":", color=line.get_color())
        if edges:
            bottom.set_xlim(min(edges), max(edges))
            bottom.set_xscale("log")
        if not top.lines:
            top.text(0.5, 0.5, "no E_true bin holds enough test jets for a resolution", ha="center", va="center",
                     transform=top.transAxes)
        top.axhline(1.0, color="grey", lw=0.8)
        top.set_ylabel("median E_pred / E_true")
        bottom.set_ylabel("σ / median of E_pred / E_true")
        bottom.set_xlabel("E_true [GeV]")
        for ax in (top, bottom):
            ax.grid(alpha=0.3, which="both")
        if top.get_legend_handles_labels()[0]:
            top.legend(fontsize=8)
            bottom.legend(fontsize=7)
        top.set_title(title)
        return _save(fig, path)


def plot_label_efficiency(curves: dict, path: str | Path, *, metric: str, title: str = "") -> Path:
    """A metric vs the number of labelled training jets, one line per method, with its uncertainty band.

    Args:
        curves: method name -> list of ``(labels, value)`` or ``(labels, value, std)`` points; the
            band is value ± std where a std is given.
    """
    with _style():
        fig = Figure(figsize=(5.5, 4.2))
        ax = fig.add_subplot()
        for name, points in curves.items():
            points = sorted(tuple(p) + (np.nan,) * (3 - len(p)) for p in points)
            n, value, std = (np.array(column, dtype=float) for column in zip(*points))
            line, = ax.plot(n, value, marker="o", label=name)
            if np.isfinite(std).any():
                ax.fill_between(n, value - std, value + std, color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training jets")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        ax.set_title(title)
        return _save(fig, path)
