"""The GPU-resident loader, run on CPU tensors: batching, seeded shuffling per epoch, normalisation,
augmentation, and that Lightning can train from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trueval.data.gpu_loader import GpuLoader, epoch_seed, fits_on_gpu, images_to_tensor
from trueval.core.errors import UserError


def dataset(n: int = 50, c: int = 3, hw: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    # image i is filled with value i, so a batch tells which samples it holds
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, c, hw, hw).contiguous()
    return images, torch.arange(n)


def epoch_targets(loader: GpuLoader) -> list[int]:
    return [int(t) for _, y in loader for t in y]


def test_len_and_batch_sizes_with_and_without_drop_last() -> None:
    images, targets = dataset(50)
    keep = GpuLoader(images, targets, batch_size=16)
    drop = GpuLoader(images, targets, batch_size=16, drop_last=True)
    assert len(keep) == 4 and [len(y) for _, y in keep] == [16, 16, 16, 2]
    assert len(drop) == 3 and [len(y) for _, y in drop] == [16, 16, 16]


def test_unshuffled_loader_keeps_order_and_pairs_images_with_targets() -> None:
    images, targets = dataset(20)
    loader = GpuLoader(images, targets, batch_size=8, mean=(0.0,), std=(1.0 / 255,))
    assert epoch_targets(loader) == list(range(20))
    for x, y in loader:
        # mean 0, std 1/255 undoes the 0-1 scaling: pixel value == sample index == target
        assert torch.equal(x[:, 0, 0, 0].round().long(), y)


def test_shuffle_is_a_permutation_that_changes_per_epoch_and_replays_with_the_seed() -> None:
    images, targets = dataset(50)
    a = GpuLoader(images, targets, batch_size=16, shuffle=True, seed=3)
    e0, e1 = epoch_targets(a), epoch_targets(a)
    assert sorted(e0) == list(range(50)) and sorted(e1) == list(range(50))
    assert e0 != list(range(50)) and e0 != e1
    b = GpuLoader(images, targets, batch_size=16, shuffle=True, seed=3)
    assert epoch_targets(b) == e0  # same seed, same first epoch
    b.set_epoch(1)
    assert epoch_targets(b) == e1  # set_epoch replays any epoch (resume)
    c = GpuLoader(images, targets, batch_size=16, shuffle=True, seed=4)
    assert epoch_targets(c) != e0


def test_lightning_sets_the_epoch_through_the_sampler() -> None:
    from lightning_fabric.utilities.data import _set_sampler_epoch

    images, targets = dataset(30)
    loader = GpuLoader(images, targets, batch_size=10, shuffle=True, seed=0)
    first = epoch_targets(loader)
    _set_sampler_epoch(loader, 0)
    assert epoch_targets(loader) == first
    assert loader.sampler.epoch == 1


def test_batches_are_normalised_float_in_channels_last_when_asked() -> None:
    images = torch.randint(0, 256, (12, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    loader = GpuLoader(images, torch.zeros(12, dtype=torch.long), batch_size=12, mean=mean, std=std, channels_last=True)
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.is_contiguous(memory_format=torch.channels_last)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(x, expected, atol=1e-5)


def test_training_augmentation_really_changes_batches_and_is_seeded() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=g)
    targets = torch.arange(64)
    spec = {"crop_padding": 2, "hflip": True, "rot90": False, "cutout": 0}
    plain = GpuLoader(images, targets, batch_size=64)
    aug_a = GpuLoader(images, targets, batch_size=64, augment=spec, seed=1)
    aug_b = GpuLoader(images, targets, batch_size=64, augment=spec, seed=1)
    (x0, _), (xa, _), (xb, _) = next(iter(plain)), next(iter(aug_a)), next(iter(aug_b))
    assert torch.equal(xa, xb)
    changed = [not torch.equal(p, a) for p, a in zip(x0, xa)]
    assert sum(changed) > 40
    # augmented values are values of the normalised image (crop with reflect padding, flip)
    assert float(xa.min()) >= float(x0.min()) and float(xa.max()) <= float(x0.max())


def test_bad_arguments_are_refused() -> None:
    images, targets = dataset(10)
    with pytest.raises(UserError, match="data.batch_size"):
        GpuLoader(images, targets, batch_size=0)
    with pytest.raises(UserError, match="data.batch_size"):
        GpuLoader(images, targets, batch_size=16, drop_last=True)
    with pytest.raises(UserError, match="data.augment.train"):
        GpuLoader(images, targets, batch_size=4, augment={"mixup": 0.2}, augment_key="data.augment.train")
    with pytest.raises(ValueError):
        GpuLoader(images.float(), targets, batch_size=4)
    with pytest.raises(ValueError):
        GpuLoader(images, targets[:5], batch_size=4)


def test_images_to_tensor_transposes_nhwc_to_nchw() -> None:
    nhwc = np.random.default_rng(0).integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    t = images_to_tensor(nhwc)
    assert t.shape == (4, 3, 5, 6) and t.dtype == torch.uint8 and t.is_contiguous()
    assert int(t[2, 1, 3, 4]) == int(nhwc[2, 3, 4, 1])


def test_fits_on_gpu_is_false_off_cuda_and_epoch_seeds_differ() -> None:
    assert fits_on_gpu(10, "cpu") is False
    assert len({epoch_seed(0, e) for e in range(100)} | {epoch_seed(1, e) for e in range(100)}) == 200


def test_lightning_trains_from_the_loader() -> None:
    import pytorch_lightning as pl

    torch.manual_seed(0)
    images = torch.randint(0, 256, (64, 1, 4, 4), dtype=torch.uint8)
    targets = (images.float().mean(dim=(1, 2, 3)) > 127).long()

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
            self.seen: list[int] = []

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def on_train_epoch_start(self) -> None:
            self.seen.append(self.trainer.train_dataloader.sampler.epoch)

        def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            self.log("val_acc", (self.net(x).argmax(1) == y).float().mean())

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=0.1)

    loader = GpuLoader(images, targets, batch_size=16, shuffle=True, augment={"hflip": True})
    val_loader = GpuLoader(images, targets, batch_size=32)
    model = Tiny()
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=val_loader)
    assert trainer.global_step == 3 * len(loader)
    assert model.seen == [0, 1, 2]  # Lightning set the epoch before each one
    assert "val_acc" in trainer.callback_metrics
    trainer.validate(model, dataloaders=val_loader, verbose=False)


def test_steps_per_call_groups_the_same_batches_in_the_same_order() -> None:
    from trueval.core.batches import BatchGroup

    images, targets = dataset(50)
    spec = {"crop_padding": 1, "hflip": True}
    single = GpuLoader(images, targets, batch_size=8, shuffle=True, seed=5, augment=spec)
    grouped = GpuLoader(images, targets, batch_size=8, shuffle=True, seed=5, augment=spec, steps_per_call=3)
    assert single.num_batches == grouped.num_batches == 7
    assert len(single) == 7 and len(grouped) == 3  # groups of 3, 3 and 1
    groups = list(grouped)
    assert all(isinstance(g, BatchGroup) for g in groups)
    assert [len(g) for g in groups] == [3, 3, 1]
    assert [g.num_samples for g in groups] == [24, 24, 2]
    flat = [batch for g in groups for batch in g]
    for (xa, ya), (xb, yb) in zip(list(single), flat, strict=True):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)  # same order, same augmentation draws
    with pytest.raises(UserError, match="steps_per_call"):
        GpuLoader(images, targets, batch_size=8, steps_per_call=0)


def _mirrored(loader: GpuLoader) -> dict[int, bool]:
    """Which samples an epoch mirrored (the images' left half is 0, the right half 255)."""
    out = {}
    for x, y in loader:
        for image, target in zip(x, y):
            out[int(target)] = bool(image[0, 0, 0] > image[0, 0, -1])
    return out


def test_alternating_flip_mirrors_each_image_in_every_other_epoch() -> None:
    n = 64
    images = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    images[..., 2:] = 255  # mirrored, the bright half is on the left
    loader = GpuLoader(images, torch.arange(n), batch_size=16, shuffle=True, seed=5,
                       augment={"hflip": "alternate"}, mean=(0.0,), std=(1.0,))
    epochs = [_mirrored(loader) for _ in range(4)]
    assert 16 < sum(epochs[0].values()) < 48  # about half, chosen at random
    for a, b in zip(epochs, epochs[1:]):
        assert all(a[i] != b[i] for i in range(n))  # every image flips side from one epoch to the next
    loader.set_epoch(2)
    assert _mirrored(loader) == epochs[2]  # resumable: the decisions depend on (seed, epoch) only
    other = GpuLoader(images, torch.arange(n), batch_size=16, shuffle=True, seed=6,
                      augment={"hflip": "alternate"}, mean=(0.0,), std=(1.0,))
    assert _mirrored(other) != epochs[0]


def test_alternating_flip_is_refused_where_it_cannot_work() -> None:
    from trueval.data.augment_options import check_spec
    from trueval.data.transforms import build_transform

    with pytest.raises(UserError, match="hflip"):
        check_spec({"hflip": "sometimes"}, "train")
    spec = check_spec({"hflip": "alternate"}, "train")
    # the DataLoader path's per-sample transforms cannot alternate: refused, naming the key
    with pytest.raises(UserError, match=r"data\.loader=gpu") as info:
        build_transform(spec, (0.5,), (0.5,), split="train")
    assert info.value.key == "data.augment.train.hflip"
