"""The data report printed at setup: images and boxes per split and class, box counts and sizes.

It makes the class imbalance and the background images visible before any training, and the same
numbers go into the split manifest.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from trueval.data.detection.labels import ImageLabels

# COCO's size buckets (box area in pixels of the original image)
SMALL, MEDIUM = 32**2, 96**2


def split_statistics(items: Sequence[ImageLabels], sizes: Mapping[str, tuple[int, int]],
                     class_names: Sequence[str]) -> dict[str, Any]:
    """Counts of one split; ``sizes`` maps an image path to its (width, height)."""
    per_image = np.array([len(it.classes) for it in items], dtype=np.int64)
    classes = np.concatenate([it.classes for it in items]) if items else np.zeros(0, np.int64)
    wh = [it.boxes[:, 2:] * np.asarray(sizes[it.image], dtype=np.float64) for it in items if len(it.classes)]
    wh_px = np.concatenate(wh) if wh else np.zeros((0, 2))
    area = wh_px.prod(axis=1)
    per_class = {}
    for k, name in enumerate(class_names):
        mask = classes == k
        per_class[name] = {
            "boxes": int(mask.sum()),
            "images": int(sum(1 for it in items if (it.classes == k).any())),
            "median_w": float(np.median(wh_px[mask, 0])) if mask.any() else None,
            "median_h": float(np.median(wh_px[mask, 1])) if mask.any() else None,
        }
    return {
        "images": len(items),
        "background_images": int((per_image == 0).sum()),
        "images_without_label_file": int(sum(1 for it in items if it.label_file is None)),
        "boxes": int(per_image.sum()),
        "boxes_per_image": {
            "mean": float(per_image.mean()) if len(per_image) else 0.0,
            "median": float(np.median(per_image)) if len(per_image) else 0.0,
            "max": int(per_image.max()) if len(per_image) else 0,
        },
        "box_sizes": {"small": int((area < SMALL).sum()), "medium": int(((area >= SMALL) & (area < MEDIUM)).sum()),
                      "large": int((area >= MEDIUM).sum())},
        "per_class": per_class,
    }


def data_report(splits: Mapping[str, Sequence[ImageLabels]], sizes: Mapping[str, tuple[int, int]],
                class_names: Sequence[str]) -> dict[str, Any]:
    """Statistics of every split plus the class imbalance of the training split."""
    stats = {name: split_statistics(items, sizes, class_names) for name, items in splits.items()}
    train_counts = {c: v["boxes"] for c, v in stats.get("train", {}).get("per_class", {}).items()}
    present = [n for n in train_counts.values() if n > 0]
    return {
        "splits": stats,
        "imbalance": (max(present) / min(present)) if present else None,
        "classes_without_train_boxes": [c for c, n in train_counts.items() if n == 0],
    }


def print_report(report: Mapping[str, Any], class_names: Sequence[str], console: Console | None = None) -> None:
    """Two rich tables: per split, then per class (boxes / images / median size per split)."""
    console = console or Console()
    splits = report["splits"]
    t = Table(title="detection data", header_style="bold")
    for col in ("split", "images", "background", "boxes", "boxes/img mean, max", "S/M/L boxes"):
        t.add_column(col, justify="right" if col != "split" else "left")
    for name, s in splits.items():
        sizes = s["box_sizes"]
        t.add_row(name, str(s["images"]), str(s["background_images"]), str(s["boxes"]),
                  f"{s['boxes_per_image']['mean']:.1f}, {s['boxes_per_image']['max']}",
                  f"{sizes['small']}/{sizes['medium']}/{sizes['large']}")
    console.print(t)
    c = Table(title="boxes per class (images with the class; median w x h px)", header_style="bold")
    c.add_column("class")
    for name in splits:
        c.add_column(name, justify="right")
    for cls in class_names:
        cells = []
        for s in splits.values():
            pc = s["per_class"][cls]
            size = f"{pc['median_w']:.0f}x{pc['median_h']:.0f}" if pc["median_w"] is not None else "-"
            cells.append(f"{pc['boxes']} ({pc['images']}; {size})")
        c.add_row(cls, *cells)
    console.print(c)
    if report["imbalance"] is not None:
        console.print(f"class imbalance on train (most / fewest boxes): [bold]{report['imbalance']:.1f}x[/bold]")
    if report["classes_without_train_boxes"]:
        console.print(f"[red]classes with no training boxes: {', '.join(report['classes_without_train_boxes'])}[/red]")
