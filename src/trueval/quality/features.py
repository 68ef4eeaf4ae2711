"""Cheap per-image features for the quality checks: small thumbnails and simple image statistics.

The label and domain checks need a vector per image that a light model can fit in seconds on a
CPU; downsampled pixels and intensity/texture statistics are that, without any pretrained network
(nothing may download weights).
"""

from __future__ import annotations

import numpy as np

from trueval.core.samples import SampleSet
from trueval.data.imagefolder import resize_array

_CHUNK = 4096


def thumbnails(ss: SampleSet, size: int, channels: int | None = None) -> np.ndarray:
    """uint8 N x s x s x C of every sample, s = ``size`` (images smaller than that keep their size).

    ``channels`` forces 1 (grey) or 3 (RGB) so two image sources compare on the same footing.
    """
    if ss.images is not None:
        images = ss.images
        side = min(size, images.shape[1], images.shape[2])
        parts = [_fit(images[i:i + _CHUNK], side) for i in range(0, len(images), _CHUNK)]
        out = np.concatenate(parts) if parts else np.zeros((0, side, side, images.shape[3]), np.uint8)
    else:
        first = ss.load(0)
        side = min(size, first.shape[0], first.shape[1])
        out = np.stack([_fit(ss.load(i)[None], side)[0] for i in range(len(ss))])
    return _channels(out, channels) if channels else out


def _fit(batch: np.ndarray, side: int) -> np.ndarray:
    if batch.shape[1] == side and batch.shape[2] == side:
        return np.ascontiguousarray(batch)
    return resize_array(np.array(batch), side)  # a writable copy: torch warns on read-only decoded pixels


def _channels(images: np.ndarray, channels: int) -> np.ndarray:
    if images.shape[3] == channels:
        return images
    if channels == 1:
        return np.round(images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None].astype(np.uint8)
    return np.repeat(images, channels, axis=3)


def pixels(thumbs: np.ndarray) -> np.ndarray:
    """Flattened 0-1 float32 pixels: the label baseline's input."""
    return thumbs.reshape(len(thumbs), -1).astype(np.float32) / 255.0


def image_statistics(thumbs: np.ndarray) -> np.ndarray:
    """Per image: channel means, spreads and percentiles, edge energy, clipping and a grey histogram.

    What changes between a camera, a scanner or a season (brightness, contrast, blur, noise,
    colour cast), and little of what separates the classes, so a classifier on these tells
    domains apart rather than labels.
    """
    x = thumbs.astype(np.float32) / 255.0
    n = len(x)
    flat = x.reshape(n, -1, x.shape[3])
    grey = x.mean(axis=3)
    feats = [flat.mean(axis=1), flat.std(axis=1)]
    feats += [np.percentile(flat, q, axis=1) for q in (5, 50, 95)]
    feats.append(np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2))[:, None])
    feats.append(np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2))[:, None])
    g = grey.reshape(n, -1)
    feats.append((g <= 0.02).mean(axis=1)[:, None])
    feats.append((g >= 0.98).mean(axis=1)[:, None])
    bins = np.minimum((g * 8).astype(np.int64), 7)
    hist = np.stack([(bins == b).mean(axis=1) for b in range(8)], axis=1)
    feats.append(hist)
    return np.concatenate(feats, axis=1).astype(np.float64)
