"""Figures written into run directories and TensorBoard (matplotlib, headless)."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str]):
    """Row-normalised confusion matrix (true class per row) with the counts written in."""
    k = len(class_names)
    size = max(4.0, min(0.45 * k + 2, 24.0))
    fig, ax = plt.subplots(figsize=(size, size))
    rows = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(matrix, np.where(rows == 0, 1, rows))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (test)")
    fig.tight_layout()
    return fig


def save_figure(fig, path, dpi: int = 120, title: str | None = None) -> None:
    """Title, lay out, write and close a study's figure (closing frees it: sweeps draw many)."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
