"""Label validation: every problem names its file and line; the fail / warn / skip policies."""

import numpy as np
import pytest

from trueval.data.detection.labels import (ImageLabels, apply_label_policy, find_orphan_labels,
                                           read_label_file, read_split_labels)
from trueval.data.detection.yolo_yaml import label_path_for
from trueval.core.errors import UserError

GOOD = "0 0.5 0.5 0.2 0.2"

# (row, problem kind) for each malformed case
CASES = [
    ("0 0.5 0.5 0.2", "columns"),
    ("0 0.5 0.5 0.2 0.2 0.3", "columns"),  # not a box, and not pairs of coordinates
    ("0 0.5 0.5 0.2 0.2 0.3 0.4 0.1", "columns"),
    ("0 0.1 0.1 0.5 0.1 1.3 0.6", "coordinates"),  # a polygon's corner outside the image
    ("0 0.1 0.2 0.5 0.2 0.3 0.2", "zero_area"),  # a polygon on one line
    ("0 0.5 abc 0.2 0.2", "number"),
    ("0 0.5 nan 0.2 0.2", "number"),
    ("3 0.5 0.5 0.2 0.2", "class"),
    ("-1 0.5 0.5 0.2 0.2", "class"),
    ("1.5 0.5 0.5 0.2 0.2", "class"),
    ("0 1.2 0.5 0.2 0.2", "coordinates"),
    ("0 0.5 0.5 0.2 -0.1", "coordinates"),
    ("0 0.95 0.5 0.2 0.2", "coordinates"),  # values in [0, 1] but the box pokes out of the image
    ("0 0.5 0.5 0.0 0.2", "zero_area"),
    (GOOD, "duplicate"),
]


@pytest.mark.parametrize("row,kind", CASES)
def test_each_malformed_row_is_reported_with_file_and_line(tmp_path, row, kind):
    path = tmp_path / "img.txt"
    path.write_text(f"{GOOD}\n\n1 0.3 0.3 0.1 0.1\n{row}\n")
    labels = read_label_file(str(path), num_classes=3)
    assert len(labels.problems) >= 1
    problem = labels.problems[0]
    assert problem.kind == kind
    assert problem.path == str(path) and problem.line == 4  # blank lines count
    assert str(problem).startswith(f"{path}:4: ")
    with pytest.raises(UserError) as err:
        apply_label_policy("train", [labels], [], "fail")
    assert f"{path}:4:" in str(err.value) and "data.labels.policy" in str(err.value)


def test_clean_file_reads_exactly(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("2 0.276562 0.828125 0.340625 0.343750\n1 0.618750 0.848958 0.156250 0.193750\n")
    labels = read_label_file(str(path), num_classes=3)
    assert labels.problems == []
    assert labels.classes.tolist() == [2, 1]
    np.testing.assert_array_equal(labels.boxes, [[0.276562, 0.828125, 0.340625, 0.34375],
                                                 [0.61875, 0.848958, 0.15625, 0.19375]])


def test_polygon_rows_are_read_as_the_box_around_them(tmp_path):
    """YOLO segmentation labels (and oriented boxes written as four corners) train a detector as
    their bounding boxes, as in Ultralytics; a file may mix them with box rows."""
    path = tmp_path / "a.txt"
    path.write_text("1 0.1 0.2 0.5 0.25 0.3 0.6\n"
                    "0 0.2 0.2 0.4 0.2 0.4 0.5 0.2 0.5\n"
                    "2 0.5 0.5 0.2 0.2\n")
    labels = read_label_file(str(path), num_classes=3)
    assert labels.problems == []
    assert labels.classes.tolist() == [1, 0, 2]
    np.testing.assert_allclose(labels.boxes, [[0.3, 0.4, 0.4, 0.4], [0.3, 0.35, 0.2, 0.3], [0.5, 0.5, 0.2, 0.2]])


def test_polygon_corners_get_the_same_rounding_slack_as_box_corners(tmp_path):
    """A box whose corner a converter rounded to 1.0000005 is read (and clipped); the same box written
    as a polygon was refused as "outside [0, 1]", which stopped a YOLO audit with exit 2 (seen on BCCD
    boxes converted to segment rows). Ultralytics reads both."""
    path = tmp_path / "a.txt"
    path.write_text("0 0.7015625 0.8333335 0.8374995 0.8333335 0.8374995 1.0000005 0.7015625 1.0000005\n"
                    "1 -0.0004 0.1 0.2 0.1 0.2 0.3 -0.0004 0.3\n"
                    "2 0.769531 0.916667 0.136875 0.166667\n")
    labels = read_label_file(str(path), num_classes=3)
    assert labels.problems == []
    assert labels.classes.tolist() == [0, 1, 2]
    centre, size = labels.boxes[:, :2], labels.boxes[:, 2:]
    assert (centre - size / 2 >= 0).all() and (centre + size / 2 <= 1).all()  # clipped into the image
    # beyond the slack a polygon corner is still a problem (CASES above)


def test_warn_repairs_and_skip_drops(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{GOOD}\n{GOOD}\n0 0.95 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n")
    good = tmp_path / "good.txt"
    good.write_text(f"{GOOD}\n")
    items = [read_label_file(str(bad), 3, image="bad.png"), read_label_file(str(good), 3, image="good.png")]
    kept, problems = apply_label_policy("train", items, [], "warn")
    assert [p.kind for p in problems] == ["duplicate", "coordinates", "class"]
    assert len(kept) == 2
    # the duplicate and the bad class are dropped, the box poking out is clipped to the image
    np.testing.assert_allclose(kept[0].boxes, [[0.5, 0.5, 0.2, 0.2], [0.925, 0.5, 0.15, 0.2]])
    kept, problems = apply_label_policy("train", items, [], "skip")
    assert [k.image for k in kept] == ["good.png"] and len(problems) == 3


def test_background_images_and_orphan_labels(tmp_path):
    images = tmp_path / "images" / "train"
    labels = tmp_path / "labels" / "train"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for name in ("a", "b", "c"):
        (images / f"{name}.png").write_bytes(b"")
    (labels / "a.txt").write_text(f"{GOOD}\n")
    (labels / "b.txt").write_text("")  # empty: a background image
    (labels / "orphan.txt").write_text(f"{GOOD}\n")
    (labels / "classes.txt").write_text("x\n")  # labelImg's class list is not an orphan
    paths = sorted(str(p) for p in images.iterdir())
    items = read_split_labels(paths, 3, label_path_for)
    assert [it.is_background for it in items] == [False, True, True]
    assert [it.label_file is None for it in items] == [False, False, True]
    orphans = find_orphan_labels([str(images)], [it.label_file for it in items if it.label_file], label_path_for)
    assert [(p.path, p.kind, p.line) for p in orphans] == [(str(labels / "orphan.txt"), "orphan", None)]
    with pytest.raises(UserError, match="orphan.txt: label file without an image"):
        apply_label_policy("train", items, orphans, "fail")
    kept, problems = apply_label_policy("train", items, orphans, "skip")
    assert len(kept) == 3 and len(problems) == 1  # an orphan drops no image


def test_unknown_policy_is_named():
    with pytest.raises(UserError, match="data.labels.policy"):
        apply_label_policy("train", [ImageLabels("x.png", None)], [], "ignore")
