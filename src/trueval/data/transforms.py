"""CPU transforms (torchvision v2) built from the augmentation spec in `data.augment`.

The same spec (crop_padding, hflip, rot90, cutout per split) drives the GPU-resident path in
``gpu_augment``; here it becomes a v2 pipeline that runs per sample in DataLoader workers.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torchvision.transforms import v2

from trueval.data.augment_options import AUGMENT_KEYS, check_spec, is_identity  # noqa: F401 (re-exported)


def build_transform(spec: Mapping[str, Any], mean: Sequence[float], std: Sequence[float],
                    image_size: int | None = None, split: str = "train") -> v2.Compose:
    """uint8 CHW tensor (or PIL image) -> normalised float CHW tensor."""
    if spec["hflip"] == "alternate":
        # a per-sample transform sees neither the epoch nor, in a worker, the run's other samples
        from trueval.core.errors import UserError

        raise UserError("hflip: alternate (each image mirrored in every other epoch) needs the GPU-resident "
                        "loader, data.loader=gpu (data held in memory); the DataLoader path mirrors at random: "
                        "use hflip: true there", key=f"data.augment.{split}.hflip")
    ops: list[Any] = [v2.ToImage()]
    if image_size:
        ops.append(v2.Resize((image_size, image_size), antialias=True))
    if spec["crop_padding"]:
        ops.append(_PadCrop(spec["crop_padding"]))
    if spec["hflip"]:
        ops.append(v2.RandomHorizontalFlip())
    if spec["rot90"]:
        ops.append(v2.RandomChoice([v2.RandomRotation((a, a)) for a in (0, 90, 180, 270)]))
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if spec["cutout"]:
        ops.append(_Cutout(spec["cutout"]))
    ops.append(v2.Normalize(mean=list(mean), std=list(std)))
    return v2.Compose(ops)


class _PadCrop(torch.nn.Module):
    """Random crop of the input's own size after reflect padding (v2.RandomCrop needs the size up front)."""

    def __init__(self, padding: int) -> None:
        super().__init__()
        self.padding = padding

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        return v2.RandomCrop((h, w), padding=self.padding, padding_mode="reflect")(img)


class _Cutout(torch.nn.Module):
    """A zeroed square of fixed side at a random place (v2.RandomErasing samples the side; cutout fixes it)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(0, cy - self.size // 2), min(h, cy + (self.size + 1) // 2)
        x0, x1 = max(0, cx - self.size // 2), min(w, cx + (self.size + 1) // 2)
        img = img.clone()
        img[..., y0:y1, x0:x1] = 0
        return img
