"""data.sampler=balanced: rare classes drawn as often as common ones, on both loader paths, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trueval.core.errors import UserError
from trueval.data.gpu_loader import GpuLoader
from trueval.data.samplers import sample_weights, weighted_sampler

TARGETS = np.r_[np.zeros(900), np.ones(100)].astype(int)


def test_weights_equalise_classes_and_unknown_sampler_names_the_key() -> None:
    w = sample_weights("balanced", TARGETS)
    assert w[TARGETS == 0].sum() == pytest.approx(0.5) and w[TARGETS == 1].sum() == pytest.approx(0.5)
    with pytest.raises(UserError, match="data.sampler"):
        sample_weights("oversample", TARGETS)


def test_dataloader_and_gpu_loader_draw_rare_class_half_the_time() -> None:
    w = sample_weights("balanced", TARGETS)
    drawn = TARGETS[list(weighted_sampler(w, torch.Generator().manual_seed(0)))]
    assert 0.4 < drawn.mean() < 0.6
    images = torch.zeros((len(TARGETS), 1, 2, 2), dtype=torch.uint8)

    def epoch_targets(seed: int) -> torch.Tensor:
        loader = GpuLoader(images, TARGETS, batch_size=250, shuffle=True, seed=seed, weights=torch.as_tensor(w))
        return torch.cat([y for _, y in loader])

    ys = epoch_targets(0)
    assert len(ys) == len(TARGETS) and 0.4 < ys.float().mean() < 0.6
    assert torch.equal(ys, epoch_targets(0)) and not torch.equal(ys, epoch_targets(1))


@pytest.mark.parametrize("loader", ["torch", "gpu"])
def test_datamodule_hands_the_sampler_to_its_training_loader_only(loader: str, tmp_path) -> None:
    from torch.utils.data import WeightedRandomSampler

    from trueval.data.digits import DigitsDataModule

    dm = DigitsDataModule(loader=loader, sampler="balanced", cache_dir=str(tmp_path), num_workers=0,
                          integrity={"near": False})
    dm.setup("fit")
    train, val = dm.train_dataloader(), dm.val_dataloader()
    if loader == "torch":
        assert isinstance(train.sampler, WeightedRandomSampler)
        assert not isinstance(val.sampler, WeightedRandomSampler)
    else:
        assert train.weights is not None and val.weights is None
        assert train.weights.sum().item() == pytest.approx(1.0, abs=1e-4)
