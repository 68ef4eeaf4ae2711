"""The train task: gate the data, fit, test the best checkpoint, record everything."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from trueval.callbacks.checkpoint import AtomicCheckpointIO
from trueval.callbacks.checkpoint_data import TruevalCheckpointData
from trueval.callbacks.interruption import SignalGuard, StopOnSignal
from trueval.callbacks.resume_state import ExactResume
from trueval.core.errors import UserError
from trueval.tasks import artifacts
from trueval.tasks.builders import (accelerator_is_cuda, build_callbacks, build_datamodule, build_loggers,
                                    build_module, build_trainer, check_accelerator)
from trueval.tasks.runner import is_rank_zero
from trueval.tasks.uncertainty import record_test_uncertainty
from trueval.tasks.resume import prepare_resume
from trueval.tasks.runner import continues_run_dir, is_rank_zero
from trueval.utils.run_record import RunRecord

log = logging.getLogger("trueval")


def train(cfg: DictConfig, record: RunRecord | None) -> float:
    """Returns ``cfg.optimized_metric`` for sweeps (NaN when it was not logged)."""
    started = time.time()
    check_accelerator(cfg.trainer)
    run_dir = Path(cfg.paths.output_dir)
    if is_rank_zero():
        artifacts.write_config(cfg, run_dir)
    pl.seed_everything(cfg.seed, workers=True)

    dm = build_datamodule(cfg.data)
    setup_started = time.time()
    try:
        dm.setup("fit")
    finally:
        # the leak report is written even when the gate refuses the split
        if is_rank_zero():
            artifacts.write_integrity(dm, run_dir, record)
    setup_seconds = time.time() - setup_started
    if cfg.get("test", True) and "test" not in getattr(dm, "sets", {"test": None}):
        # refused before fitting, not at the test step after every epoch (a YOLO yaml may name no test split)
        raise UserError("the dataset has no test split (a YOLO yaml without `test:`); run with test=false "
                        "to train and validate only", key="test")
    # an earlier attempt in this run directory (resume=, a re-run sweep): continue from its last.ckpt
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is None and continues_run_dir(cfg) and cfg.get("train", True):
        ckpt_path = prepare_resume(cfg, run_dir, clean=is_rank_zero())
        if record is not None:
            record.update(resumed_from=ckpt_path)
    cuda = accelerator_is_cuda(cfg.trainer)
    module = build_module(cfg, dm, str(run_dir), cuda)
    if is_rank_zero():
        artifacts.log_network(module, dm, record)

    callbacks = build_callbacks(cfg.get("callbacks")) + [
        TruevalCheckpointData(artifacts.checkpoint_extra(dm)), ExactResume(cfg.seed), StopOnSignal(SignalGuard.active)]
    loggers = build_loggers(cfg.get("logger"))
    trainer = build_trainer(cfg, callbacks, loggers, plugins=[AtomicCheckpointIO()])
    if record is not None and record.data.get("leaky"):
        artifacts.flag_leaky(loggers, dm.leak_report)

    metrics: dict[str, Any] = {}
    if cfg.get("train", True):
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
        metrics.update(artifacts.scalars(trainer.callback_metrics))
    best = artifacts.best_checkpoint(trainer)
    if record is not None:
        record.update(best_checkpoint=best)

    if cfg.get("test", True) and not trainer.fast_dev_run:
        test_trainer = trainer
        if trainer.world_size > 1:
            # test once on the full test set in one process (a DistributedSampler pads and duplicates)
            if not trainer.is_global_zero:
                return math.nan
            test_trainer = build_trainer(cfg, [c for c in callbacks if isinstance(c, pl.callbacks.ProgressBar)],
                                         loggers, devices=1, num_nodes=1, strategy="auto")
        # the best checkpoint when one was saved, the final weights otherwise
        test_trainer.test(module, datamodule=dm, ckpt_path=best or None, weights_only=True, verbose=False)
        metrics.update(artifacts.scalars(test_trainer.callback_metrics, prefix="test/"))
        record_test_uncertainty(cfg, module, dm, run_dir, record)

    if not is_rank_zero():
        return math.nan
    metrics.update({k: v for k, v in artifacts.scalars(trainer.callback_metrics).items()
                    if k.startswith("time/") or k.startswith("model/")})
    metrics["time/run_seconds"] = round(time.time() - started, 3)
    # reading, decoding, the integrity gate and normalisation statistics: the cold-start cost
    metrics["time/data_setup_seconds"] = round(setup_seconds, 3)
    artifacts.finish(cfg, record, metrics, loggers, best)
    value = metrics.get(cfg.optimized_metric)
    return float(value) if value is not None else math.nan
