"""A torch Dataset of detection samples, and the collate for variable numbers of boxes."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.io import ImageReadMode, decode_image

from trueval.data.detection.boxes import to_bounding_boxes, yolo_to_xyxy
from trueval.data.detection.labels import ImageLabels
from trueval.core.samples import load_image


class DetectionDataset(Dataset):
    """(image, target) pairs; target = {"boxes": N x 4 xyxy pixels, "labels": class ids 0..K-1, "image_id"}.

    Class ids are the dataset's (0-based); a detector that reserves 0 for background shifts them
    itself, so the data never depends on the architecture.
    """

    def __init__(self, items: Sequence[ImageLabels], transform: Callable | None = None) -> None:
        self.items = list(items)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, Any]]:
        item = self.items[i]
        image = tv_tensors.Image(read_rgb(item.image))
        height, width = image.shape[-2:]
        target = {
            "boxes": to_bounding_boxes(yolo_to_xyxy(item.boxes, width, height), height, width),
            "labels": torch.as_tensor(item.classes, dtype=torch.int64),
            "image_id": i,
        }
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


def read_rgb(path: str) -> torch.Tensor:
    """uint8 CHW RGB, upright (EXIF orientation applied, as Ultralytics reads the images its labels
    describe); torchvision's decoder (libjpeg-turbo, no PIL round trip) with PIL for other formats."""
    if path.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
        try:
            return decode_image(path, mode=ImageReadMode.RGB, apply_exif_orientation=True)
        except (RuntimeError, ValueError):
            pass  # let PIL try, and name the file if it cannot either
    return torch.from_numpy(np.array(load_image(path, "RGB"))).permute(2, 0, 1).contiguous()


def detection_collate(batch: Sequence[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Lists instead of stacked tensors: images may differ in size and targets in box count."""
    images, targets = zip(*batch) if batch else ((), ())
    return list(images), list(targets)
