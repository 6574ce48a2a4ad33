"""L2-regularised linear heads with the penalty chosen by cross-validation on the training labels.

The linear classifier test of a representation (JetCLR, arXiv:2108.04253) is only fair when the
head cannot overfit: 995 EFPs on 1,000 jets, or 128 embedding dimensions on 100 jets, fit noise
without a penalty. :func:`fit_linear` standardises the features (mean and scale of the training
rows), then fits

- classification: logistic regression, ``sklearn.linear_model.LogisticRegressionCV`` over the
  inverse penalties :data:`PENALTY_GRID`, stratified ``folds``-fold cross-validation scored by
  the log loss;
- regression: ridge regression, ``sklearn.linear_model.RidgeCV`` over the same grid (as
  ``alpha = 1 / C``), scored by leave-one-out squared error (closed form, exact).

Only the training rows are used: no validation or test jet chooses the penalty. The fitted head
gives the task's raw output (a logit, or the regression target), like :class:`~gnnjets.nn.heads.Head`.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import StratifiedKFold

from gnnjets.tasks.tasks import Task
from gnnjets.train.errors import DownstreamError

#: inverse L2 penalties C tried by cross-validation (ridge: alpha = 1 / C)
PENALTY_GRID = np.logspace(-4, 3, 15)


class LinearHead:
    """A fitted standardise-then-linear map: ``output = ((x - mean) / scale) @ coef + intercept``.

    Attributes: ``mean``, ``scale``, ``coef`` (D,), ``intercept``, ``penalty`` (the chosen C).
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float, penalty: float):
        self.mean, self.scale, self.coef = mean, scale, coef
        self.intercept, self.penalty = float(intercept), float(penalty)

    def output(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs (n,) float64 for features ``x`` (n, D)."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "penalty": self.penalty}


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12 * np.maximum(np.abs(mean), 1.0), scale, 1.0)  # constant columns
    return (x - mean) / scale, mean, scale


def fit_linear(x: np.ndarray, y: np.ndarray, *, task: Task, seed: int = 0, folds: int = 5,
               penalties: np.ndarray = PENALTY_GRID) -> tuple[LinearHead, dict]:
    """Fit an L2-regularised linear head on ``x`` (n, D), ``y`` (n,); the penalty by cross-validation.

    Returns the head and training facts (``penalty``, ``cv_folds``). Raises
    :class:`~gnnjets.train.errors.DownstreamError` for non-finite features or a single class.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not np.isfinite(x).all():
        raise DownstreamError("the features of the linear head hold non-finite values; check the input files")
    z, mean, scale = _standardise(x)
    if task.classification:
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise DownstreamError(f"the {len(y)} labelled jets hold only class {classes[0]:g}: a classifier needs both")
        k = int(min(folds, counts.min()))
        if k < 2:
            raise DownstreamError(f"cross-validation needs at least 2 jets of each class; got {counts.tolist()}")
        model = LogisticRegressionCV(Cs=list(penalties), cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                                     scoring="neg_log_loss", max_iter=3000, tol=1e-5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the weakest penalties on separable data
            model.fit(z, y.astype(int))
        head = LinearHead(mean, scale, model.coef_[0].copy(), float(model.intercept_[0]), float(model.C_[0]))
        return head, {"penalty": head.penalty, "cv_folds": k}
    model = RidgeCV(alphas=1.0 / np.asarray(penalties))
    model.fit(z, y)
    head = LinearHead(mean, scale, np.asarray(model.coef_, dtype=np.float64), float(model.intercept_),
                      1.0 / float(model.alpha_))
    return head, {"penalty": head.penalty, "cv_folds": "leave-one-out"}
