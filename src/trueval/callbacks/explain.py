"""``callbacks=explain``: after testing, look inside the network.

Writes into the run directory, and to TensorBoard when it logs there:
- ``gradcam.png``: Grad-CAM on the last conv stage for a fixed set of test images, the first
  ``per_class`` correct and the first ``per_class`` wrong ones of every class (test-loader order);
- ``tsne.png``: a 2-D t-SNE of the penultimate features of up to ``tsne_samples`` test images;
- ``confused_pairs.png`` / ``confused_pairs.csv``: the most-confused class pairs, with examples.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

log = logging.getLogger("trueval")


class ExplainCallback(pl.Callback):
    def __init__(self, per_class: int = 1, tsne_samples: int = 1000, top_pairs: int = 5, per_pair: int = 4) -> None:
        self.per_class, self.tsne_samples, self.top_pairs, self.per_pair = per_class, tsne_samples, top_pairs, per_pair

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.features: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.preds: list[np.ndarray] = []
        self.chosen: dict[tuple[int, bool], list[torch.Tensor]] = {}
        self.examples: dict[tuple[int, int], list[torch.Tensor]] = {}

    @torch.no_grad()
    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        net = pl_module.net
        features = net.forward_features(x)
        pred = pl_module(x).argmax(1)
        seen = sum(len(t) for t in self.targets)
        if seen < self.tsne_samples:
            keep = self.tsne_samples - seen
            self.features.append(features[:keep].float().cpu().numpy())
        self.targets.append(y.cpu().numpy())
        self.preds.append(pred.cpu().numpy())
        for image, true, guess in zip(x.cpu(), y.cpu().tolist(), pred.cpu().tolist()):
            bucket = self.chosen.setdefault((true, true == guess), [])
            if len(bucket) < self.per_class:
                bucket.append(image.clone())
            if true != guess:
                pair = self.examples.setdefault((true, guess), [])
                if len(pair) < self.per_pair:
                    pair.append(image.clone())

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not self.targets:
            return
        from trueval.explain import figures
        from trueval.explain.gradcam import grad_cam

        names = list(getattr(pl_module, "class_names", [])) or [str(i) for i in range(pl_module.num_classes)]
        hp = pl_module.hparams
        mean, std = hp.get("mean") or [0.0], hp.get("std") or [1.0]
        out_dir = Path(getattr(pl_module, "output_dir", None) or trainer.default_root_dir)
        targets, preds = np.concatenate(self.targets), np.concatenate(self.preds)
        written = {}
        keys = sorted(self.chosen, key=lambda k: (k[0], not k[1]))
        images = [img for k in keys for img in self.chosen[k]]
        if images:
            x = torch.stack(images).to(pl_module.device)
            truth = torch.tensor([k[0] for k in keys for _ in self.chosen[k]], device=pl_module.device)
            with torch.inference_mode(False):
                cams, logits = grad_cam(pl_module.net, x.clone())
            shown = figures.to_display(x.float().cpu().numpy(), mean, std)
            written["gradcam"] = figures.gradcam_grid(shown, cams.cpu().numpy(), truth.tolist(),
                                                      logits.argmax(1).tolist(), names)
        features = np.concatenate(self.features)
        if len(features) >= 5:
            written["tsne"] = figures.tsne_figure(features, targets[:len(features)], names)
        confusion = np.zeros((len(names), len(names)), dtype=np.int64)
        np.add.at(confusion, (targets, preds), 1)
        pairs = figures.confused_pairs(confusion, self.top_pairs)
        examples = {k: list(figures.to_display(torch.stack(v).float().numpy(), mean, std))
                    for k, v in self.examples.items()}
        written["confused_pairs"] = figures.confused_figure(pairs, examples, names, self.per_pair)
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "confused_pairs.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["true", "predicted", "count"])
            writer.writerows((names[t], names[p], c) for t, p, c in pairs)
        import matplotlib.pyplot as plt

        for name, fig in written.items():
            fig.savefig(out_dir / f"{name}.png", dpi=120, bbox_inches="tight")
            for logger in trainer.loggers:
                experiment = getattr(logger, "experiment", None)
                if hasattr(experiment, "add_figure"):
                    experiment.add_figure(f"explain/{name}", fig, global_step=trainer.global_step)
            plt.close(fig)
        log.info("explain: %s in %s", ", ".join(f"{n}.png" for n in written), out_dir)
