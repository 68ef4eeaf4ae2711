"""The eval task: rebuild a run from its checkpoint alone and report its test metrics.

The checkpoint carries the run's config and the fingerprint of its training split, so eval can
refuse (policy ``data.integrity.policy``) to report numbers on test images the model trained on.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from trueval.tasks import artifacts
from trueval.tasks.uncertainty import record_test_uncertainty
from trueval.tasks.builders import (accelerator_is_cuda, build_callbacks, build_datamodule, build_loggers,
                                    build_module, build_trainer, check_accelerator)
from trueval.tasks.checkpoints import check_fits_data, check_weights_fit, checkpoint_file, load_checkpoint
from trueval.tasks.knobs import check_knobs
from trueval.core.errors import LeakError
from trueval.utils.run_record import RunRecord

log = logging.getLogger("trueval")


def _check_test_overlap(dm: Any, ckpt: dict[str, Any], record: RunRecord | None) -> None:
    """Refuse, flag or drop test samples that were in the checkpoint's training data."""
    from trueval.integrity import match_fingerprint

    fingerprint = (ckpt.get("trueval") or {}).get("train_fingerprint")
    if not fingerprint:
        log.warning("checkpoint has no training fingerprint: cannot check the test split against it")
        return
    settings = dm.integrity_settings()
    test = dm.sets["test"]
    match_settings, check = settings, "exact and near copies (training fingerprint)"
    trained_on = fingerprint.get("manifest_digest")
    if trained_on is not None and (getattr(dm, "manifest", None) or {}).get("train_digest") == trained_on:
        # this run's own gate has just compared these test images with exactly the checkpoint's
        # training split, at full resolution, and applied the policy: its answer stands. The
        # fingerprint's 16-px thumbnails would only add look-alikes (on CIFAR-10 they flagged 452
        # test images the full-resolution gate had cleared), so only exact copies are checked here.
        match_settings = dataclasses.replace(settings, near=False)
        check = "exact copies (the gate compared this test split with the same training split)"
        log.info("test split: the integrity gate compared it with the checkpoint's own training split "
                 "(same content); checking exact copies against the fingerprint")
    overlap = sorted(set(match_fingerprint(fingerprint, test, match_settings,
                                           cache_dir=getattr(dm, "_gate_cache", lambda: None)())))
    if record is not None:
        record.update(eval_overlap_check=check)
    if not overlap:
        log.info("test split: none of its %d samples were in the checkpoint's training data", len(test))
        return
    message = f"test: {len(overlap)} of {len(test)} samples were in this checkpoint's training data"
    if record is not None:
        record.update(eval_overlap={"count": len(overlap), "indices": overlap[:1000], "policy": settings.policy})
    if settings.policy == "fail":
        raise LeakError(message + " (set +data.integrity.policy=warn or drop to evaluate anyway)",
                        key="data.integrity.policy")
    if settings.policy == "drop":
        keep = [i for i in range(len(test)) if i not in set(overlap)]
        dm.sets["test"] = test.subset(keep)
        log.warning("%s: dropped them, evaluating on the other %d", message, len(keep))
    else:
        log.warning("%s: LEAKY evaluation (policy warn)", message)
        if record is not None:
            record.update(leaky=True)


def evaluate(cfg: DictConfig, record: RunRecord | None) -> float:
    check_accelerator(cfg.trainer)
    ckpt_file = checkpoint_file(cfg.get("ckpt_path"))
    ckpt = load_checkpoint(ckpt_file)
    run_dir = Path(cfg.paths.output_dir)
    artifacts.write_config(cfg, run_dir)
    train_cfg = OmegaConf.create(ckpt["hyper_parameters"]["cfg"])
    overrides = cfg.get("data") or {}
    with _open(train_cfg):
        train_cfg.data = OmegaConf.merge(train_cfg.data, overrides)
        tta = dict(train_cfg.get("tta") or {})
        for key, cast in (("hflip", bool), ("translate", int)):
            if cfg.get("tta", {}).get(key) is not None:
                tta[key] = cast(cfg.tta[key])
        train_cfg.tta = tta
        if "model" in train_cfg:
            # the weights come from the checkpoint: never re-read (or download) model.weights
            for key, off in (("weights", None), ("weights_backbone", None), ("download", False)):
                if key in train_cfg.model:
                    train_cfg.model[key] = off
    check_knobs(train_cfg)  # the data overrides merged over the checkpoint's config
    dm = build_datamodule(train_cfg.data)
    try:
        dm.setup("test")
    finally:
        artifacts.write_integrity(dm, run_dir, record)
    is_detection = getattr(dm, "task", "classification") == "detection"
    if not is_detection:
        _as_trained(dm, ckpt["hyper_parameters"], user_size=overrides.get("image_size"))
    check_fits_data(ckpt["hyper_parameters"], dm.class_names, None if is_detection else dm.in_shape,
                    str(ckpt_file))
    _check_test_overlap(dm, ckpt, record)
    if is_detection:
        from trueval.models.detection import build_detection_module

        # the weights come from the checkpoint: do not re-read model.weights files
        module = build_detection_module(train_cfg, dm, load_weights=False)
    else:
        # the checkpoint's weights replace model.pretrained: do not re-read that file
        module = build_module(train_cfg, dm, str(run_dir), accelerator_is_cuda(cfg.trainer), load_weights=False)
    check_weights_fit(module, ckpt["state_dict"], str(ckpt_file))
    module.load_state_dict(ckpt["state_dict"])
    callbacks = build_callbacks(cfg.get("callbacks"))
    loggers = build_loggers(cfg.get("logger"))
    trainer = build_trainer(cfg, callbacks, loggers)
    trainer.test(module, datamodule=dm, verbose=False)  # our own table prints the metrics once
    metrics = artifacts.scalars(trainer.callback_metrics, prefix="test/")
    record_test_uncertainty(train_cfg, module, dm, run_dir, record)  # the training run's bootstrap settings
    if record is not None:
        record.update(checkpoint=str(ckpt_file.resolve()), train_digest=(ckpt.get("trueval") or {}).get("train_digest"))
    artifacts.finish(cfg, record, metrics, loggers, str(ckpt_file))
    value = metrics.get(cfg.get("optimized_metric", "test/acc"))
    return float(value) if value is not None else math.nan


def _as_trained(dm: Any, hparams: Mapping[str, Any], user_size: Any) -> None:
    """Prepare the data as the network was trained: normalised by the training run's statistics (not
    those of the train split this config reads now, which differ when the checkpoint is scored on
    another dataset), and, for images of mixed sizes whose size the training run chose itself (the
    median side), resized to the checkpoint's size rather than this data's median."""
    if hparams.get("mean") is not None and hparams.get("std") is not None:
        dm.mean, dm.std = tuple(float(v) for v in hparams["mean"]), tuple(float(v) for v in hparams["std"])
    shape = hparams.get("in_shape")
    if user_size is not None or shape is None or int(shape[1]) != int(shape[2]):
        return
    if dm.sets["train"].images is None and dm.training_size not in (None, int(shape[1])):
        log.info("evaluating at %dx%d, the size the checkpoint was trained at (this data's median side is %d; "
                 "+data.image_size=<n> chooses another)", int(shape[1]), int(shape[1]), dm.training_size)
        dm.training_size = int(shape[1])


class _open:
    """Temporarily lift OmegaConf's struct flag so merged overrides may add keys."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def __enter__(self) -> DictConfig:
        OmegaConf.set_struct(self.cfg, False)
        return self.cfg

    def __exit__(self, *exc: Any) -> None:
        OmegaConf.set_struct(self.cfg, True)
