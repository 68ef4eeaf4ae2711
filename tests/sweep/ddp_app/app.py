"""A tiny Hydra + Lightning app for DDP tests: 2 CPU ranks fit, rank 0 tests alone."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
import torchmetrics
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from torch.utils.data import DataLoader, TensorDataset

from trueval.sweep.ddp import HydraDDPStrategy


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 3)
        self.acc = torchmetrics.classification.MulticlassAccuracy(3, average="micro")
        self.n_test = 0

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        return torch.nn.functional.cross_entropy(self.layer(x), y)

    def test_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        self.n_test += len(y)
        self.acc(self.layer(x).argmax(1), y)
        self.log("test/acc", self.acc)

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n: int) -> DataLoader:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 1).long()), batch_size=8)


def trainer(**kwargs) -> pl.Trainer:  # noqa: ANN003
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **kwargs)


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg: DictConfig) -> float:
    out = Path(HydraConfig.get().runtime.output_dir)
    rank = int(os.environ.get("LOCAL_RANK", 0))
    (out / f"rank{rank}.json").write_text(json.dumps({"pid": os.getpid(), "mode": str(HydraConfig.get().mode)}))
    model = Classifier()
    fitter = trainer(max_epochs=1, devices=2, strategy=HydraDDPStrategy())
    fitter.fit(model, loader(64))
    if not fitter.is_global_zero:
        return math.nan
    results = trainer(devices=1).test(model, loader(37))
    (out / "test.json").write_text(json.dumps({"n_test": model.n_test, "results": results}))
    return results[0]["test/acc"]


if __name__ == "__main__":
    main()
