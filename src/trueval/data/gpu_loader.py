"""A data loader for datasets that fit in GPU memory.

For small images (digits, MNIST, CIFAR, SVHN, small image folders) a ResNet step on a modern GPU
takes less time than worker processes need to decode, augment, collate and copy the batch, so the
whole split is kept on the device as uint8 and each batch is produced there: a seeded permutation,
a gather, normalisation and the batched augmentations of ``gpu_augment``. No worker processes, no
pinned-memory copies, no host synchronisation.

Lightning treats any iterable with ``__len__`` as a dataloader; batches are already on the device,
so ``transfer_batch_to_device`` does nothing. Lightning calls ``loader.sampler.set_epoch(epoch)``
before every epoch, which makes each epoch's order and augmentation different while a run (and a
resumed run) stays reproducible.

``steps_per_call`` > 1 hands the training step ``BatchGroup``s of that many batches (Keras calls this
``steps_per_execution``): the LightningModule then takes one optimizer step per batch of the group,
so the framework's per-call work (hooks, closures, logging; about as long as a whole step of a small
MLP on a fast GPU) is paid once per group instead of once per batch.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from trueval.data.gpu_augment import AugmentSpec, augment_batch, normalization_constants, normalize_with, parse_spec
from trueval.core.batches import BatchGroup
from trueval.core.errors import UserError
from trueval.core.seeds import epoch_seed  # noqa: F401 (also imported from here)

# share of the currently free GPU memory that a dataset may take and still count as "fits":
# the rest is for the model, activations, optimizer state and the allocator's slack
DEFAULT_FIT_FRACTION = 0.25


def fits_on_gpu(nbytes: int, device: torch.device | str | int | None = None, fraction: float = DEFAULT_FIT_FRACTION) -> bool:
    """Whether ``nbytes`` of data may live on ``device`` (data.loader=auto). False off CUDA."""
    if not torch.cuda.is_available():
        return False
    dev = torch.device(device) if device is not None else torch.device("cuda")
    if dev.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(dev)
    return nbytes <= fraction * free


def images_to_tensor(images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 N,H,W,C (as ``SampleSet.images`` holds them) to a contiguous uint8 N,C,H,W tensor on ``device``."""
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8 or t.ndim != 4:
        raise ValueError(f"expected uint8 N,H,W,C images, got {t.dtype} with shape {tuple(t.shape)}")
    # copy in the source layout, then transpose on the device (fast there, slow on one CPU core)
    return t.to(device).permute(0, 3, 1, 2).contiguous()


class EpochSampler:
    """Holds the epoch number; Lightning finds it as ``loader.sampler`` and calls ``set_epoch``.

    Without ``set_epoch`` calls (a plain loop) every pass over the loader moves to the next epoch.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def generator(self, device: torch.device) -> torch.Generator:
        """A fresh generator on ``device`` for the current epoch."""
        return torch.Generator(device=device).manual_seed(epoch_seed(self.seed, self.epoch))


class EpochShuffleSampler(EpochSampler, torch.utils.data.RandomSampler):
    """The same per-epoch order for a torch DataLoader: epoch k's permutation depends on (seed, k) only.

    torch's RandomSampler draws each epoch from one generator that runs on from the start of the
    process, so a resumed run (a new process) would see other orders than an unbroken one. A
    RandomSampler still, so Lightning swaps in its seeded DistributedSampler under DDP.
    """

    def __init__(self, data_source: Sequence[Any], seed: int) -> None:
        torch.utils.data.RandomSampler.__init__(self, data_source)
        EpochSampler.__init__(self, seed)

    def __iter__(self) -> Iterator[int]:
        # RandomSampler's own ``generator`` attribute (None) shadows EpochSampler.generator
        generator = EpochSampler.generator(self, torch.device("cpu"))
        self.epoch += 1  # as GpuLoader: the next pass is the next epoch unless set_epoch comes first
        return iter(torch.randperm(len(self.data_source), generator=generator).tolist())


class GpuLoader:
    """Iterate (normalised float images, int64 targets) batches from device-resident tensors.

    ``images``: uint8 N,C,H,W on the device that training uses (CPU works too); ``targets``: N
    integer labels on the same device. ``augment``: a ``data.augment.<stage>`` mapping or None.
    ``mean``/``std``: per-channel, 0-1 scale. ``channels_last``: return batches in that memory
    format (convolutions under bf16 on tensor cores want it).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor | np.ndarray | Sequence[int],
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        augment: Mapping[str, Any] | AugmentSpec | None = None,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
        seed: int = 0,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
        augment_key: str = "data.augment",
        steps_per_call: int = 1,
        weights: torch.Tensor | None = None,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 N,C,H,W tensor (see images_to_tensor)")
        targets = torch.as_tensor(targets, dtype=torch.int64, device=images.device)
        if targets.ndim != 1 or len(targets) != len(images):
            raise ValueError(f"{len(images)} images but targets of shape {tuple(targets.shape)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise UserError(f"batch size must be a positive integer, got {batch_size!r}", key="data.batch_size")
        if drop_last and len(images) < batch_size:
            raise UserError(
                f"batch size {batch_size} is larger than the {len(images)} samples of this split and "
                "drop_last is on, so an epoch would have no batch",
                key="data.batch_size",
            )
        if isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int) or steps_per_call < 1:
            raise UserError(f"steps_per_call must be a positive integer, got {steps_per_call!r}",
                            key="data.steps_per_call")
        self.steps_per_call = steps_per_call
        # data.sampler: per-sample draw weights; each epoch draws N samples with replacement
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=images.device)
        self.images = images
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.augment = parse_spec(augment, augment_key)
        self.channels_last = bool(channels_last)
        self.dtype = dtype
        self.sampler = EpochSampler(seed)
        # Lightning inspects both attributes of anything that has a sampler (DataLoader-like)
        self.batch_sampler = None
        self._scale, self._shift = normalization_constants(mean, std, images.shape[1], images.device)
        # hflip: alternate: which images are mirrored in even epochs (the others in odd ones),
        # fixed for the run by the loader's seed
        self._flip_even: torch.Tensor | None = None
        if self.augment.hflip == "alternate":
            g = torch.Generator(device=images.device).manual_seed(epoch_seed(self.sampler.seed, 0, stream=1))
            self._flip_even = torch.rand(len(images), generator=g, device=images.device) < 0.5

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def num_samples(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    @property
    def num_batches(self) -> int:
        """Batches (optimizer steps, when training) per pass."""
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        """Items per pass: batches, or batch groups when ``steps_per_call`` > 1."""
        return math.ceil(self.num_batches / self.steps_per_call)

    def __iter__(self) -> Iterator[Any]:
        batches = self._batches()
        if self.steps_per_call == 1:
            yield from batches
            return
        group: list[tuple[torch.Tensor, torch.Tensor]] = []
        for batch in batches:
            group.append(batch)
            if len(group) == self.steps_per_call:
                yield BatchGroup(group)
                group = []
        if group:
            yield BatchGroup(group)

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = self.sampler.generator(self.device)
        flips = None if self._flip_even is None else self._flip_even ^ bool(self.sampler.epoch % 2)
        # the next pass is the next epoch unless someone calls set_epoch first
        self.sampler.epoch += 1
        order = (
            torch.randperm(self.num_samples, generator=generator, device=self.device) if self.shuffle else None
        )
        if self.weights is not None and self.shuffle:
            order = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)
        for b in range(self.num_batches):
            start, stop = b * self.batch_size, min((b + 1) * self.batch_size, self.num_samples)
            if order is None:
                x, y = self.images[start:stop], self.targets[start:stop]
                flip = None if flips is None else flips[start:stop]
            else:
                index = order[start:stop]
                x, y = self.images.index_select(0, index), self.targets.index_select(0, index)
                flip = None if flips is None else flips.index_select(0, index)
            yield self._prepare(x, generator, flip), y

    def _prepare(self, x: torch.Tensor, generator: torch.Generator, flip: torch.Tensor | None = None) -> torch.Tensor:
        x = normalize_with(x, self._scale, self._shift, self.dtype)
        if not self.augment.is_identity:
            x = augment_batch(x, self.augment, generator, flip=flip)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
