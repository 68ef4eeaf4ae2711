"""Domain match: can a classifier tell the target images (test, or a folder) from the training images?

A logistic regression on simple image statistics, cross-validated: the AUC of telling train from
target is 0.5 when both come from one distribution and approaches 1 when the target was taken with
another camera, light or preprocessing. The same out-of-fold scores give a per-class breakdown and
the target images that look least like training data.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from trueval.core.samples import SampleSet
from trueval.quality.features import image_statistics, thumbnails
from trueval.quality.figures import image_grid
from trueval.quality.section import Section, display_path, table
from trueval.quality.threads import one_thread

_STAT_SIZE = 32


def domain_scores(train: np.ndarray, target: np.ndarray, folds: int, seed: int) -> tuple[float, np.ndarray]:
    """(cross-validated AUC, out-of-fold P(target) of every row of [train; target])."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([train, target])
    y = np.r_[np.zeros(len(train)), np.ones(len(target))]
    folds = max(2, min(folds, len(train), len(target)))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    with warnings.catch_warnings(), one_thread():
        warnings.simplefilter("ignore")
        p = cross_val_predict(model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                              method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p)), p


def domain_section(train: SampleSet, target: SampleSet, target_name: str, class_names: Sequence[str],
                   root: str | None, max_auc: float, folds: int = 5, max_samples: int = 5000, shown: int = 16,
                   seed: int = 0) -> Section:
    rng = np.random.default_rng(seed)
    tr_idx = _cap(len(train), max_samples, rng)
    ta_idx = _cap(len(target), max_samples, rng)
    channels = train.load(0).shape[2]
    tr = image_statistics(thumbnails(train.subset(tr_idx), _STAT_SIZE, channels))
    ta = image_statistics(thumbnails(target.subset(ta_idx), _STAT_SIZE, channels))
    auc, p = domain_scores(tr, ta, folds, seed)
    p_train, p_target = p[:len(tr)], p[len(tr):]
    flagged = auc > max_auc
    per_class = []
    has_labels = target.targets.min(initial=0) >= 0
    if has_labels:
        from sklearn.metrics import roc_auc_score

        for c, name in enumerate(class_names):
            a, b = p_train[train.targets[tr_idx] == c], p_target[target.targets[ta_idx] == c]
            if len(a) and len(b):
                score = float(roc_auc_score(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b]))
                per_class.append({"class": str(name), "train": len(a), "target": len(b), "auc": round(score, 4)})
    order = np.argsort(-p_target, kind="stable")[:shown]
    far = [{"path": display_path(target, int(ta_idx[i]), target_name, root), "p_target": round(float(p_target[i]), 4)}
           for i in order]
    data = {"target": target_name, "auc": round(auc, 4), "max_auc": float(max_auc), "features": "image statistics",
            "train_samples": len(tr_idx), "target_samples": len(ta_idx), "per_class": per_class,
            "most_out_of_domain": far}
    verdict = ("**the target is told apart from train**: expect the training-split metrics to overstate "
               "performance there (new camera, light or preprocessing)") if flagged else "no clear shift"
    lines = [f"Target: {target_name} ({len(ta_idx)} images) against train ({len(tr_idx)}). A logistic regression on "
             f"image statistics (brightness, contrast, percentiles, edges, clipping, histogram), {folds}-fold "
             f"cross-validated: AUC {auc:.3f} (0.5: indistinguishable; flagged above {max_auc:g}): {verdict}."]
    if per_class:
        lines += ["", "Per class (train vs target images of that class):", ""]
        lines += table(["class", "train", "target", "AUC"], [[d["class"], d["train"], d["target"], d["auc"]]
                                                             for d in per_class])
    lines += ["", "Most out-of-domain target images: " + ", ".join(f"`{d['path']}` ({d['p_target']:.2f})"
                                                                   for d in far[:5])]
    grid = [[target.load(int(ta_idx[i])) for i in order[r:r + 8]] for r in range(0, len(order), 8)]
    captions = [[f"{p_target[i]:.2f}" for i in order[r:r + 8]] for r in range(0, len(order), 8)]
    figures = {"domain_outliers": image_grid(grid, captions, f"{target_name}: least like train (P(target))")} \
        if len(order) else {}
    return Section("domain", "Domain", flagged, data, lines, figures, {"quality/domain/auc": auc})


def _cap(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=limit, replace=False)) if n > limit else np.arange(n)


def read_target(folder: str, class_names: Sequence[str], channels: int) -> SampleSet:
    """Every image under ``folder``; labelled when it holds class folders named like the training classes."""
    from pathlib import Path

    from torchvision.datasets.folder import IMG_EXTENSIONS

    from trueval.core.errors import UserError
    from trueval.core.samples import resolve

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError("target folder does not exist", key="quality.target", path=str(root))
    files = sorted(str(p.resolve()) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
    if not files:
        raise UserError("no image files inside the target folder", key="quality.target", path=str(root))
    names = {str(n): i for i, n in enumerate(class_names)}
    targets = [names.get(Path(f).relative_to(root.resolve()).parts[0], -1) if len(Path(f).relative_to(
        root.resolve()).parts) > 1 else -1 for f in files]
    if min(targets) < 0:
        targets = [-1] * len(files)
    return SampleSet(split="target", targets=np.asarray(targets), paths=files, sources=[resolve(root)],
                     name=f"target:{root.name}", image_mode="L" if channels == 1 else "RGB")
