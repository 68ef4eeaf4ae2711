"""The classical baselines of a transfer study: scikit-learn logistic regression and a linear SVM
on raw pixels or on a network's penultimate features (``baseline.py``, ``experiment=transfer_*``).

Each is a standardise-then-classify pipeline whose regularisation ``C`` is chosen on the
validation split; the test split is scored once, with the same torchmetrics as the networks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from trueval.core.errors import UserError

log = logging.getLogger("trueval")

CLASSIFIERS = ("logreg", "svm")
INPUTS = ("pixels", "features")
DEFAULT_CS = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths tried; the validation split picks one
DEFAULT_MAX_ITER = 2000
_PARALLEL_FROM = 1_000_000  # training values (samples x features) from which the Cs are fitted in parallel


def parse_method(method: str) -> tuple[str, str]:
    """``logreg_pixels`` -> (logreg, pixels); refuses unknown names, naming the choices."""
    classifier, _, inputs = str(method).partition("_")
    if classifier not in CLASSIFIERS or inputs not in INPUTS:
        choices = [f"{c}_{i}" for c in CLASSIFIERS for i in INPUTS]
        raise UserError(f"unknown baseline {method!r}; choose from {choices}", key="methods")
    return classifier, inputs


def _pipeline(classifier: str, C: float, max_iter: int, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    model = (LogisticRegression(C=C, max_iter=max_iter, random_state=seed) if classifier == "logreg"
             else LinearSVC(C=C, max_iter=max_iter, random_state=seed))
    return make_pipeline(StandardScaler(), model)


def _fit(classifier: str, C: float, max_iter: int, seed: int, x: np.ndarray, y: np.ndarray) -> Any:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter bounds the time; val picks C
        return _pipeline(classifier, C, max_iter, seed).fit(x, y)


@torch.no_grad()
def extract(loader: Iterable, net: nn.Module | None = None, device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of a loader: flattened pixels, or ``net.forward_features`` when a net is given."""
    if net is not None:
        net.eval().to(device)
    xs, ys = [], []
    for x, y in loader:
        x = x.to(device)
        out = net.forward_features(x) if net is not None else x.flatten(1)
        xs.append(out.float().flatten(1).cpu().numpy())
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def score_predictions(pred: np.ndarray, target: np.ndarray, num_classes: int) -> dict[str, float]:
    """test/acc, test/acc_macro, test/f1_macro, ... as the classifier logs them (torchmetrics)."""
    from trueval.models.classifier import _metrics

    metrics = _metrics(num_classes).clone(prefix="test/")
    metrics.update(torch.as_tensor(pred), torch.as_tensor(target))
    out = {k: float(v) for k, v in metrics.compute().items()}
    out["test/samples"] = float(len(target))
    return out


def fit_and_score(method: str, data: Mapping[str, tuple[np.ndarray, np.ndarray]], num_classes: int,
                  Cs: Sequence[float] = DEFAULT_CS, max_iter: int = DEFAULT_MAX_ITER, seed: int = 0) -> dict[str, float]:
    """Fit ``method`` on train for each C (in parallel processes: each fit is single-threaded or
    nearly, and a 3,072-pixel fit takes tens of seconds), keep the best on val, score test once."""
    import os

    from joblib import Parallel, delayed

    classifier, _ = parse_method(method)
    started = time.time()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data["train"], data["val"], data["test"]
    # worker processes cost a few seconds to start: only worth it for fits that take longer
    jobs = max(1, min(len(Cs), os.cpu_count() or 1)) if x_train.size >= _PARALLEL_FROM else 1
    models = Parallel(n_jobs=jobs)(delayed(_fit)(classifier, float(C), max_iter, seed, x_train, y_train) for C in Cs)
    best, best_acc, best_C = None, -1.0, None
    for C, model in zip(Cs, models):
        acc = float((model.predict(x_val) == y_val).mean())
        if acc > best_acc:
            best, best_acc, best_C = model, acc, float(C)
    metrics = score_predictions(best.predict(x_test), y_test, num_classes)
    metrics.update({"val/acc": best_acc, "baseline/C": best_C, "time/total_seconds": round(time.time() - started, 3)})
    log.info("%s: C=%g (val acc %.4f), test acc %.4f", method, best_C, best_acc, metrics["test/acc"])
    return metrics
