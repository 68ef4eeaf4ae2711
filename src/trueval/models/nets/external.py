"""Any torchvision or timm classification model by name, with its head resized to the classes.

Built with random weights, always (nothing is downloaded): pretrained weights come from a local file
through ``model.pretrained=<path>`` (``trueval.models.pretrained``), for these and our own networks
alike. ``dropout`` applies before the head, as for our networks.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from trueval.core.errors import UserError

log = logging.getLogger(__name__)


class ExternalNet(nn.Module):
    """A library model plus the input adaptation and ``forward_features`` our networks share."""

    def __init__(self, model: nn.Module, head_name: str, in_channels: int, model_channels: int,
                 features: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self.head_name = head_name
        # grayscale into an RGB model: repeat the channel, which keeps RGB pretrained weights usable
        self.repeat_channels = model_channels // in_channels if in_channels != model_channels else 1
        self._features = features

    def _adapt(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(1, self.repeat_channels, 1, 1) if self.repeat_channels > 1 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self._adapt(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: the input of the classification head, flattened."""
        x = self._adapt(x)
        if self._features is not None:
            return self._features(self.model, x)
        captured: list[torch.Tensor] = []
        head = self.model.get_submodule(self.head_name)
        handle = head.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
        try:
            self.model(x)
        finally:
            handle.remove()
        return captured[-1].flatten(1)


def _unknown_name(name: str, available: Sequence[str], library: str) -> UserError:
    close = difflib.get_close_matches(name, available, n=5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UserError(f"{library} has no classification model {name!r}{hint}", key="model.name")


def _check_channels(in_channels: int, model_channels: int, name: str) -> None:
    if in_channels != model_channels and model_channels % in_channels:
        raise UserError(f"the data has {in_channels} channels but {name} expects {model_channels}",
                        key="model.name")


def _first_conv_channels(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


def _last_linear(model: nn.Module) -> str:
    name = None
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            name = module_name
    if name is None:
        raise UserError(f"{type(model).__name__} has no linear classification head to resize", key="model.name")
    return name


def _check_dropout(dropout: float) -> float:
    if not 0 <= float(dropout) < 1:
        raise UserError(f"dropout must be in [0, 1), got {dropout}", key="model.dropout")
    return float(dropout)


def TorchvisionNet(in_shape: Sequence[int], num_classes: int, name: str, dropout: float = 0.0,
                   kwargs: Mapping[str, Any] | None = None) -> ExternalNet:
    """A torchvision classification model by name (``resnet18``, ``efficientnet_b0``, ...).

    ``kwargs`` go to the model builder (e.g. ``image_size`` for ViTs).
    """
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise _unknown_name(name, available, "torchvision")
    model = torchvision.models.get_model(name, weights=None, **dict(kwargs or {}))
    head_name = _last_linear(model)
    head = model.get_submodule(head_name)
    parent_name, _, attr = head_name.rpartition(".")
    new_head = nn.Linear(head.in_features, num_classes, bias=head.bias is not None)
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new_head)
    rate = _check_dropout(dropout)
    if rate:
        # dropout on the head's input, as a hook so the head keeps its name (and weight files still fit)
        new_head.register_forward_pre_hook(
            lambda module, args: (torch.nn.functional.dropout(args[0], rate, module.training),))
    model_channels = _first_conv_channels(model)
    _check_channels(in_shape[0], model_channels, name)
    return ExternalNet(model, head_name, in_shape[0], model_channels)


def _timm_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.forward_head(model.forward_features(x), pre_logits=True).flatten(1)


def TimmNet(in_shape: Sequence[int], num_classes: int, name: str, dropout: float = 0.0,
            kwargs: Mapping[str, Any] | None = None) -> ExternalNet:
    """A timm model by name (``resnet50``, ``convnext_tiny``, ``vit_small_patch16_224``, ...).

    ``kwargs`` go to ``timm.create_model`` (e.g. ``img_size``, ``drop_path_rate``); ``dropout`` is
    timm's ``drop_rate`` (before the head).
    """
    import timm

    if not timm.is_model(name):
        raise _unknown_name(name, timm.list_models(), "timm")
    extra = dict(kwargs or {})
    # grayscale goes through the 3-channel stem (channel repeated) so RGB weight files still fit
    if in_shape[0] not in (1, 3):
        extra.setdefault("in_chans", in_shape[0])
    extra.setdefault("drop_rate", _check_dropout(dropout))
    model = timm.create_model(name, pretrained=False, num_classes=num_classes, **extra)
    classifier = model.pretrained_cfg.get("classifier")
    # distilled models name two heads; the first is the classification head
    head_name = (classifier[0] if isinstance(classifier, (list, tuple)) else classifier) or _last_linear(model)
    model_channels = _first_conv_channels(model)
    _check_channels(in_shape[0], model_channels, name)
    return ExternalNet(model, head_name, in_shape[0], model_channels, features=_timm_features)
