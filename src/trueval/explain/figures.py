"""The explain figures: Grad-CAM overlays, a t-SNE of features by class, the most-confused pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_display(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised N x C x H x W -> N x H x W x C in [0, 1] (C = 1 or 3)."""
    out = images * np.asarray(std).reshape(1, -1, 1, 1) + np.asarray(mean).reshape(1, -1, 1, 1)
    return np.clip(out, 0, 1).transpose(0, 2, 3, 1)


def _show(ax, image: np.ndarray) -> None:
    ax.axis("on")
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def gradcam_grid(images: np.ndarray, cams: np.ndarray, targets: Sequence[int], preds: Sequence[int],
                 class_names: Sequence[str], columns: int = 10):
    """Each image above its Grad-CAM overlay, ``columns`` per band; title true -> predicted."""
    plt = _plt()
    n = max(len(images), 1)
    cols = min(n, columns)
    bands = -(-n // cols)
    fig, axes = plt.subplots(2 * bands, cols, figsize=(1.6 * cols, 3.6 * bands), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(len(images)):
        top, bottom = axes[2 * (i // cols)][i % cols], axes[2 * (i // cols) + 1][i % cols]
        _show(top, images[i])
        ok = targets[i] == preds[i]
        top.set_title(f"{class_names[targets[i]]}\n-> {class_names[preds[i]]}", fontsize=7,
                      color="tab:green" if ok else "tab:red")
        _show(bottom, images[i])
        bottom.imshow(cams[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
    fig.suptitle("Grad-CAM (last conv stage): correct in green, wrong in red", fontsize=9)
    fig.tight_layout()
    return fig


def tsne_figure(features: np.ndarray, targets: np.ndarray, class_names: Sequence[str], seed: int = 0):
    """A 2-D t-SNE (scikit-learn) of penultimate features, one colour per class."""
    from sklearn.manifold import TSNE

    plt = _plt()
    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for k, name in enumerate(class_names):
        mask = targets == k
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], s=6, color=cmap(k % cmap.N), label=name)
    ax.legend(fontsize=7, markerscale=2, loc="best", ncol=2 if len(class_names) > 10 else 1)
    ax.set_title("t-SNE of the penultimate features (test split)")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def confused_pairs(confusion: np.ndarray, top: int = 5) -> list[tuple[int, int, int]]:
    """(true, predicted, count) of the most frequent off-diagonal cells, largest first."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    return [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape)) if off[i, j] > 0]


def confused_figure(pairs: list[tuple[int, int, int]], examples: dict[tuple[int, int], list[np.ndarray]],
                    class_names: Sequence[str], per_pair: int = 4):
    """One row per confused pair: its count and up to ``per_pair`` test images of it."""
    plt = _plt()
    rows = max(len(pairs), 1)
    fig, axes = plt.subplots(rows, per_pair, figsize=(1.6 * per_pair, 1.7 * rows), squeeze=False)
    for r, (true, pred, count) in enumerate(pairs):
        shown = examples.get((true, pred), [])[:per_pair]
        for c in range(per_pair):
            ax = axes[r][c]
            if c < len(shown):
                _show(ax, shown[c])
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(f"{class_names[true]} -> {class_names[pred]}\n({count})", fontsize=7)
        axes[r][0].axis("on")
        axes[r][0].set_xticks([])
        axes[r][0].set_yticks([])
    if not pairs:
        axes[0][0].set_title("no confusions on the test split")
    fig.suptitle("Most-confused class pairs (true -> predicted, count)", fontsize=9)
    fig.tight_layout()
    return fig
