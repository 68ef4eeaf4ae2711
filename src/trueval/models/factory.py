"""Classifier construction as data: the ``model`` config group split into network arguments and
module options, the network instantiated, then started from ``model.pretrained`` and frozen.

One seam for train and eval (``trueval.tasks.builders.build_network`` calls ``prepare_network``):
the keys that are not network arguments are listed once here, per task.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from trueval.core.errors import UserError

log = logging.getLogger("trueval")

# keys of the `model` group that configure the LightningModule or the start of training, not the network
MODULE_KEYS: dict[str, tuple[str, ...]] = {
    "classification": ("compile", "cuda_graph", "channels_last", "pretrained", "freeze", "unfreeze_at_epoch"),
    "detection": ("log_images", "draw_score_thresh", "val_loss", "channels_last", "compile"),
}


def split_model_config(model_cfg: DictConfig | Mapping[str, Any],
                       task: str = "classification") -> tuple[dict[str, Any], dict[str, Any]]:
    """(network arguments, module options) of the ``model`` group."""
    cfg = OmegaConf.to_container(model_cfg, resolve=True) if isinstance(model_cfg, DictConfig) else dict(model_cfg)
    options = {k: cfg.pop(k) for k in MODULE_KEYS[task] if k in cfg}
    return cfg, options


def prepare_network(net: nn.Module, options: Mapping[str, Any], class_names: Sequence[str] | None = None,
                    load_weights: bool = True) -> nn.Module:
    """Load ``model.pretrained`` (unless ``load_weights`` is off: eval restores a checkpoint instead)
    and freeze ``model.freeze``; checks ``model.unfreeze_at_epoch``."""
    from trueval.models.freezing import freeze_stages
    from trueval.models.pretrained import load_pretrained

    if not isinstance(net, nn.Module):
        raise UserError(f"model._target_ must build a torch.nn.Module, got {type(net).__name__}", key="model._target_")
    pretrained = options.get("pretrained")
    if pretrained and load_weights:
        load_pretrained(net, str(pretrained), class_names)
    frozen = freeze_stages(net, options.get("freeze"))
    unfreeze = options.get("unfreeze_at_epoch")
    if unfreeze is not None:
        if isinstance(unfreeze, bool) or not isinstance(unfreeze, int) or unfreeze < 1:
            raise UserError(f"unfreeze_at_epoch must be a positive epoch number, got {unfreeze!r}",
                            key="model.unfreeze_at_epoch")
        if not frozen:
            raise UserError("unfreeze_at_epoch needs frozen stages (model.freeze)", key="model.unfreeze_at_epoch")
    return net
