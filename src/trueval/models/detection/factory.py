"""``build_detection_module(cfg, dm)``: the train and eval tasks' way to get a DetectorModule."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trueval.models.detection.module import DetectorModule
from trueval.models.factory import split_model_config
from trueval.core.errors import UserError

log = logging.getLogger("trueval")


def build_detection_module(cfg: DictConfig, dm: Any, load_weights: bool = True) -> DetectorModule:
    """The detector for ``dm``'s classes at ``dm.image_size``; optimizer/scheduler from their groups.

    ``load_weights=False`` skips ``model.weights``/``model.weights_backbone`` (for eval.py, where
    the checkpoint's weights replace them anyway).
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    model, module_opts = split_model_config(container["model"], task="detection")
    model.pop("_target_", None)
    if module_opts.pop("compile", False):
        log.warning("model.compile is ignored for detectors (torchvision detectors have data-dependent control flow)")
    channels_last = module_opts.pop("channels_last", False)
    if channels_last == "auto":
        channels_last = False  # not measured to help torchvision detectors; opt in with model.channels_last=true
    if "name" not in model:
        raise UserError("the detector needs a name, e.g. model.name=fasterrcnn_mobilenet_v3_large_fpn", key="model.name")
    return DetectorModule(
        net=model,
        num_classes=dm.num_classes,
        class_names=list(dm.class_names),
        image_size=int(dm.image_size),
        optimizer=container["optimizer"],
        scheduler=container.get("scheduler"),
        channels_last=bool(channels_last),
        cfg=container,
        load_weights=load_weights,
        **module_opts,
    )
