"""Affine refinement of an alignment hypothesis (batched Gauss-Newton, Lucas-Kanade style).

The verifier's hypotheses are a mirror, a zoom on a grid and a translation. A copy rotated by a few
degrees, stretched along one axis, or cropped to a zoom between two grid levels is then off by a
pixel or more towards the edges, which on a 32-pixel thumbnail drops its band-pass correlation from
above 0.95 to 0.5-0.85 (measured on CIFAR-10: 0 of 16 copies rotated by 5 degrees verified). A few
Gauss-Newton steps on smoothed images fit zoom, rotation, a stretch of one image axis and the
translation (five of the six affine parameters: no shear, which no copy needs) from the hypothesis, photometric
gain and offset left out by normalising both images over their overlap at every step (as ECC does),
coarse to fine. torchvision and kornia have no batched masked image registration, hence this.

Coordinates are grid_sample's normalised ones (-1..1 across the image, ``align_corners=False``);
``theta`` (n, 2, 3) maps a point of image a to where it lies in image b. A thumbnail squashes its
image to a square, so a rotation of a 16:9 photo is not a rotation of its thumbnail: the fit and
the check take each pair's aspect (width over height of the pictures) and rotate in the picture's
own proportions (``aspect``; 1 for square images).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_DAMPING = 1e-3
_SIMILAR = 1.1  # largest ratio of the two axes' scales a rotated copy may show (fit noise)
_AXIS_SHEAR = 0.05  # largest off-diagonal share of a stretched copy's map (a pure axis stretch has none)  # Levenberg damping, relative to the mean diagonal of the normal equations


def initial_theta(scale: torch.Tensor, flip: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor,
                  size: int) -> torch.Tensor:
    """The affine map of a hypothesis: b magnified by ``scale`` (mirrored if ``flip``) and moved by
    (dy, dx) pixels lies on a (the verifier's separable warp, as one matrix)."""
    n = len(scale)
    fx = torch.where(flip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=scale.device)
    theta[:, 0, 0] = fx / scale
    theta[:, 1, 1] = 1.0 / scale
    theta[:, 0, 2] = -fx * dx * (2.0 / size) / scale
    theta[:, 1, 2] = -dy * (2.0 / size) / scale
    return theta


def warp(images: torch.Tensor, theta: torch.Tensor, margin: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, H, W) images of b resampled onto a's grid, and where a's pixel has a source inside b at
    least ``margin`` pixels from b's edges and lies that far from a's own edges."""
    (out,), inside = warp_stacks([images], theta, margin)
    return out, inside


def warp_stacks(stacks: list[torch.Tensor], theta: torch.Tensor,
                margin: float = 0.0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``warp`` of several (n, H, W) stacks by the same maps: one sampling grid, one grid_sample over
    the stacks as channels (each channel is resampled exactly as on its own, with the same weights:
    the same values as separate calls, at a fraction of the cost on small images)."""
    n, h, w = stacks[0].shape
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    x = stacks[0][:, None] if len(stacks) == 1 else torch.stack(stacks, 1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    limit = torch.tensor([1.0 - 2.0 * margin / w, 1.0 - 2.0 * margin / h], device=theta.device)
    # per coordinate rather than ``(grid.abs() <= limit).all(-1)``: the same mask, without a
    # reduction over a last axis of two (that alone took a tenth of the refinement's time)
    inside = (grid[..., 0].abs() <= limit[0]) & (grid[..., 1].abs() <= limit[1])
    if margin > 0:
        ry, rx = torch.arange(h, device=theta.device) + 0.5, torch.arange(w, device=theta.device) + 0.5
        ys = (ry >= margin) & (ry <= h - margin)
        xs = (rx >= margin) & (rx <= w - margin)
        inside = inside & ys[:, None] & xs[None, :]
    return [o.contiguous() for o in out.unbind(1)], inside


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences in normalised units (per unit of the -1..1 range), 0 on the border."""
    n, h, w = x.shape
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(x)
    gx[:, :, 1:-1] = (x[:, :, 2:] - x[:, :, :-2]) * (w / 4.0)
    gy[:, 1:-1, :] = (x[:, 2:, :] - x[:, :-2, :]) * (h / 4.0)
    return gx, gy


def _normalise(x: torch.Tensor, m: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = (x * m).sum((1, 2), keepdim=True) / count
    d = (x - mean) * m
    std = (d.square().sum((1, 2), keepdim=True) / count).sqrt().clamp(min=1e-3)
    return d / std, std


def refine(pyramid: list[tuple[torch.Tensor, torch.Tensor]], mask_a: torch.Tensor, mask_b: torch.Tensor,
           theta: torch.Tensor, steps: int = 5, margin: float = 0.0,
           aspect: torch.Tensor | None = None) -> torch.Tensor:
    """``theta`` improved by ``steps`` Gauss-Newton steps per level of ``pyramid`` ((a, b) image
    stacks, smoothest first), each maximising the correlation of a and warped b over their overlap
    (less ``margin`` pixels along both frames: the fill a rotation brings in at the corners).
    ``aspect`` (n,): width over height of each pair's pictures (None: square)."""
    n, h, w = mask_a.shape
    # a rotation by r of the picture, seen in the squashed thumbnail: -r / aspect above the diagonal, r * aspect below
    k = torch.ones(n, device=theta.device) if aspect is None else aspect.to(theta.device, torch.float32)
    kk = k[:, None, None]
    ys = (torch.arange(h, dtype=torch.float32, device=theta.device) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=torch.float32, device=theta.device) + 0.5) * (2.0 / w) - 1.0
    uy, ux = ys[:, None].expand(h, w), xs[None, :].expand(h, w)
    theta = theta.clone()
    square = aspect is None  # no aspect: the rotation's factors are 1 and left out (the same values)
    for ia, ib in pyramid:
        for _ in range(steps):
            (bw, mb), inside = warp_stacks([ib, mask_b], theta, margin)
            m = mask_a * (inside & (mb > 0.99)).float()
            count = m.sum((1, 2), keepdim=True).clamp(min=1.0)
            an, _ = _normalise(ia, m, count)
            bn, std = _normalise(bw, m, count)
            gx, gy = _gradients(bw)
            # d(warped b)/d(update) for u -> u + D u + d with D = [[z + c, -r / k], [r k, z - c]]: zoom z,
            # rotation r (k: the aspect), stretch c of one image axis against the other, no shear
            # (a copy's changes)
            gxx, gyy = gx * ux, gy * uy  # each product once (the zoom and the stretch share them)
            turn = gy * ux - gx * uy if square else gy * ux * kk - gx * uy / kk
            jac = torch.stack([gxx + gyy, turn, gxx - gyy, gx, gy], 1).reshape(n, 5, h * w)
            # the normal equations of the centred, normalised Jacobian over the overlap m, as sums
            # (batched matrix products): sum (J - mean)(J - mean)' m = sum J J' m - count mean mean'
            # and sum (J - mean) r = sum J r - mean sum r (r is zero off m); the centred (n, 5, h, w)
            # Jacobian was four more passes over five planes per step, two thirds of the refinement
            jm = jac * m.reshape(n, 1, h * w)
            mean = jm.sum(2) / count[:, 0]  # n, 5
            r = (an - bn).reshape(n, h * w, 1)
            scale = std[:, 0, 0].square()
            hess = (jm @ jac.transpose(1, 2) - count[:, :, 0, None] * mean[:, :, None] * mean[:, None, :])
            hess = hess / scale[:, None, None]
            grad = ((jac @ r)[:, :, 0] - mean * r.sum((1, 2))[:, None]) / std[:, 0]
            damp = _DAMPING * hess.diagonal(dim1=1, dim2=2).mean(1).clamp(min=1e-6)
            hess = hess + damp[:, None, None] * torch.eye(5, device=theta.device)
            delta = torch.linalg.solve(hess, grad[:, :, None])[:, :, 0]
            delta = torch.nan_to_num(delta).clamp(-0.2, 0.2)  # a step never jumps far
            step = torch.zeros(n, 3, 3, device=theta.device)
            z, rot, c = delta[:, 0], delta[:, 1], delta[:, 2]
            step[:, 0, 0] = 1 + z + c
            step[:, 0, 1] = -rot / k
            step[:, 1, 0] = rot * k
            step[:, 1, 1] = 1 + z - c
            step[:, 0, 2] = delta[:, 3]
            step[:, 1, 2] = delta[:, 4]
            step[:, 2, 2] = 1
            theta = theta @ step
    return theta


def plausible(theta: torch.Tensor, flip: torch.Tensor, max_scale: float, max_rotation: float,
              max_stretch: float, aspect: torch.Tensor | None = None) -> torch.Tensor:
    """Whether each map is a copy's kind of change: mirrored as hypothesised, a zoom within
    ``max_scale`` either way, and either a similarity (rotated by at most ``max_rotation`` degrees,
    axes stretched alike within _SIMILAR) or one image axis stretched by at most ``max_stretch``
    against the other, without rotation or shear. A fit free to shear and squash in any direction
    makes different photos of one silhouette alike: measured on a one-class CIFAR-10 suite, the
    pairs of different photos it verified had stretched, sheared maps, the copies did not. Judged in
    the pictures' proportions (``aspect``, width over height; None: square)."""
    m = theta[:, :, :2].clone()
    m[:, :, 0] = torch.where(flip[:, None], -m[:, :, 0], m[:, :, 0])  # undo the mirror
    if aspect is not None:  # from thumbnail coordinates to the picture's: diag(k, 1) m diag(1 / k, 1)
        k = aspect.to(m.device, m.dtype)
        m[:, 0, 1] = m[:, 0, 1] * k
        m[:, 1, 0] = m[:, 1, 0] / k
    sv = torch.linalg.svdvals(m)
    det = torch.linalg.det(m)
    angle = torch.atan2(m[:, 1, 0] - m[:, 0, 1], m[:, 0, 0] + m[:, 1, 1]).abs() * (180.0 / math.pi)
    stretch = sv[:, 0] / sv[:, 1].clamp(min=1e-6)
    similar = (stretch <= _SIMILAR) & (angle <= max_rotation)
    off = (m[:, 0, 1].abs() + m[:, 1, 0].abs()) / sv[:, 0].clamp(min=1e-6)
    axis_stretch = (stretch <= max_stretch) & (off <= _AXIS_SHEAR)
    return (det > 0) & (sv[:, 0] <= max_scale) & (sv[:, 1] >= 1.0 / max_scale) & (similar | axis_stretch)
