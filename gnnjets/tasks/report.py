"""How a downstream run reports: the text table, the predictions file and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gnnjets.base.errors import GnnjetsError
from gnnjets.base.outputs import atomic_output
from gnnjets.data import JetSet
from gnnjets.tasks import plots
from gnnjets.tasks.tasks import Task, get_task


class ReportError(GnnjetsError, ValueError):
    """A results file that cannot be read back (gnnjets-plot)."""


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


def make_plots(task: Task, counts: list[int], results: list[dict], predictions: dict, test_attrs: dict,
               out_dir: Path) -> dict:
    """The plots of a run (PNG + PDF) into ``out_dir``; returns ``{name: png path}``.

    ``test_attrs``: the test jets' attributes (``label``, ``truth_e``, ...), as ``predictions.npz``
    keeps them; so a finished run's plots can be redrawn from its files (:func:`redraw`).
    """
    files = {}
    largest = counts[-1]
    names = {r["method"]: f"{r['method']} ({r['head']})" if r["head"] not in ("-",) else r["method"] for r in results}
    n_test = len(next(iter(test_attrs.values()))) if test_attrs else 0
    if task.classification and predictions:
        label = test_attrs["label"]
        curves = {names[m]: (label, p) for m, p in predictions.items()}
        files["roc"] = str(plots.plot_roc(curves, out_dir / "roc.png", signal=task.signal, background=task.background,
                                          title=f"{task.name}: {largest} labelled jets, {n_test} test jets"))
    elif predictions:
        tables = {names[r["method"]]: r["metrics"] for r in results if r["labels"] == largest}
        files["response"] = str(plots.plot_response(tables, out_dir / "response.png",
                                                    title=f"jet energy: {largest} labelled jets"))
    if len(counts) > 1:
        curves: dict = {}
        key = "auc" if task.classification else "resolution_iqr"
        for r in results:
            value = r["metrics"][key] if task.classification else r["metrics"]["all"][key]
            std = (r.get("uncertainty") or {}).get(key)
            curves.setdefault(names[r["method"]], []).append((r["labels"], value, np.nan if std is None else std))
        metric = "AUC" if task.classification else "resolution (IQR/1.349) / median"
        files["label_efficiency"] = str(plots.plot_label_efficiency(
            curves, out_dir / "label_efficiency.png", metric=metric, title=f"{task.name}: label efficiency"))
        if task.classification:
            curves = {}
            for r in results:
                std = (r.get("uncertainty") or {}).get("rejection@0.5")
                curves.setdefault(names[r["method"]], []).append((r["labels"], r["metrics"]["rejection@0.5"],
                                                                  np.nan if std is None else std))
            files["label_efficiency_rejection"] = str(plots.plot_label_efficiency(
                curves, out_dir / "label_efficiency_rejection.png", metric=f"{task.background} rejection at 0.5",
                title=f"{task.name}: label efficiency"))
    return files


def redraw(results_path: str | Path, out_dir: str | Path | None = None) -> dict:
    """Draw the plots of a finished run again from its ``results.json`` and ``predictions.npz``.

    Returns ``{name: png path}``; ``out_dir`` defaults to the folder of ``results.json``.
    """
    results_path = Path(results_path)
    try:
        summary = json.loads(results_path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{results_path} does not exist; give the results.json of a gnnjets-downstream run") from None
    except (OSError, ValueError) as err:
        raise ReportError(f"{results_path} is not a readable results.json ({err})") from None
    if not isinstance(summary, dict) or not {"task", "results"} <= set(summary):
        raise ReportError(f"{results_path} is not the results.json of a gnnjets-downstream run (no task/results)")
    task = get_task(summary["task"])
    results = summary["results"]
    counts = sorted({r["labels"] for r in results})
    predictions_path = results_path.with_name("predictions.npz")
    predictions, test_attrs = {}, {}
    if predictions_path.exists():
        with np.load(predictions_path, allow_pickle=False) as saved:
            predictions = {k[len("pred_"):]: saved[k] for k in saved.files if k.startswith("pred_")}
            test_attrs = {k[len("test_"):]: saved[k] for k in saved.files if k.startswith("test_")}
    return make_plots(task, counts, results, predictions, test_attrs, Path(out_dir or results_path.parent))


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
