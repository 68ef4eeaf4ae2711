"""DetectorModule on a generated dataset: an epoch on the CPU, logged metrics, checkpoint round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from trueval.data.detection.dataset import DetectionDataset, detection_collate
from trueval.data.detection.labels import read_split_labels
from trueval.data.detection.synthetic import write_synthetic_yolo
from trueval.data.detection.transforms import build_detection_transform
from trueval.data.detection.yolo_yaml import label_path_for, load_yolo_yaml, resolve_split
from trueval.models.detection.module import DetectorModule

SIZE = 96
NET = {"name": "fasterrcnn_mobilenet_v3_large_fpn",
       # fewer sampled regions and proposals: a CPU-sized Faster R-CNN for these 2-3 object images
       "options": {"box_batch_size_per_image": 32, "rpn_post_nms_top_n_test": 100}}


def _loaders(root: Path) -> dict[str, DataLoader]:
    yaml_path = write_synthetic_yolo(root, {"train": 24, "val": 8, "test": 8}, size=SIZE, seed=3)
    spec = load_yolo_yaml(yaml_path)
    out = {}
    for split in ("train", "val", "test"):
        files = resolve_split(spec, spec.entries[split], split)
        items = read_split_labels(files.images, 3, label_path_for)
        transform = build_detection_transform(SIZE, train=split == "train", augment={"color": 0.0})
        out[split] = DataLoader(DetectionDataset(items, transform), batch_size=8, shuffle=split == "train",
                                collate_fn=detection_collate)
    return out


def _module(**kw) -> DetectorModule:
    return DetectorModule(net=NET, num_classes=3, class_names=["rectangle", "ellipse", "triangle"], image_size=SIZE,
                          optimizer={"name": "adamw", "lr": 2e-3, "weight_decay": 1e-4},
                          scheduler={"name": "none"}, log_images=2, **kw)


@pytest.mark.slow
def test_trains_on_cpu_reports_map_and_checkpoint_reproduces_test(tmp_path: Path) -> None:
    pl.seed_everything(0)
    loaders = _loaders(tmp_path / "ds")
    module = _module(cfg={"note": "plain data only"})
    logger = pl.loggers.TensorBoardLogger(str(tmp_path / "tb"), name="", version="")
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), monitor="val/map50_best", mode="max")
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=logger, callbacks=[ckpt], enable_progress_bar=False,
                         num_sanity_val_steps=0, enable_model_summary=False)
    trainer.fit(module, loaders["train"], loaders["val"])
    m = trainer.callback_metrics
    for key in ("train/loss", "train/box_loss", "train/cls_loss", "train/rpn_obj_loss", "val/loss",
                "val/box_loss", "val/map50", "val/map", "val/map50_best", "val/ap50/rectangle"):
        assert key in m, key
    assert 0.0 <= float(m["val/map"]) <= float(m["val/map50"]) <= 1.0
    assert float(m["val/map50_best"]) >= float(m["val/map50"])
    assert torch.isfinite(m["train/loss"]) and float(m["val/loss"]) > 0
    # validation images with boxes drawn went to TensorBoard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    assert "val/detections/0" in events.Tags()["images"]

    first = trainer.test(module, loaders["test"], ckpt_path=ckpt.best_model_path, weights_only=True)[0]
    assert {"test/map50", "test/map", "test/loss", "test/ap50/ellipse"} <= set(first)

    # the checkpoint is plain data and rebuilds the network by itself
    raw = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)
    assert raw["hyper_parameters"]["net"]["name"] == NET["name"]
    again = DetectorModule.load_from_checkpoint(ckpt.best_model_path, weights_only=True, load_weights=False)
    second = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(again, loaders["test"])[0]
    for key, value in first.items():
        assert second[key] == pytest.approx(value, abs=1e-6), key


def test_labels_shift_for_background_architectures() -> None:
    module = _module()
    assert module.label_offset == 1
    targets = [{"boxes": torch.zeros(1, 4), "labels": torch.tensor([0])}]
    assert module._to_net(targets)[0]["labels"].tolist() == [1]
    preds = [{"boxes": torch.zeros(1, 4), "scores": torch.ones(1), "labels": torch.tensor([3])}]
    assert module._from_net(preds)[0]["labels"].tolist() == [2]
    fcos = DetectorModule(net={"name": "fcos_resnet18_fpn"}, num_classes=3, class_names=list("abc"), image_size=64,
                          optimizer={"name": "sgd", "lr": 0.01})
    assert fcos.label_offset == 0 and fcos.net.head.classification_head.num_classes == 3
