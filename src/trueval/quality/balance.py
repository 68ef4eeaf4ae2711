"""Class balance: images (and boxes, for detection) per class and split, and the classes too rare to learn.

A class is underrepresented when the training split has fewer than ``min_count`` of it, or fewer
than 1/``max_ratio`` of the largest class. The advice names the template's own remedies.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from trueval.quality.section import Section, table

# (override, what it does); the last has no override
REMEDIES = (("loss.class_weights=balanced", "inverse-frequency weights in the loss"),
            ("data.sampler=balanced", "every class drawn equally often per epoch"),
            ("loss.name=focal", "focal loss (loss.gamma, default 2): easy, mostly majority-class examples weigh less"),
            ("", "more augmentation or more data for the rare classes"))


def class_counts(targets: Mapping[str, np.ndarray], num_classes: int) -> dict[str, list[int]]:
    """Images per class per split."""
    return {s: [int(c) for c in np.bincount(np.asarray(t, dtype=np.int64), minlength=num_classes)]
            for s, t in targets.items()}


def balance_summary(counts: Mapping[str, Sequence[int]], class_names: Sequence[str], min_count: int = 20,
                    max_ratio: float = 10.0) -> dict[str, Any]:
    """Imbalance ratio of train (largest / smallest class; None when a class is missing) and rare classes."""
    train = np.asarray(counts.get("train", next(iter(counts.values()))), dtype=np.int64)
    largest = int(train.max()) if len(train) else 0
    smallest = int(train.min()) if len(train) else 0
    ratio = float(largest / smallest) if smallest > 0 else None
    rare = [class_names[c] for c in range(len(train))
            if train[c] < min_count or train[c] * max_ratio < largest]
    return {"counts": {s: list(map(int, v)) for s, v in counts.items()}, "imbalance_ratio": ratio,
            "underrepresented": rare, "min_count": int(min_count), "max_ratio": float(max_ratio)}


def balance_section(counts: Mapping[str, Sequence[int]], class_names: Sequence[str], min_count: int,
                    max_ratio: float, boxes: Mapping[str, Sequence[int]] | None = None,
                    detection: bool = False) -> Section:
    summary = balance_summary(boxes or counts, class_names, min_count, max_ratio)
    summary["images"] = {s: list(map(int, v)) for s, v in counts.items()}
    if boxes is not None:
        summary["boxes"] = {s: list(map(int, v)) for s, v in boxes.items()}
    unit = "boxes" if boxes is not None else "images"
    ratio = summary["imbalance_ratio"]
    lines = [f"Training-split imbalance ratio (largest / smallest class, {unit}): "
             f"{'a class has none' if ratio is None else f'{ratio:.1f}'}."]
    splits = list(counts)
    header = ["class"] + [f"{s} images" for s in splits] + ([f"{s} boxes" for s in splits] if boxes else [])
    rows = [[name] + [counts[s][c] for s in splits] + ([boxes[s][c] for s in splits] if boxes else [])
            for c, name in enumerate(class_names)]
    lines += [""] + table(header, rows)
    rare = summary["underrepresented"]
    if rare:
        lines += ["", f"**Underrepresented in train** (fewer than {min_count} {unit}, or under 1/{max_ratio:g} of the "
                  f"largest class): {', '.join(map(str, rare))}.", "", "Remedies this template has:"]
        remedies = REMEDIES if not detection else REMEDIES[3:]
        lines += [f"- `{cmd}`: {what}" if cmd else f"- {what}" for cmd, what in remedies]
    else:
        lines += ["", "No class is underrepresented."]
    return Section("balance", "Balance", bool(rare), summary, lines, {"class_counts": _bar_chart(counts, class_names,
                                                                                                 boxes)},
                   {"quality/balance/imbalance_ratio": ratio if ratio is not None else float("inf"),
                    "quality/balance/underrepresented": float(len(rare))})


def _bar_chart(counts: Mapping[str, Sequence[int]], class_names: Sequence[str],
               boxes: Mapping[str, Sequence[int]] | None) -> Any:
    from matplotlib.figure import Figure

    data = boxes or counts
    k = len(class_names)
    fig = Figure(figsize=(max(5.0, 0.35 * k + 2), 3.5), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(data))
    x = np.arange(k)
    for i, (split, values) in enumerate(data.items()):
        ax.bar(x + i * width, values, width, label=split)
    ax.set_xticks(x + width * (len(data) - 1) / 2, [str(c) for c in class_names], rotation=90 if k > 12 else 0)
    ax.set_ylabel("boxes" if boxes else "images")
    ax.set_title("class balance per split")
    ax.legend()
    fig.tight_layout()
    return fig
