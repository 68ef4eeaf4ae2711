"""torch Datasets over a SampleSet: decoded arrays in memory, or image files decoded per item."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from trueval.core.samples import SampleSet, load_image


class SampleDataset(Dataset):
    """(image, target) pairs; images go through ``transform`` as uint8 CHW tensors."""

    def __init__(self, samples: SampleSet, transform: Callable | None = None) -> None:
        self.samples = samples
        self.transform = transform
        self.targets = torch.as_tensor(samples.targets, dtype=torch.long)
        self._images = None
        if samples.images is not None:
            # one CHW uint8 tensor for the whole split: indexing is a view, no copy per item
            self._images = torch.from_numpy(np.ascontiguousarray(samples.images)).permute(0, 3, 1, 2)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._images is not None:
            img = self._images[i]
        else:
            assert self.samples.paths is not None
            img = torch.from_numpy(load_image(self.samples.paths[i], self.samples.image_mode)).permute(2, 0, 1)
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[i]
