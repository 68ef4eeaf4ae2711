"""YOLO-normalised <-> absolute pixel boxes."""

import numpy as np
import torch
from torchvision.transforms import v2

from trueval.data.detection.boxes import to_bounding_boxes, xyxy_to_yolo, yolo_to_xyxy


def test_pixel_boxes_round_trip_exactly():
    rng = np.random.default_rng(0)
    w, h = 640, 480
    x1 = rng.integers(0, w - 50, 200)
    y1 = rng.integers(0, h - 50, 200)
    xyxy = np.stack([x1, y1, x1 + rng.integers(1, 50, 200), y1 + rng.integers(1, 50, 200)], 1).astype(np.float64)
    yolo = xyxy_to_yolo(xyxy, w, h)
    assert yolo.min() >= 0 and yolo.max() <= 1
    back = yolo_to_xyxy(yolo, w, h)
    # float64 arithmetic: integer pixel corners come back to within rounding, and round exactly
    np.testing.assert_allclose(back, xyxy, rtol=0, atol=1e-9)
    assert np.array_equal(np.rint(back), xyxy)


def test_yolo_rows_round_trip_exactly():
    yolo = np.array([[0.5, 0.5, 1.0, 1.0], [0.276562, 0.828125, 0.340625, 0.34375], [0.1, 0.2, 0.05, 0.1]])
    back = xyxy_to_yolo(yolo_to_xyxy(yolo, 640, 480), 640, 480)
    np.testing.assert_allclose(back, yolo, rtol=0, atol=1e-12)
    # the six decimals a YOLO file carries survive the trip
    assert np.array_equal(np.round(back, 6), np.round(yolo, 6))


def test_known_values():
    # a 100x50 box centred at (320, 240) in a 640x480 image
    np.testing.assert_allclose(yolo_to_xyxy([[0.5, 0.5, 100 / 640, 50 / 480]], 640, 480), [[270, 215, 370, 265]])
    np.testing.assert_allclose(xyxy_to_yolo([[0, 0, 640, 480]], 640, 480), [[0.5, 0.5, 1, 1]])


def test_bounding_boxes_follow_a_flip():
    boxes = to_bounding_boxes(np.array([[10.0, 20.0, 30.0, 60.0]]), height=100, width=200)
    image = torch.zeros(3, 100, 200, dtype=torch.uint8)
    _, flipped = v2.RandomHorizontalFlip(p=1.0)(image, boxes)
    assert flipped.tolist() == [[170.0, 20.0, 190.0, 60.0]]
