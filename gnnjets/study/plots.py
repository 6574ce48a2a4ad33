"""The study's figures: label-efficiency curves with ±1 sigma bands, and the ablation bars.

Drawn with matplotlib's object-oriented API (``Figure``, no pyplot), so importing or calling
them never changes a notebook's backend; the mplhep style is used when mplhep is installed.
Each figure is written as PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnnjets.base.outputs import atomic_output
from gnnjets.study.report import KEY_METRICS


def _figure(width: float = 6.4, height: float = 4.6):
    from matplotlib.figure import Figure

    try:
        import mplhep

        style = mplhep.style.ROOT
    except ImportError:  # optional: plain matplotlib
        style = {}
    import matplotlib

    with matplotlib.rc_context(style):
        figure = Figure(figsize=(width, height))
        return figure, figure.add_subplot()


def _save(figure, path: Path) -> list[Path]:
    written = []
    for suffix in (".png", ".pdf"):
        target = path.with_suffix(suffix)
        with atomic_output(target, keep_suffix=True) as tmp:
            figure.savefig(tmp, dpi=130, bbox_inches="tight")
        written.append(target)
    return written


def plot_label_efficiency(task: str, methods: dict, out_dir: Path) -> list[Path]:
    """Key metric vs number of labels, one line and band per method."""
    from matplotlib import colormaps

    key, label, _ = KEY_METRICS[task][0]
    figure, axes = _figure()
    # one colour per method (the default cycle repeats after 10), a marker cycle on top
    palette = colormaps["tab10" if len(methods) <= 10 else "tab20"].colors
    band = 0.2 if len(methods) <= 6 else 0.1
    for index, (method, entries) in enumerate(methods.items()):
        counts = sorted(entries)
        mean = np.array([entries[n][key]["mean"] for n in counts])
        std = np.array([entries[n][key]["std"] for n in counts])
        if task == "energy":
            mean, std = 100 * mean, 100 * std
        line, = axes.plot(counts, mean, marker="osD^v<>"[index % 7], markersize=4, label=method,
                          color=palette[index % len(palette)])
        axes.fill_between(counts, mean - std, mean + std, color=line.get_color(), alpha=band)
    axes.set_xscale("log")
    axes.set_xlabel("labelled jets N")
    axes.set_ylabel(f"{label} (%)" if task == "energy" else label)
    axes.set_title(f"{task}: label efficiency (mean ± 1σ over label subsets)", fontsize=10)
    axes.legend(fontsize=7, ncol=2)
    axes.grid(alpha=0.3)
    return _save(figure, Path(out_dir) / f"label_efficiency_{task}")


def plot_ablation(task: str, methods: dict, arms: list[str], out_dir: Path, reference: int) -> list[Path]:
    """The key metric of every arm (and arm+scalars) at the label count nearest ``reference``."""
    key, label, _ = KEY_METRICS[task][0]
    names = [m for arm in arms for m in (arm, f"{arm}+scalars") if m in methods]
    if not names:
        return []
    counts = sorted({n for m in names for n in methods[m]})
    n = min(counts, key=lambda c: abs(np.log(max(c, 1)) - np.log(reference)))
    values = [methods[m].get(n, {}).get(key, {"mean": np.nan, "std": 0.0}) for m in names]
    scale = 100 if task == "energy" else 1
    figure, axes = _figure(max(6.4, 0.6 * len(names)), 4.6)
    axes.bar(range(len(names)), [scale * v["mean"] for v in values], yerr=[scale * v["std"] for v in values],
             capsize=3, color="tab:blue", alpha=0.8)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    finite = [scale * v["mean"] for v in values if np.isfinite(v["mean"])]
    if finite:
        spread = max(finite) - min(finite)
        axes.set_ylim(min(finite) - max(spread, 0.01 * scale) * 1.5, max(finite) + max(spread, 0.01 * scale) * 1.5)
    axes.set_ylabel(f"{label} (%)" if task == "energy" else label)
    axes.set_title(f"{task}: arms at N = {n} (mean ± 1σ)", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, Path(out_dir) / f"ablation_{task}")
