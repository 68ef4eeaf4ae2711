"""Objects built from the composed config: DataModule, LightningModule, callbacks, loggers, Trainer.

Shared by train, eval and audit so that the three read the same config keys the same way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

from omegaconf import DictConfig, OmegaConf

from trueval.core.errors import UserError
from trueval.tasks.allowed_targets import check_targets

if TYPE_CHECKING:  # imported where used: the audit builds its data with neither
    import pytorch_lightning as pl
    import torch

log = logging.getLogger("trueval")


def _instantiate(node: DictConfig | Mapping[str, Any], key: str, *, target: str | None = None, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, with bad targets and arguments reported as the config key.

    Every object built from a config comes through here, so the allow-list of constructors is
    checked here once (a checkpoint's stored config is data and must not choose what runs).
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if target is not None:  # another class of the same module: the Lightning-free dataset
        node = {**OmegaConf.to_container(node, resolve=True), "_target_": target}
    check_targets(node, key)
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        raise UserError(str(exc).strip().splitlines()[0] + (f" ({cause})" if cause else ""), key=key) from exc


def build_datamodule(data_cfg: DictConfig, lightning: bool = True) -> pl.LightningDataModule:
    """The DataModule of `data`; ``lightning=False`` (the audit): the same dataset without Lightning
    when its module has one (``trueval.data.base.plain_class``), so that neither Lightning nor torch
    is imported to read splits and run the gate."""
    if not lightning:
        from trueval.data.base import plain_class

        return _instantiate(data_cfg, "data", target=plain_class(str(data_cfg.get("_target_"))),
                            _recursive_=False, _convert_="all")
    import pytorch_lightning as pl

    dm = _instantiate(data_cfg, "data", _recursive_=False, _convert_="all")
    if not isinstance(dm, pl.LightningDataModule):
        raise UserError(f"data._target_ must build a LightningDataModule, got {type(dm).__name__}", key="data._target_")
    return dm


def network_config(model_cfg: DictConfig | Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split the `model` group into the network's arguments and the module options (compile, ...)."""
    from trueval.models.factory import split_model_config

    return split_model_config(model_cfg)


def build_network(model_cfg: DictConfig | Mapping[str, Any], in_shape: tuple[int, ...], num_classes: int,
                  class_names: list[str] | None = None, load_weights: bool = True) -> torch.nn.Module:
    """The network, started from ``model.pretrained`` (unless ``load_weights`` is off) and frozen."""
    from trueval.models.factory import prepare_network

    net_cfg, options = network_config(model_cfg)
    net = _instantiate(net_cfg, "model", in_shape=tuple(in_shape), num_classes=num_classes)
    return prepare_network(net, options, class_names, load_weights=load_weights)


def _channels_last(option: Any, net: torch.nn.Module, accelerator_is_cuda: bool) -> bool:
    import torch

    if option == "auto":
        return accelerator_is_cuda and any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    return bool(option)


def build_module(cfg: DictConfig, dm: Any, output_dir: str | None, cuda: bool,
                 load_weights: bool = True) -> pl.LightningModule:
    """The LightningModule for the DataModule's task (classification or detection).

    ``load_weights=False`` (eval): pretrained files are not read, the checkpoint replaces them.
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    if getattr(dm, "task", "classification") == "detection":
        from trueval.models.detection import build_detection_module

        if str(cfg.optimized_metric).startswith(("val/acc", "test/acc")):
            raise UserError(f"{cfg.optimized_metric} is a classification metric; detection logs val/map50_best "
                            "(optimized_metric=val/map50_best)", key="optimized_metric")

        return build_detection_module(cfg, dm, load_weights=load_weights)
    from trueval.models.classifier import ClassifierModule

    net = build_network(cfg.model, dm.in_shape, dm.num_classes, list(dm.class_names), load_weights=load_weights)
    _, extras = network_config(cfg.model)
    weights = cfg.loss.class_weights
    if weights == "balanced":
        weights = dm.class_weights()
    elif weights is not None:
        weights = [float(w) for w in weights]
        if len(weights) != dm.num_classes:
            raise UserError(f"{len(weights)} class weights for {dm.num_classes} classes", key="loss.class_weights")
    hparams = {"cfg": container, "task": "classification", "num_classes": dm.num_classes,
               "class_names": list(dm.class_names), "in_shape": list(dm.in_shape),
               "mean": list(dm.mean), "std": list(dm.std)}
    return ClassifierModule(
        net=net, num_classes=dm.num_classes, class_names=dm.class_names,
        optimizer=container["optimizer"], scheduler=container["scheduler"],
        label_smoothing=cfg.loss.label_smoothing, class_weights=weights, tta_hflip=cfg.tta.hflip, tta_translate=cfg.tta.get("translate", 0) or 0,
        compile=extras.get("compile", False), cuda_graph=bool(extras.get("cuda_graph", False)),
        channels_last=_channels_last(extras.get("channels_last", "auto"), net, cuda),
        hparams=hparams, output_dir=output_dir, steps_per_call=steps_per_call(cfg),
        gradient_clip_val=cfg.trainer.get("gradient_clip_val"),
        gradient_clip_algorithm=cfg.trainer.get("gradient_clip_algorithm"),
        unfreeze_at_epoch=extras.get("unfreeze_at_epoch"), mixup=cfg.get("mixup"),
        loss=cfg.loss.get("name", "ce"), focal_gamma=cfg.loss.get("gamma", 2.0),
    )


def steps_per_call(cfg: DictConfig) -> int:
    """``data.steps_per_call`` (1 when the data group has no such key, as detection's)."""
    value = cfg.data.get("steps_per_call", 1) if "data" in cfg else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"steps_per_call must be a positive integer, got {value!r}", key="data.steps_per_call")
    if value > 1 and int(cfg.trainer.get("accumulate_grad_batches", 1) or 1) != 1:
        raise UserError("data.steps_per_call > 1 takes one optimizer step per batch; it cannot be combined with "
                        "trainer.accumulate_grad_batches (set one of them to 1)", key="data.steps_per_call")
    return value


def build_callbacks(cfg: DictConfig | None) -> list[pl.Callback]:
    callbacks: list[pl.Callback] = []
    for key, node in (cfg or {}).items():
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise UserError("each callback needs a _target_", key=f"callbacks.{key}")
        callbacks.append(_instantiate(node, f"callbacks.{key}"))
    return callbacks


def build_loggers(cfg: DictConfig | None) -> list[Any]:
    loggers = []
    for key, node in (cfg or {}).items():
        if node is None:
            continue
        loggers.append(_instantiate(node, f"logger.{key}"))
    return loggers


def build_trainer(cfg: DictConfig, callbacks: list[pl.Callback], loggers: list[Any], **overrides: Any) -> pl.Trainer:
    import pytorch_lightning as pl
    import torch

    has_bar = any(isinstance(c, pl.callbacks.ProgressBar) for c in callbacks)
    if not loggers:  # Lightning refuses a learning-rate monitor with nothing to log to
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    if not any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks):
        overrides.setdefault("enable_checkpointing", False)  # else Lightning adds its own checkpointing
    if accelerator_is_cuda(cfg.trainer):
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for fp32 layers
    if steps_per_call(cfg) > 1:
        # the module clips itself (manual optimization); Lightning refuses Trainer-side clipping then
        overrides.setdefault("gradient_clip_val", None)
    return _instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False,
                        enable_progress_bar=has_bar, **overrides)


def check_accelerator(trainer_cfg: DictConfig) -> None:
    """Refuse a config that asks for a GPU torch cannot see before the data set-up, not minutes later
    when Lightning builds the Trainer ("No supported gpu backend found")."""
    if not _asks_for_gpu(trainer_cfg):
        return
    import torch

    if not torch.cuda.is_available():
        raise UserError("this config asks for a GPU (trainer=gpu, also chosen by experiments such as "
                        "cifar10_speedrun and he2015_cifar10) and torch sees no CUDA device here: add trainer=cpu "
                        "to run it on this machine (slowly), or run it where a CUDA GPU is visible",
                        key="trainer.accelerator")


def _asks_for_gpu(trainer_cfg: DictConfig) -> bool:
    return str(trainer_cfg.get("accelerator", "auto")) in ("gpu", "cuda")


def accelerator_is_cuda(trainer_cfg: DictConfig) -> bool:
    import torch

    acc = str(trainer_cfg.get("accelerator", "auto"))
    return _asks_for_gpu(trainer_cfg) or (acc == "auto" and torch.cuda.is_available())
