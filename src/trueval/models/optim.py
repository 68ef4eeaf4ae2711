"""Optimizers and learning-rate schedules from the `optimizer` and `scheduler` config groups.

Optimizers are rows of a table (``OPTIMIZERS``: name, class, default options, fused support), as in
timm's optimizer registry: adding one is one row. Parameter groups come from ONE function,
``parameter_groups``: biases and norm weights out of weight decay (``filter_bias_and_bn``, timm's
rule), frozen parameters out of the optimizer, and per-stage learning rates from
``layer_decay`` (timm's layer-wise decay over the stages stem..head) and ``head_lr_scale``.
Schedules are torch's, sized from the Trainer so `onecycle` and `cosine` span exactly the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import timm.optim
import torch
from torch import nn

from trueval.core.errors import UserError


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: its class, the options it takes (with their defaults), fused-kernel support."""

    cls: Callable[..., torch.optim.Optimizer]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    fused: bool = False


_BETAS = {"betas": (0.9, 0.999), "eps": 1e-8}
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "adam": OptimizerSpec(torch.optim.Adam, _BETAS, fused=True),
    "adamw": OptimizerSpec(torch.optim.AdamW, _BETAS, fused=True),
    "sgd": OptimizerSpec(torch.optim.SGD, {"momentum": 0.9, "nesterov": True}, fused=True),
    "rmsprop": OptimizerSpec(torch.optim.RMSprop, {"momentum": 0.0, "alpha": 0.99, "eps": 1e-8}),
    "lamb": OptimizerSpec(timm.optim.Lamb, {"betas": (0.9, 0.999), "eps": 1e-6}),
}
# options every optimizer takes; they shape the parameter groups, not the optimizer's arguments
_GROUP_OPTIONS = ("filter_bias_and_bn", "layer_decay", "head_lr_scale")


def _no_weight_decay_names(model: nn.Module) -> set[str]:
    """Parameters a timm model asks to keep out of weight decay (position embeddings, ...)."""
    out: set[str] = set()
    for prefix, module in model.named_modules():
        hook = getattr(module, "no_weight_decay", None)
        if callable(hook):
            out |= {f"{prefix}.{n}" if prefix else n for n in hook()}
    return out


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, filter_bias_and_bn: bool = True,
                     layer_decay: float | None = None, head_lr_scale: float = 1.0,
                     include_frozen: bool = False) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one per (stage, decay or not), each with its own ``lr``.

    A stage k of n (stem = 0 .. head = n) trains at ``lr * layer_decay ** (n - k)``, the head at
    ``lr * head_lr_scale``. Frozen parameters (``requires_grad=False``) are left out unless
    ``include_frozen`` (gradual unfreezing: they join the schedule from the start, untouched while
    they have no gradient).
    """
    if layer_decay is not None and not 0 < float(layer_decay) <= 1:
        raise UserError(f"layer_decay must be in (0, 1], got {layer_decay}", key="optimizer.layer_decay")
    if not float(head_lr_scale) > 0:
        raise UserError(f"head_lr_scale must be positive, got {head_lr_scale}", key="optimizer.head_lr_scale")
    per_stage = layer_decay is not None or float(head_lr_scale) != 1.0
    scales: dict[str, float] = {}
    owner: dict[str, str] = {}
    if per_stage:
        from trueval.models.stages import HEAD, stage_names, stage_of

        names, owner = stage_names(model, key="optimizer.layer_decay"), stage_of(model, key="optimizer.layer_decay")
        last = len(names) - 1
        for index, stage in enumerate(names):
            scale = float(layer_decay) ** (last - index) if layer_decay is not None else 1.0
            scales[stage] = scale * (float(head_lr_scale) if stage == HEAD else 1.0)
    skip = _no_weight_decay_names(model) if filter_bias_and_bn else set()
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad and not include_frozen:
            continue
        decay = not (filter_bias_and_bn and (param.ndim <= 1 or name.endswith(".bias") or name in skip))
        stage = owner.get(name, "all")
        key = (stage, decay)
        if key not in groups:
            scale = scales.get(stage, 1.0)
            groups[key] = {"name": f"{stage}/{'decay' if decay else 'no_decay'}", "params": [],
                           "weight_decay": weight_decay if decay else 0.0, "lr": lr * scale, "lr_scale": scale}
        groups[key]["params"].append(param)
    if not groups:
        raise UserError("no trainable parameters: every stage is frozen", key="model.freeze")
    return list(groups.values())


def build_optimizer(cfg: Mapping[str, Any], model: nn.Module, include_frozen: bool = False) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.name`` over ``parameter_groups(model, ...)``."""
    opts = dict(cfg)
    name = str(opts.pop("name", "")).lower()
    spec = OPTIMIZERS.get(name)
    if spec is None:
        raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}", key="optimizer.name")
    lr = float(opts.pop("lr"))
    if not lr > 0:
        raise UserError(f"learning rate must be positive, got {lr}", key="optimizer.lr")
    weight_decay = float(opts.pop("weight_decay", 0.0))
    fused = opts.pop("fused", "auto")
    group_opts = {k: opts.pop(k) for k in _GROUP_OPTIONS if k in opts}
    unknown = sorted(set(opts) - set(spec.defaults))
    if unknown:
        raise UserError(f"unknown option(s) {unknown} for optimizer {name} (it takes {sorted(spec.defaults)})",
                        key=f"optimizer.{unknown[0]}")
    kwargs = {k: opts.get(k, v) for k, v in spec.defaults.items()}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
    if name == "sgd" and kwargs["nesterov"] and not float(kwargs["momentum"]) > 0:
        raise UserError("Nesterov momentum needs momentum > 0", key="optimizer.nesterov")
    groups = parameter_groups(model, lr, weight_decay,
                              filter_bias_and_bn=bool(group_opts.get("filter_bias_and_bn", True)),
                              layer_decay=group_opts.get("layer_decay"),
                              head_lr_scale=float(group_opts.get("head_lr_scale", 1.0) or 1.0),
                              include_frozen=include_frozen)
    on_cuda = all(p.is_cuda for g in groups for p in g["params"])
    if fused == "auto":
        fused = on_cuda and spec.fused
    if fused and on_cuda and spec.fused:
        kwargs["fused"] = True
    return spec.cls(groups, lr=lr, weight_decay=weight_decay, **kwargs)


def optimization(optimizer_cfg: Mapping[str, Any], scheduler_cfg: Mapping[str, Any], model: nn.Module,
                 total_steps: int, max_epochs: int | None, include_frozen: bool = False) -> Any:
    """What a LightningModule's ``configure_optimizers`` returns: the optimizer, with its schedule
    sized to ``total_steps`` optimizer steps over ``max_epochs`` epochs when one is configured."""
    optimizer = build_optimizer(optimizer_cfg, model, include_frozen=include_frozen)
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
