"""Reading and validating YOLO label files before anything trains.

Each row is ``class cx cy w h`` (normalised), or ``class x1 y1 x2 y2 x3 y3 ...``: a polygon (YOLO
segmentation labels, oriented boxes as four corners), read as the box around it, as Ultralytics
does when it trains a detector on segmentation labels. Every problem is reported with its file and line:
wrong column count, a value that is not a number, a class id out of range, coordinates outside
[0, 1], a zero-area box, a duplicate row, and label files without an image. Images without a label
file (or with an empty one) are background images: legal, but counted and reported.

``data.labels.policy`` decides what a problem does:
- ``fail``: refuse to train and list the problems;
- ``warn``: report each problem, repair what can be repaired (clip boxes into the image, drop
  duplicate rows) and drop the rows that cannot be used;
- ``skip``: report the problems and leave out every image whose label file has one.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from trueval.core.errors import UserError
from trueval.core.files import hidden_under

log = logging.getLogger(__name__)

POLICIES = ("fail", "warn", "skip")
# how far a box corner may poke outside [0, 1] before it is a problem (rounding in converters)
CORNER_TOLERANCE = 1e-3


@dataclass(frozen=True)
class LabelProblem:
    """One bad row (``line`` set) or one bad file (``line`` None)."""

    path: str
    line: int | None
    kind: str  # columns | number | class | coordinates | zero_area | duplicate | orphan
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass
class ImageLabels:
    """The boxes of one image: class ids and normalised ``cx cy w h`` rows, as read and repaired."""

    image: str
    label_file: str | None  # None when the image has no label file
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float64))
    problems: list[LabelProblem] = field(default_factory=list)

    @property
    def is_background(self) -> bool:
        return len(self.classes) == 0


def read_label_file(path: str, num_classes: int, image: str = "") -> ImageLabels:
    """Parse one label file; bad rows become ``problems`` and are left out, corners are clipped."""
    classes: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    problems: list[LabelProblem] = []
    first_seen: dict[tuple[float, ...], int] = {}
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return ImageLabels(image, path, problems=[LabelProblem(path, None, "unreadable", f"cannot read: {exc}")])
    for lineno, raw in enumerate(text.splitlines(), start=1):
        cols = raw.split()
        if not cols:
            continue

        def bad(kind: str, message: str) -> None:
            problems.append(LabelProblem(path, lineno, kind, message))

        polygon = len(cols) >= 7
        if len(cols) != 5 and not (polygon and len(cols) % 2 == 1):
            bad("columns", f"expected 5 columns `class cx cy w h` or a polygon `class x1 y1 x2 y2 x3 y3 ...` "
                           f"(pairs of coordinates), got {len(cols)}")
            continue
        try:
            values = [float(c) for c in cols]
        except ValueError:
            bad("number", f"not a number in {raw.strip()!r}")
            continue
        if not all(math.isfinite(v) for v in values):
            bad("number", f"non-finite value in {raw.strip()!r}")
            continue
        cls, cx, cy, w, h = _polygon_box(values) if polygon else values
        if cls != int(cls) or not 0 <= cls < num_classes:
            bad("class", f"class id {cols[0]} out of range 0..{num_classes - 1}")
            continue
        # a polygon's corners get the boxes' rounding slack (a box written as four corners is the same box)
        if polygon and not all(-CORNER_TOLERANCE <= v <= 1.0 + CORNER_TOLERANCE for v in values[1:]):
            bad("coordinates", f"polygon corner outside [0, 1]: {' '.join(cols[1:])}")
        elif not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
            bad("coordinates", f"coordinates outside [0, 1]: {' '.join(cols[1:])}")
            # repairable: clip the box into the image below
        elif min(cx - w / 2, cy - h / 2) < -CORNER_TOLERANCE or max(cx + w / 2, cy + h / 2) > 1 + CORNER_TOLERANCE:
            bad("coordinates", f"box extends outside the image: {' '.join(cols[1:])}")
        if w <= 0 or h <= 0:
            bad("zero_area", "zero-area polygon (its corners on one line)" if polygon
                else f"zero-area box (w={cols[3]}, h={cols[4]})")
            continue
        key = (cls, cx, cy, w, h)
        if key in first_seen:
            bad("duplicate", f"duplicate of line {first_seen[key]}")
            continue
        first_seen[key] = lineno
        clipped = _clip_cxcywh(cx, cy, w, h)
        if clipped is None:
            bad("zero_area", "box lies outside the image")
            continue
        classes.append(int(cls))
        boxes.append(clipped)
    return ImageLabels(
        image=image,
        label_file=path,
        classes=np.asarray(classes, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        problems=problems,
    )


def _polygon_box(values: list[float]) -> tuple[float, float, float, float, float]:
    """``class cx cy w h`` of the box around a polygon row ``class x1 y1 x2 y2 ...``."""
    xs, ys = values[1::2], values[2::2]
    x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
    return values[0], (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _clip_cxcywh(cx: float, cy: float, w: float, h: float) -> tuple[float, float, float, float] | None:
    """The box clipped to [0, 1] (unchanged when inside, so values round-trip); None when nothing is left."""
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    if x1 >= 0 and y1 >= 0 and x2 <= 1 and y2 <= 1:
        return (cx, cy, w, h)
    x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, 1.0), min(y2, 1.0)
    if x2 <= x1 or y2 <= y1:
        return None
    return ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)


def read_split_labels(images: Sequence[str], num_classes: int, label_path_for) -> list[ImageLabels]:
    """Labels of every image of a split (a missing label file gives a background image)."""
    out = []
    for image in images:
        lp = label_path_for(image)
        if os.path.isfile(lp):
            out.append(read_label_file(lp, num_classes, image=image))
        else:
            out.append(ImageLabels(image=image, label_file=None))
    return out


def find_orphan_labels(image_folders: Iterable[str], claimed: Iterable[str], label_path_for) -> list[LabelProblem]:
    """Label files in the label folders of ``image_folders`` that no image of the split claimed.

    Only folder sources are checked: a list file may name a subset of a folder on purpose.
    """
    expected = {str(Path(p).resolve()) for p in claimed}
    problems = []
    for folder in image_folders:
        # the label folder of an image folder: the same mapping as for a file inside it
        label_dir = Path(label_path_for(os.path.join(folder, "x.jpg"))).parent
        if not label_dir.is_dir() or label_dir.resolve() == Path(folder).resolve():
            continue
        for txt in sorted(label_dir.rglob("*.txt")):
            if txt.name == "classes.txt" or hidden_under(txt, label_dir):  # labelImg writes classes.txt here
                continue
            if str(txt.resolve()) not in expected:
                problems.append(LabelProblem(str(txt), None, "orphan", "label file without an image"))
    return problems


def apply_label_policy(
    split: str, labels: list[ImageLabels], orphans: list[LabelProblem], policy: str
) -> tuple[list[ImageLabels], list[LabelProblem]]:
    """Keep, repair or refuse according to ``policy``; returns the images kept and all problems."""
    if policy not in POLICIES:
        raise UserError(f"unknown label policy {policy!r}; choose one of {', '.join(POLICIES)}",
                        key="data.labels.policy")
    problems = [p for item in labels for p in item.problems] + list(orphans)
    if not problems:
        return labels, []
    listing = "\n".join(f"  {p}" for p in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    if policy == "fail":
        raise UserError(
            f"{len(problems)} label problem(s) in the {split} split:\n{listing}{more}\n"
            "Fix the files, or set data.labels.policy=warn (repair and drop bad rows) or "
            "data.labels.policy=skip (leave those images out).",
            key="data.labels.policy",
        )
    if policy == "warn":
        log.warning("%d label problem(s) in the %s split (bad rows dropped, boxes clipped):\n%s%s",
                    len(problems), split, listing, more)
        return labels, problems
    kept = [item for item in labels if not item.problems]
    log.warning("%d label problem(s) in the %s split; %d image(s) left out:\n%s%s",
                len(problems), split, len(labels) - len(kept), listing, more)
    return kept, problems
