"""Box-aware transforms: boxes stay on the objects through letterbox, zoom, shift and flips."""

import numpy as np
import pytest
import torch

from trueval.data.detection.boxes import to_bounding_boxes
from trueval.data.detection.dataset import detection_collate
from trueval.data.detection.transforms import build_detection_transform, check_augment
from trueval.core.errors import UserError


def _scene(h=60, w=100):
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[:, 10:30, 20:50] = 255  # one white object at x 20..50, y 10..30
    target = {"boxes": to_bounding_boxes(np.array([[20.0, 10.0, 50.0, 30.0]]), h, w),
              "labels": torch.tensor([1]), "image_id": 0}
    return image, target


def _object_extent(image):
    ys, xs = torch.nonzero(image[0] > 0.5, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_letterbox_keeps_the_aspect_ratio_and_centres():
    image, target = _scene()
    out, t = build_detection_transform(50, "letterbox")(image, target)
    assert out.shape == (3, 50, 50) and out.dtype == torch.float32 and out.max() <= 1.0
    # 100x60 -> 50x30, padded by 10 rows above and below
    assert t["boxes"].tolist() == [[10.0, 15.0, 25.0, 25.0]]
    assert type(t["boxes"]) is torch.Tensor  # plain tensors for the detector


def test_stretch():
    image, target = _scene()
    out, t = build_detection_transform(50, "stretch")(image, target)
    assert out.shape == (3, 50, 50)
    np.testing.assert_allclose(t["boxes"].tolist(), [[10.0, 50 / 6, 25.0, 25.0]], rtol=1e-5)


def test_training_augmentation_moves_boxes_with_the_object():
    torch.manual_seed(0)
    transform = build_detection_transform(64, "letterbox", {"color": 0.0, "vflip": 0.5, "scale": [0.6, 1.4]},
                                          train=True)
    seen = set()
    for _ in range(30):
        out, t = transform(*_scene())
        assert out.shape == (3, 64, 64)
        if len(t["boxes"]) == 0:  # pushed off the canvas: the label goes with it
            assert len(t["labels"]) == 0
            continue
        box = t["boxes"][0].tolist()
        extent = _object_extent(out)
        np.testing.assert_allclose(box, extent, atol=1.5)
        seen.add(tuple(round(v) for v in box))
    assert len(seen) > 10  # the augmentation actually varies


def test_unknown_augment_key_is_named():
    with pytest.raises(UserError, match="data.augment.crop_padding"):
        check_augment({"crop_padding": 4})
    with pytest.raises(UserError, match="data.augment.scale"):
        check_augment({"scale": [1.5, 0.5]})


def test_collate_keeps_variable_targets():
    a = (torch.zeros(3, 8, 8), {"boxes": torch.zeros(2, 4), "labels": torch.zeros(2, dtype=torch.long)})
    b = (torch.zeros(3, 8, 8), {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)})
    images, targets = detection_collate([a, b])
    assert len(images) == 2 and [len(t["boxes"]) for t in targets] == [2, 0]
