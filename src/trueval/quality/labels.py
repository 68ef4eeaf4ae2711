"""Labels: likely label errors by confident learning, and the per-sample loss of every image.

A light baseline (``baseline``) gives out-of-sample class probabilities for every image of every
split; confident learning (``confident``) flags and ranks likely label errors; the per-sample loss
-log p(given label) is the same evidence as a histogram with a threshold, as a student would plot
it, and the images above the threshold go into a gallery with their given and predicted labels.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from trueval.core.samples import SampleSet
from trueval.quality.baseline import BaselineSettings, cross_fit, fit_predict
from trueval.quality.confident import class_thresholds, find_label_issues
from trueval.quality.features import pixels, thumbnails
from trueval.quality.figures import image_grid
from trueval.quality.section import Section, display_path, table

ISSUE_COLUMNS = ("split", "path", "given", "predicted", "score")


@dataclass
class LabelResult:
    section: Section
    issues: list[dict[str, Any]]  # flagged samples, most suspicious first (label_issues.csv)
    losses: list[dict[str, Any]]  # every sample (sample_losses.csv)
    flagged: dict[str, np.ndarray]  # split -> indices of flagged samples
    reasons: dict[tuple[str, int], str]  # (split, index) -> why it is flagged, for quality.fix


def out_of_sample_probs(sets: Mapping[str, SampleSet], num_classes: int, size: int, settings: BaselineSettings,
                        device: torch.device, seed: int) -> dict[str, np.ndarray]:
    """Cross-fitted probabilities for train; a model fitted on all of train for every other split."""
    channels = sets["train"].load(0).shape[2]
    x = {s: pixels(thumbnails(ss, size, channels)) for s, ss in sets.items()}
    y = sets["train"].targets
    probs = {"train": cross_fit(x["train"], y, num_classes, settings, device, seed)}
    others = [s for s in sets if s != "train"]
    if others:
        fitted = fit_predict(x["train"], y, [x[s] for s in others], num_classes, settings, device, seed + 1000)
        probs.update(dict(zip(others, fitted)))
    return probs


def labels_section(sets: Mapping[str, SampleSet], class_names: Sequence[str], root: str | None,
                   settings: BaselineSettings, size: int = 16, rank_by: str = "self_confidence",
                   loss_threshold: float | str = "auto", max_issue_fraction: float = 0.05, device: str = "auto",
                   seed: int = 0, shown: int = 32) -> LabelResult:
    from trueval.quality.baseline import pick_device

    k = len(class_names)
    dev = pick_device(device)
    started = time.perf_counter()
    probs = out_of_sample_probs(sets, k, size, settings, dev, seed)
    seconds = time.perf_counter() - started
    thresholds = class_thresholds(probs["train"], sets["train"].targets)
    threshold = math.log(k) if loss_threshold == "auto" else float(loss_threshold)
    issues, losses, flagged_idx, per_split, above, reasons = [], [], {}, {}, [], {}
    for split, ss in sets.items():
        p, y = probs[split], ss.targets
        found = find_label_issues(p, y, thresholds, rank_by)
        loss = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))
        flagged_idx[split] = np.flatnonzero(found.flagged)
        acc = float((p.argmax(axis=1) == y).mean()) if len(y) else float("nan")
        per_split[split] = {"images": len(ss), "flagged": int(found.flagged.sum()),
                            "disagreements": int((p.argmax(axis=1) != y).sum()),
                            "flagged_fraction": round(float(found.flagged.mean()), 6) if len(y) else 0.0,
                            "baseline_accuracy": round(acc, 4), "above_loss_threshold": int((loss > threshold).sum()),
                            "loss_mean": round(float(loss.mean()), 4) if len(y) else None}
        # label_issues.csv: the flagged samples and those the baseline merely disagrees with (lower
        # scores as a rule): with 10% flipped digits labels the flagged alone held 77% of the flips
        listed = np.flatnonzero(found.flagged | (p.argmax(axis=1) != y))
        for i in listed:
            issues.append({"split": split, "path": display_path(ss, int(i), split, root),
                           "given": str(class_names[y[i]]), "predicted": str(class_names[found.predicted[i]]),
                           "score": round(float(found.score[i]), 6)})
            if not found.flagged[i]:
                continue
            reasons[(split, int(i))] = (f"likely label error: given {class_names[y[i]]}, predicted "
                                        f"{class_names[found.predicted[i]]} (score {found.score[i]:.3f})")
        for i in range(len(y)):
            losses.append({"split": split, "path": display_path(ss, i, split, root), "given": str(class_names[y[i]]),
                           "predicted": str(class_names[int(p[i].argmax())]), "loss": round(float(loss[i]), 6)})
        above += [(float(loss[i]), split, int(i), int(p[i].argmax())) for i in np.flatnonzero(loss > threshold)]
    issues.sort(key=lambda r: -r["score"])  # stable: ties keep split and index order
    fraction = per_split["train"]["flagged_fraction"]
    flagged = fraction > max_issue_fraction
    data = {"baseline": {"model": f"MLP hidden={settings.hidden}" if settings.hidden > 0 else "softmax regression",
                         "input": f"{size}x{size} pixels", "folds": settings.folds, "epochs": settings.epochs,
                         "device": str(dev), "seconds": round(seconds, 3)},
            "rank_by": rank_by, "class_thresholds": {str(c): round(float(t), 4) for c, t in zip(class_names, thresholds)},
            "loss_threshold": threshold, "max_issue_fraction": float(max_issue_fraction), "splits": per_split,
            "top": issues[:20]}
    lines = [f"Baseline: {data['baseline']['model']} on {size}x{size} pixels; train probabilities out of sample by "
             f"{settings.folds}-fold cross-fitting, val/test from a model fitted on train ({seconds:.1f} s on {dev}). "
             "Confident learning gives each class a threshold (the mean probability of the class among images "
             "labelled with it) and flags an image when the most probable class among those reaching their "
             f"threshold is not its given label; ranked by {rank_by.replace('_', ' ')}.", ""]
    lines += table(["split", "images", "baseline acc", "flagged", "flagged share", "baseline disagrees",
                    f"loss > {threshold:.2f}"],
                   [[s, d["images"], d["baseline_accuracy"], d["flagged"], f"{100 * d['flagged_fraction']:.1f}%",
                     d["disagreements"], d["above_loss_threshold"]] for s, d in per_split.items()])
    lines += ["", f"Loss threshold {threshold:.3f}" + (" (ln K: the given label gets less probability than a uniform "
                                                         "guess)" if loss_threshold == "auto" else "") +
              "; the images above it are in figures/loss_gallery.png."]
    if issues:
        lines += ["", "Most suspicious (label_issues.csv lists the flagged images and those the baseline predicts "
                  "otherwise, most suspicious first):", ""]
        lines += table(list(ISSUE_COLUMNS), [[r["split"], r["path"], r["given"], r["predicted"], f"{r['score']:.4f}"]
                                             for r in issues[:10]])
    if flagged:
        lines += ["", f"**{100 * fraction:.1f}% of the training images look mislabelled** (flagged above "
                  f"{100 * max_issue_fraction:.0f}%): review label_issues.csv; `quality.fix=true` writes a manifest "
                  "that drops them (`data.exclude=<manifest>`), `loss.label_smoothing=0.1` softens the rest."]
    figures = {"loss_histogram": _histogram({s: -np.log(np.clip(probs[s][np.arange(len(ss)), ss.targets], 1e-12, 1))
                                             for s, ss in sets.items()}, threshold)}
    above.sort(key=lambda t: -t[0])
    if above:
        top = above[:shown]
        imgs = [sets[s].load(i) for _, s, i, _ in top]
        caps = [f"{s} {class_names[sets[s].targets[i]]}->{class_names[pr]}" for _, s, i, pr in top]
        figures["loss_gallery"] = image_grid([imgs[r:r + 8] for r in range(0, len(imgs), 8)],
                                             [caps[r:r + 8] for r in range(0, len(caps), 8)],
                                             f"loss above {threshold:.2f}: split given->predicted")
    scalars = {f"quality/labels/{s}_flagged_fraction": d["flagged_fraction"] for s, d in per_split.items()}
    scalars["quality/labels/seconds"] = seconds
    return LabelResult(Section("labels", "Labels", flagged, data, lines, figures, scalars), issues, losses,
                       flagged_idx, reasons)


def _histogram(losses: Mapping[str, np.ndarray], threshold: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    top = max([float(v.max()) for v in losses.values() if len(v)] + [threshold * 1.2])
    bins = np.linspace(0, top, 50)
    for split, values in losses.items():
        ax.hist(values, bins=bins, histtype="step", label=split, density=True)
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("per-sample loss  -log p(given label)")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    return fig
