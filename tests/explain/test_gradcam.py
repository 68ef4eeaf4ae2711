"""Grad-CAM finds a planted discriminative patch; the explain callback writes its figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from trueval.explain.figures import confused_pairs
from trueval.explain.gradcam import grad_cam, last_conv_stage
from trueval.models.nets.cnn import CNN


def _patch_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """16x16 noise; class 1 carries a bright 4x4 patch at a random place (its mask is returned)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 16, 16, generator=g) * 0.5
    y = torch.arange(n) % 2
    mask = torch.zeros(n, 16, 16, dtype=torch.bool)
    for i in torch.nonzero(y).flatten().tolist():
        r, c = torch.randint(0, 12, (2,), generator=g).tolist()
        x[i, 0, r:r + 4, c:c + 4] += 3.0
        mask[i, r:r + 4, c:c + 4] = True
    return x, y, mask


@pytest.fixture(scope="module")
def trained_cnn() -> CNN:
    torch.manual_seed(0)
    net = CNN((1, 16, 16), 2, depth=4, widths=(8, 16))
    x, y, _ = _patch_data(128, seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(40):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    return net


def test_gradcam_has_the_input_size_and_highlights_the_planted_patch(trained_cnn: CNN) -> None:
    net = trained_cnn
    x, y, mask = _patch_data(64, seed=1)
    cams, logits = grad_cam(net, x, target=torch.ones(64, dtype=torch.long))
    assert cams.shape == (64, 16, 16) and float(cams.min()) >= 0 and float(cams.max()) <= 1
    assert (logits.argmax(1) == y).float().mean() > 0.9
    patched = torch.nonzero(y).flatten()
    inside = torch.stack([cams[i][mask[i]].mean() for i in patched])
    outside = torch.stack([cams[i][~mask[i]].mean() for i in patched])
    assert (inside > 2 * outside).float().mean() > 0.8, (inside, outside)
    peak = [np.unravel_index(int(cams[i].argmax()), (16, 16)) for i in patched]
    near = [bool(mask[i, max(r - 2, 0):r + 3, max(c - 2, 0):c + 3].any()) for i, (r, c) in zip(patched, peak)]
    assert np.mean(near) > 0.8


def test_gradcam_works_with_every_parameter_frozen() -> None:
    net = CNN((1, 16, 16), 2, depth=4, widths=(8, 16))
    for p in net.parameters():
        p.requires_grad_(False)
    assert last_conv_stage(net) is net.stages[-1]
    cams, _ = grad_cam(net, torch.randn(2, 1, 16, 16))
    assert cams.shape == (2, 16, 16)


def test_most_confused_pairs_come_first() -> None:
    matrix = np.array([[5, 3, 0], [0, 4, 1], [7, 0, 2]])
    assert confused_pairs(matrix, top=2) == [(2, 0, 7), (0, 1, 3)]


def test_explain_callback_writes_figures_after_testing(tmp_path: Path, trained_cnn: CNN) -> None:
    from trueval.callbacks.explain import ExplainCallback
    from trueval.models.classifier import ClassifierModule

    x, y, _ = _patch_data(48, seed=2)
    module = ClassifierModule(net=trained_cnn, num_classes=2, optimizer={"name": "adam", "lr": 1e-3},
                              scheduler={"name": "none"}, class_names=["plain", "patch"], output_dir=str(tmp_path),
                              hparams={"mean": [0.0], "std": [1.0]})
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[ExplainCallback(per_class=2, tsne_samples=40)], default_root_dir=tmp_path)
    trainer.test(module, DataLoader(TensorDataset(x, y), batch_size=16))
    for name in ("gradcam.png", "tsne.png", "confused_pairs.png", "confusion_matrix.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
    assert (tmp_path / "confused_pairs.csv").read_text().startswith("true,predicted,count")
