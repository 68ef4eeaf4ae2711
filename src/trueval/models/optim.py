"""Optimizers and learning-rate schedules from the `optimizer` and `scheduler` config groups.

Optimizers come from timm's factory (it keeps biases and norm weights out of weight decay, as
most recipes do; ``filter_bias_and_bn: false`` decays every parameter, as airbench does); schedules are torch's, sized from the Trainer so `onecycle` and `cosine` span
exactly the run.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from timm.optim import create_optimizer_v2
from torch import nn

from trueval.core.errors import UserError

_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")


def build_optimizer(cfg: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.name``; ``cfg.lr`` and ``cfg.weight_decay`` for all of them."""
    opts = dict(cfg)
    name = str(opts.pop("name", "")).lower()
    if name not in _OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(_OPTIMIZERS)}", key="optimizer.name")
    lr = float(opts.pop("lr"))
    if not lr > 0:
        raise UserError(f"learning rate must be positive, got {lr}", key="optimizer.lr")
    weight_decay = float(opts.pop("weight_decay", 0.0))
    fused = opts.pop("fused", "auto")
    filter_bias_and_bn = bool(opts.pop("filter_bias_and_bn", True))
    on_cuda = all(p.is_cuda for p in model.parameters())
    if fused == "auto":
        fused = on_cuda and name != "rmsprop"
    extra: dict[str, Any] = {}
    if fused and on_cuda:
        extra["fused"] = True
    if name == "sgd":
        opt = "sgd" if opts.pop("nesterov", True) else "momentum"
        extra["momentum"] = float(opts.pop("momentum", 0.9))
    elif name == "rmsprop":
        # timm's "rmsprop" is torch.optim.RMSprop with timm's defaults; keep torch's semantics here
        opt = "rmsprop"
        extra["momentum"] = float(opts.pop("momentum", 0.0))
        extra["alpha"] = float(opts.pop("alpha", 0.99))
        extra["eps"] = float(opts.pop("eps", 1e-8))
    else:
        opt = name
        if "betas" in opts:
            extra["betas"] = tuple(float(b) for b in opts.pop("betas"))
        if "eps" in opts:
            extra["eps"] = float(opts.pop("eps"))
    if opts:
        raise UserError(f"unknown option(s) {sorted(opts)} for optimizer {name}", key=f"optimizer.{sorted(opts)[0]}")
    return create_optimizer_v2(model, opt=opt, lr=lr, weight_decay=weight_decay,
                               filter_bias_and_bn=filter_bias_and_bn, **extra)


def optimization(optimizer_cfg: Mapping[str, Any], scheduler_cfg: Mapping[str, Any], model: nn.Module,
                 total_steps: int, max_epochs: int | None) -> Any:
    """What a LightningModule's ``configure_optimizers`` returns: the optimizer, with its schedule
    sized to ``total_steps`` optimizer steps over ``max_epochs`` epochs when one is configured."""
    optimizer = build_optimizer(optimizer_cfg, model)
    epochs = max(1, max_epochs or 1)
    scheduler = build_scheduler(scheduler_cfg, optimizer, total_steps=total_steps,
                                steps_per_epoch=max(1, total_steps // epochs), max_epochs=epochs)
    if scheduler is None:
        return optimizer
    return {"optimizer": optimizer, "lr_scheduler": scheduler}


def build_scheduler(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer, total_steps: int,
                    steps_per_epoch: int, max_epochs: int) -> dict[str, Any] | None:
    """A Lightning lr-scheduler dict, or None for a constant learning rate."""
    opts = dict(cfg)
    name = str(opts.pop("name", "none")).lower()
    interval = str(opts.pop("interval", "epoch"))
    if name == "none":
        return None
    if name == "step":
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(opts.pop("step_size")), gamma=float(opts.pop("gamma")))
    elif name == "exponential":
        sched = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(opts.pop("gamma")))
    elif name == "onecycle":
        peaks = [g["lr"] for g in optimizer.param_groups]
        sched = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=max(1, total_steps), pct_start=float(opts.pop("pct_start", 0.25)),
            div_factor=float(opts.pop("div_factor", 25.0)), final_div_factor=float(opts.pop("final_div_factor", 1e4)),
            anneal_strategy=str(opts.pop("anneal_strategy", "cos")), cycle_momentum=bool(opts.pop("cycle_momentum", True)))
        interval = "step"
    elif name == "cosine":
        warmup_epochs = float(opts.pop("warmup_epochs", 0))
        min_ratio = float(opts.pop("min_lr_ratio", 0.0))
        per = steps_per_epoch if interval == "step" else 1
        total = max(1, total_steps if interval == "step" else max_epochs)
        warm = int(round(warmup_epochs * per))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    else:
        raise UserError(f"unknown scheduler {name!r}; choose none, step, exponential, cosine or onecycle", key="scheduler.name")
    if opts:
        raise UserError(f"unknown option(s) {sorted(opts)} for scheduler {name}", key=f"scheduler.{sorted(opts)[0]}")
    return {"scheduler": sched, "interval": interval, "frequency": 1}
