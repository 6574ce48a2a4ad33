"""How a downstream run reports: the text table, the predictions file and the plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnnjets.base.outputs import atomic_output
from gnnjets.data import JetSet
from gnnjets.tasks import plots
from gnnjets.tasks.config import DownstreamConfig
from gnnjets.tasks.tasks import Task, get_task


def save_predictions(path: Path, predictions: dict, test: JetSet) -> None:
    """Test-jet ids, labels and truth with every method's predictions at the largest N (scores or GeV)."""
    arrays = {f"test_{name}": values for name, values in test.attrs.items()}
    arrays.update({f"pred_{method}": values for method, values in predictions.items()})
    with atomic_output(path, keep_suffix=True) as tmp:
        np.savez(tmp, **arrays)


def headline(task: Task, metrics: dict) -> str:
    if task.classification:
        return (f"AUC {metrics['auc']:.4f}, 1/eps_b(0.5) {metrics['rejection@0.5']:.1f}, "
                f"1/eps_b(0.3) {metrics['rejection@0.3']:.1f}")
    whole = metrics["all"]
    return (f"median response {whole['median']:.3f}, resolution IQR/1.349/median {whole['resolution_iqr']:.4f}, "
            f"68%/median {whole['resolution68']:.4f}")


def make_plots(task: Task, config: DownstreamConfig, counts: list[int], results: list[dict], predictions: dict,
           test: JetSet, out_dir: Path) -> dict:
    files = {}
    largest = counts[-1]
    names = {r["method"]: f"{r['method']} ({r['head']})" if r["head"] not in ("-",) else r["method"] for r in results}
    if task.classification and predictions:
        label = test.attrs["label"]
        curves = {names[m]: (label, p) for m, p in predictions.items()}
        files["roc"] = str(plots.plot_roc(curves, out_dir / "roc.png", signal=task.signal, background=task.background,
                                          title=f"{task.name}: {largest} labelled jets, {len(test)} test jets"))
    elif predictions:
        tables = {names[r["method"]]: r["metrics"] for r in results if r["labels"] == largest}
        files["response"] = str(plots.plot_response(tables, out_dir / "response.png",
                                                    title=f"jet energy: {largest} labelled jets"))
    if len(counts) > 1:
        curves: dict = {}
        for r in results:
            value = r["metrics"]["auc"] if task.classification else r["metrics"]["all"]["resolution_iqr"]
            curves.setdefault(names[r["method"]], []).append((r["labels"], value))
        metric = "AUC" if task.classification else "resolution (IQR/1.349) / median"
        files["label_efficiency"] = str(plots.plot_label_efficiency(
            curves, out_dir / "label_efficiency.png", metric=metric, title=f"{task.name}: label efficiency"))
        if task.classification:
            curves = {}
            for r in results:
                curves.setdefault(names[r["method"]], []).append((r["labels"], r["metrics"]["rejection@0.5"]))
            files["label_efficiency_rejection"] = str(plots.plot_label_efficiency(
                curves, out_dir / "label_efficiency_rejection.png", metric=f"{task.background} rejection at 0.5",
                title=f"{task.name}: label efficiency"))
    return files


def results_table(summary: dict) -> str:
    """The results as a fixed-width text table (one row per method and label count)."""
    task = get_task(summary["task"])
    if task.classification:
        header = f"{'method':<22}{'labels':>8}{'AUC':>9}{'1/eps_b(0.5)':>14}{'1/eps_b(0.3)':>14}"
        lines = [header, "-" * len(header)]
        for r in summary["results"]:
            m = r["metrics"]
            lines.append(f"{r['method'] + ' (' + r['head'] + ')':<22}{r['labels']:>8}{m['auc']:>9.4f}"
                         f"{m['rejection@0.5']:>14.1f}{m['rejection@0.3']:>14.1f}")
    else:
        header = f"{'method':<26}{'labels':>8}{'median':>9}{'IQR/1.349':>11}{'res(IQR)':>10}{'res(68%)':>10}"
        lines = [header, "-" * len(header)]
        for r in summary["results"]:
            m = r["metrics"]["all"]
            lines.append(f"{r['method'] + ' (' + r['head'] + ')':<26}{r['labels']:>8}{m['median']:>9.3f}"
                         f"{m['iqr_sigma']:>11.4f}{m['resolution_iqr']:>10.4f}{m['resolution68']:>10.4f}")
    return "\n".join(lines)
