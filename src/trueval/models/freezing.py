"""``model.freeze``: stages whose parameters do not train, and whose BatchNorm statistics stay put.

A frozen parameter has ``requires_grad=False``, so the optimizer's parameter groups leave it out
(``trueval.models.optim.parameter_groups``) and it is bitwise unchanged after training. A frozen
BatchNorm would still update its running mean/variance in train mode, so ``keep_frozen_norms_eval``
puts every norm layer whose affine parameters are all frozen back in eval mode; the module calls it
each time Lightning switches the network to train mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from torch import nn

from trueval.models.stages import resolve_stages, stage_of

log = logging.getLogger("trueval")

_NORMS = (nn.modules.batchnorm._BatchNorm,)


def freeze_stages(net: nn.Module, spec: str | Iterable[str] | None) -> list[str]:
    """Freeze the stages ``spec`` names (none, all_but_head, [stem, stage1, ...]); returns them."""
    stages = resolve_stages(spec, net)
    if not stages:
        return []
    owner = stage_of(net)
    count = 0
    for name, param in net.named_parameters():
        if owner[name] in stages:
            param.requires_grad_(False)
            count += param.numel()
    log.info("frozen stages %s (%d parameters); their BatchNorm statistics are frozen too", stages, count)
    return stages


def unfreeze_all(net: nn.Module) -> int:
    """Make every parameter trainable again (gradual unfreezing); returns how many were frozen."""
    thawed = [p for p in net.parameters() if not p.requires_grad]
    for param in thawed:
        param.requires_grad_(True)
    return len(thawed)


def frozen_norms(net: nn.Module) -> list[nn.Module]:
    """Norm layers with affine parameters, all of them frozen."""
    out = []
    for module in net.modules():
        if isinstance(module, _NORMS):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                out.append(module)
    return out


def keep_frozen_norms_eval(net: nn.Module) -> None:
    """Frozen norm layers normalise with their stored statistics and never update them."""
    for module in frozen_norms(net):
        module.eval()
