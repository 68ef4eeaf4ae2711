"""The speed-run network: shapes, data-driven whitening, the BatchNorm-shift learning-rate trick."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trueval.models.nets.speedrun import DiracConv2d, ShiftOnlyBatchNorm, SpeedrunNet, patch_whitening_weights
from trueval.core.errors import UserError


def correlated_images(n: int = 32, c: int = 3, hw: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, hw, hw, generator=g) * torch.linspace(0.5, 2.0, c).view(1, c, 1, 1)
    return x + 0.8 * x.roll(1, dims=3) + 0.5 * x.roll(1, dims=1)  # neighbouring pixels and channels correlate


@pytest.mark.parametrize("in_shape,widths", [((3, 32, 32), (64, 256, 256)), ((1, 28, 28), (16, 32, 32)),
                                             ((3, 8, 8), (8, 16))])
def test_logits_and_features_have_the_right_shapes(in_shape: tuple[int, int, int], widths: tuple[int, ...]) -> None:
    net = SpeedrunNet(in_shape, 7, widths=widths).eval()
    x = torch.randn(2, *in_shape)
    assert net(x).shape == (2, 7)
    assert net.forward_features(x).shape == (2, widths[-1]) and net.num_features == widths[-1]


def test_images_too_small_for_the_pooling_are_a_user_error() -> None:
    with pytest.raises(UserError, match="model.widths"):
        SpeedrunNet((3, 8, 8), 10, widths=(8, 16, 32))


def test_first_training_batch_whitens_the_first_layer() -> None:
    net = SpeedrunNet((3, 16, 16), 10, widths=(8, 16, 16))
    x = correlated_images()
    net.eval()
    net(x)
    assert not net.whitened  # evaluation never initialises from data
    before = net.whiten.weight.clone()
    net.train()
    net(x)
    assert net.whitened and not torch.equal(before, net.whiten.weight)
    with torch.no_grad():
        out = net.whiten(x)[:, : net.whiten.out_channels // 2]  # the second half are the negations
    feats = out.permute(0, 2, 3, 1).reshape(-1, out.shape[1])
    cov = feats.T @ feats / len(feats)
    # unit variance along every whitened direction, no correlation between them (eps keeps it just under 1)
    assert torch.allclose(cov.diagonal(), torch.ones(len(cov)), atol=0.02)
    assert float((cov - torch.diag(cov.diagonal())).abs().max()) < 0.02
    assert not net.whiten.weight.requires_grad


def test_restored_weights_are_not_rewhitened() -> None:
    trained = SpeedrunNet((3, 16, 16), 10, widths=(8, 16, 16))
    trained.train()
    trained(correlated_images(seed=1))
    restored = SpeedrunNet((3, 16, 16), 10, widths=(8, 16, 16))
    restored.load_state_dict(trained.state_dict())
    restored.train()
    restored(correlated_images(seed=2))  # a different batch must not overwrite the loaded filters
    assert torch.equal(restored.whiten.weight, trained.whiten.weight)


def test_patch_whitening_weights_shape() -> None:
    w = patch_whitening_weights(correlated_images(c=3), kernel_size=2)
    assert w.shape == (24, 3, 2, 2)
    assert torch.allclose(w[:12], -w[12:])


def test_shift_reparametrisation_multiplies_the_sgd_step_by_the_multiplier() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 4, 5, 5)
    target = torch.randn(8, 4, 5, 5)
    plain = nn.BatchNorm2d(4, affine=True)
    plain.weight.requires_grad_(False)
    scaled = ShiftOnlyBatchNorm(4, momentum=0.1, eps=1e-5, bias_scale=8.0)
    for module, params in ((plain, [plain.bias]), (scaled, [scaled.shift])):
        opt = torch.optim.SGD(params, lr=0.01)
        ((module(x) - target) ** 2).mean().backward()
        opt.step()
    effective_plain = plain.bias.detach()
    effective_scaled = scaled.shift.detach() * 8.0
    assert torch.allclose(effective_scaled, 64 * effective_plain, rtol=1e-4, atol=1e-7)
    assert float(effective_plain.abs().max()) > 0


def test_dirac_conv_starts_as_identity_on_its_input_channels() -> None:
    conv = DiracConv2d(4, 8)
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(conv(x)[:, :4], x, atol=1e-6)


def test_it_learns_a_simple_task() -> None:
    torch.manual_seed(0)
    n = 64
    y = torch.randint(0, 2, (n,))
    x = torch.randn(n, 3, 10, 10) * 0.5
    x[y == 1, :, :5] += 1.0  # class 1: bright top half
    net = SpeedrunNet((3, 10, 10), 2, widths=(8, 16, 16))
    opt = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.85, nesterov=True)
    losses = []
    for _ in range(20):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    acc = float((net(x).argmax(1) == y).float().mean())
    assert losses[-1] < 0.6 * losses[0] and acc > 0.9


def test_shift_batchnorm_equals_batchnorm_plus_shift_in_train_and_eval() -> None:
    torch.manual_seed(0)
    bn = ShiftOnlyBatchNorm(6, momentum=0.4, eps=1e-12, bias_scale=8.0)
    reference = nn.BatchNorm2d(6, momentum=0.4, eps=1e-12, affine=False)
    with torch.no_grad():
        bn.shift.normal_()
    x = torch.randn(5, 6, 4, 4) * 3 + 1
    for mode in ("train", "eval"):
        bn.train(mode == "train")
        reference.train(mode == "train")
        expected = reference(x) + (bn.shift * 8.0).view(1, -1, 1, 1)
        assert torch.allclose(bn(x), expected, atol=1e-5), mode
    assert torch.allclose(bn.running_mean, reference.running_mean)
    assert torch.allclose(bn.running_var, reference.running_var)
    assert int(bn.num_batches_tracked) == 1
