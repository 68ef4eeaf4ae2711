"""The light baseline of the label check: a small MLP on downsampled pixels, cross-fitted.

Out-of-sample probabilities are what confident learning needs: a model that saw a mislabelled
image during training has learned its wrong label. Every training image therefore gets its
probabilities from a model fitted on the other folds (k-fold cross-fitting); val and test get
theirs from a model fitted on all of train. A torch MLP instead of scikit-learn's: the same code
runs on the GPU when there is one (the lead measures both), and a few hundred small full-batch
steps take about a second per fold on a CPU.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trueval.quality.threads import one_thread


@dataclass(frozen=True)
class BaselineSettings:
    hidden: int = 128
    epochs: int = 15
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    folds: int = 5


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, others: list[np.ndarray], num_classes: int,
                settings: BaselineSettings, device: torch.device, seed: int) -> list[np.ndarray]:
    """Fit on (x_train, y_train); class probabilities (N x K float64) of each array in ``others``."""
    if device.type != "cpu":
        return _fit_predict(x_train, y_train, others, num_classes, settings, device, seed)
    with one_thread():
        return _fit_predict(x_train, y_train, others, num_classes, settings, device, seed)


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, others: list[np.ndarray], num_classes: int,
                 settings: BaselineSettings, device: torch.device, seed: int) -> list[np.ndarray]:
    mean = x_train.mean(axis=0, keepdims=True)
    std = x_train.std(axis=0, keepdims=True) + 1e-3
    x = torch.as_tensor((x_train - mean) / std, dtype=torch.float32, device=device)
    y = torch.as_tensor(y_train, dtype=torch.int64, device=device)
    # initialisation and dropout draw from the global generator: seeded here, restored afterwards
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return _train_and_predict(x, y, mean, std, others, num_classes, settings, device, seed)


def _train_and_predict(x: torch.Tensor, y: torch.Tensor, mean: np.ndarray, std: np.ndarray, others: list[np.ndarray],
                       num_classes: int, settings: BaselineSettings, device: torch.device,
                       seed: int) -> list[np.ndarray]:
    model = _network(x.shape[1], settings.hidden, num_classes).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    gen = torch.Generator(device=device).manual_seed(seed)
    n = len(x)
    model.train()
    for _ in range(settings.epochs):
        order = torch.randperm(n, generator=gen, device=device)
        for start in range(0, n, settings.batch_size):
            idx = order[start:start + settings.batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    out = []
    with torch.no_grad():
        for other in others:
            z = torch.as_tensor((other - mean) / std, dtype=torch.float32, device=device)
            probs = torch.cat([model(z[i:i + 8192]).softmax(dim=1) for i in range(0, len(z), 8192)]) if len(z) else \
                torch.zeros((0, num_classes), device=device)
            out.append(probs.double().cpu().numpy())
    return out


def _network(inputs: int, hidden: int, classes: int) -> nn.Module:
    if hidden <= 0:
        return nn.Linear(inputs, classes)
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, classes))


def cross_fit(x: np.ndarray, y: np.ndarray, num_classes: int, settings: BaselineSettings, device: torch.device,
              seed: int) -> np.ndarray:
    """Out-of-fold class probabilities of every sample (stratified k folds, seeded)."""
    from sklearn.model_selection import StratifiedKFold

    folds = max(2, min(settings.folds, len(y)))
    probs = np.zeros((len(y), num_classes))
    with warnings.catch_warnings():  # a class with fewer members than folds: sklearn warns, still splits
        warnings.simplefilter("ignore", UserWarning)
        splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))
    for k, (fit_idx, held_idx) in enumerate(splits):
        probs[held_idx] = fit_predict(x[fit_idx], y[fit_idx], [x[held_idx]], num_classes, settings, device,
                                      seed + k)[0]
    return probs
