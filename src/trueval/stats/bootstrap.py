"""Percentile bootstrap confidence intervals of test metrics, over test samples (images for detection).

Why not torchmetrics.wrappers.BootStrapper: it resamples within each ``update`` call (every batch
on its own, Poisson or multinomial per batch), so its spread depends on the batch size and the
batches are never mixed; the interval a reader wants resamples the whole test set at once. Here
the test set's samples are drawn with replacement ``resamples`` times and every metric is
recomputed on each draw:

- classification: one confusion matrix per draw (a single batched ``bincount``), reduced to each
  metric by torchmetrics' own reduction of (tp, fp, tn, fn), so the numbers mean exactly what the
  logged ``test/*`` metrics mean (macro averages skip absent classes the same way);
- detection: torchmetrics' MeanAveragePrecision at IoU 0.5 recomputed on each draw of images
  (a COCO evaluation per draw: slower, hence fewer draws, and mAP50 only).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

LEVEL = 0.95


def resample_indices(n: int, resamples: int, seed: int, chunk: int = 100) -> Iterator[torch.Tensor]:
    """Draws of ``n`` indices with replacement, ``chunk`` draws (rows) at a time: ``resamples`` in all.

    Seeded, the same on every machine; in chunks so that 1,000 draws of a 50,000-image test set
    never sit in memory at once.
    """
    generator = torch.Generator().manual_seed(int(seed))
    for start in range(0, resamples, chunk):
        yield torch.randint(0, n, (min(chunk, resamples - start), n), generator=generator)


def percentile_interval(values: np.ndarray | torch.Tensor, level: float = LEVEL) -> list[float]:
    """[lo, hi]: the (1-level)/2 and (1+level)/2 quantiles of the bootstrap distribution."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [float("nan"), float("nan")]
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return [round(float(lo), 6), round(float(hi), 6)]


def _reducer(metric: Any) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """torchmetrics' reduction of per-draw stat scores for one metric of the classifier's collection."""
    from torchmetrics.classification import (MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision,
                                             MulticlassRecall)
    # private, but the very functions the metric classes call in compute(); a test checks that the
    # full-set value equals the logged metric, so a change in torchmetrics shows up there
    from torchmetrics.functional.classification.accuracy import _accuracy_reduce
    from torchmetrics.functional.classification.f_beta import _fbeta_reduce
    from torchmetrics.functional.classification.precision_recall import _precision_recall_reduce

    average = metric.average
    options = {"average": average, "multidim_average": "samplewise"}
    if isinstance(metric, MulticlassF1Score):
        return lambda tp, fp, tn, fn: _fbeta_reduce(tp, fp, tn, fn, 1.0, zero_division=metric.zero_division, **options)
    if isinstance(metric, (MulticlassPrecision, MulticlassRecall)):
        stat = "precision" if isinstance(metric, MulticlassPrecision) else "recall"
        return lambda tp, fp, tn, fn: _precision_recall_reduce(stat, tp, fp, tn, fn, zero_division=metric.zero_division,
                                                               **options)
    if isinstance(metric, MulticlassAccuracy):
        return lambda tp, fp, tn, fn: _accuracy_reduce(tp, fp, tn, fn, **options)
    raise TypeError(f"no bootstrap reduction for {type(metric).__name__}")


def classification_intervals(metrics: Mapping[str, Any], target: np.ndarray | torch.Tensor,
                             pred: np.ndarray | torch.Tensor, num_classes: int, resamples: int = 1000,
                             seed: int = 0, level: float = LEVEL) -> dict[str, list[float]]:
    """{metric name: [lo, hi]} for the torchmetrics multiclass metrics in ``metrics`` (name -> metric object,
    e.g. the classifier's test MetricCollection), from per-sample targets and predicted classes."""
    n = len(target)
    if n == 0:
        return {}
    draws = classification_draws(metrics, target, pred, num_classes, resample_indices(n, resamples, seed))
    return {name: percentile_interval(values.numpy(), level) for name, values in draws.items()}


def classification_draws(metrics: Mapping[str, Any], target: np.ndarray | torch.Tensor,
                         pred: np.ndarray | torch.Tensor, num_classes: int,
                         indices: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every metric on every draw: {name: one value per draw}; ``indices``: chunks of draws x samples."""
    y = torch.as_tensor(np.asarray(target), dtype=torch.long)
    p = torch.as_tensor(np.asarray(pred), dtype=torch.long)
    n, k = len(y), int(num_classes)
    reducers = {name: _reducer(metric) for name, metric in metrics.items()}
    cell = y * k + p  # the confusion-matrix cell of every sample
    draws: dict[str, list[torch.Tensor]] = {name: [] for name in reducers}
    for idx in indices:
        b = len(idx)
        offsets = torch.arange(b)[:, None] * (k * k)
        cm = torch.bincount((cell[idx] + offsets).reshape(-1), minlength=b * k * k).reshape(b, k, k)
        tp = cm.diagonal(dim1=1, dim2=2)
        fp = cm.sum(1) - tp  # predicted as the class, another true class
        fn = cm.sum(2) - tp
        tn = n - tp - fp - fn
        for name, reduce in reducers.items():
            draws[name].append(reduce(tp, fp, tn, fn).float())
    return {name: torch.cat(values) for name, values in draws.items()}


def detection_intervals(preds: Sequence[Mapping[str, torch.Tensor]], targets: Sequence[Mapping[str, torch.Tensor]],
                        resamples: int = 200, seed: int = 0, level: float = LEVEL,
                        prefix: str = "test/") -> dict[str, list[float]]:
    """{"test/map50": [lo, hi]} over draws of images, by torchmetrics' MeanAveragePrecision."""
    from torchmetrics.detection import MeanAveragePrecision

    n = len(preds)
    if n == 0:
        return {}
    # one IoU threshold: a tenth of the matching work of COCO's ten, and the same mAP50
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=[0.5])
    map50 = []
    for idx in (row for rows in resample_indices(n, resamples, seed) for row in rows.tolist()):
        metric.reset()
        metric.update([preds[i] for i in idx], [targets[i] for i in idx])
        # torchmetrics reports -1 when a draw has nothing to score; the logged metric reads that as 0
        map50.append(max(float(metric.compute()["map_50"]), 0.0))
    return {f"{prefix}map50": percentile_interval(np.array(map50), level)}
