"""Any torchvision or timm classification model by name, with its head resized to the classes.

Pretrained weights come only from a local file (``model.weights=<path>``: a ``.safetensors`` file or
a state dict read with ``torch.load(weights_only=True)``); nothing is downloaded unless ``model.download=true`` is set
explicitly. The head is sized for the task first, then the file is loaded: a head of another size
in the file (ImageNet's 1000 classes) is left out and stays freshly initialised, every other key must
match exactly, so a wrong file fails loudly instead of training from a half-loaded backbone.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trueval.core.errors import UserError

log = logging.getLogger(__name__)

# wrappers a checkpoint may put around the state dict, and prefixes its keys may carry
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")
_KEY_PREFIXES = ("", "module.", "model.", "net.", "net.model.", "backbone.", "_orig_mod.", "net._orig_mod.")
_EXAMPLES = 3


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


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _STATE_DICT_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise UserError("the file holds no state dict (a mapping of parameter names to tensors)",
                        key="model.weights", path=str(path))
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _strip_prefix(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Drop the wrapper prefix (``module.``, ``net.``, ...) that matches the most model keys."""

    def matches(prefix: str) -> int:
        return sum(1 for k in state if k.startswith(prefix) and k[len(prefix):] in expected)

    best = max(_KEY_PREFIXES, key=matches)
    return {k[len(best):]: v for k, v in state.items() if k.startswith(best)} if best else state


def load_local_weights(model: nn.Module, path: str | Path, head_name: str) -> None:
    """Load a local state dict into ``model``; a head of another size is left out (re-initialised).

    Raises UserError naming ``model.weights`` when the file is missing, unreadable, or its keys or
    shapes do not match the model.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError("weights file not found (pretrained weights are read only from a local file)",
                        key="model.weights", path=str(path))
    try:
        if path.suffix == ".safetensors":  # the format of weights published on the Hugging Face Hub
            from safetensors.torch import load_file

            raw = load_file(str(path), device="cpu")
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt file or a pickle with arbitrary objects
        raise UserError(f"cannot read the weights file safely (torch.load weights_only=True / safetensors): "
                        f"{error}", key="model.weights", path=str(path)) from None
    expected = model.state_dict()
    state = _strip_prefix(_unwrap_state_dict(raw, path), set(expected))
    head_keys = {k for k in expected if k.startswith(head_name + ".")}
    skipped_head = sorted(k for k in head_keys if k in state and state[k].shape != expected[k].shape)
    missing = sorted(k for k in expected if k not in state and k not in head_keys
                     and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in expected)
    wrong_shape = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                         for k in state if k in expected and k not in head_keys
                         and state[k].shape != expected[k].shape)
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong_shape)):
        if keys:
            problems.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:_EXAMPLES])})")
    if problems:
        raise UserError(f"the weights do not match {type(model).__name__}: " + "; ".join(problems),
                        key="model.weights", path=str(path))
    loadable = {k: v for k, v in state.items() if k not in skipped_head}
    model.load_state_dict(loadable, strict=False)
    if skipped_head:
        log.info("loaded %s; head %s re-initialised for the new number of classes", path, head_name)
    else:
        log.info("loaded %s (head included)", path)


def _check_source(weights: str | None, download: bool) -> None:
    if weights and download:
        raise UserError("set either model.weights (a local file) or model.download=true, not both",
                        key="model.download")


def TorchvisionNet(in_shape: Sequence[int], num_classes: int, name: str, weights: str | None = None,
                   download: bool = False, kwargs: Mapping[str, Any] | None = None) -> ExternalNet:
    """A torchvision classification model by name (``resnet18``, ``efficientnet_b0``, ...).

    ``download=true`` opts in to torchvision's default pretrained weights (a download);
    ``kwargs`` go to the model builder (e.g. ``image_size`` for ViTs).
    """
    import torchvision

    _check_source(weights, download)
    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise _unknown_name(name, available, "torchvision")
    model = torchvision.models.get_model(name, weights="DEFAULT" if download else None, **dict(kwargs or {}))
    head_name = _last_linear(model)
    head = model.get_submodule(head_name)
    parent_name, _, attr = head_name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr,
            nn.Linear(head.in_features, num_classes, bias=head.bias is not None))
    if weights:
        load_local_weights(model, weights, head_name)
    model_channels = _first_conv_channels(model)
    _check_channels(in_shape[0], model_channels, name)
    return ExternalNet(model, head_name, in_shape[0], model_channels)


def _timm_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.forward_head(model.forward_features(x), pre_logits=True).flatten(1)


def TimmNet(in_shape: Sequence[int], num_classes: int, name: str, weights: str | None = None,
            download: bool = False, kwargs: Mapping[str, Any] | None = None) -> ExternalNet:
    """A timm model by name (``resnet50``, ``convnext_tiny``, ``vit_small_patch16_224``, ...).

    ``download=true`` opts in to timm's pretrained weights (a download from the Hugging Face Hub);
    ``kwargs`` go to ``timm.create_model`` (e.g. ``img_size``, ``drop_rate``).
    """
    import timm

    _check_source(weights, download)
    if not timm.is_model(name):
        raise _unknown_name(name, timm.list_models(), "timm")
    extra = dict(kwargs or {})
    # grayscale goes through the 3-channel stem (channel repeated) so RGB weight files still fit
    if in_shape[0] not in (1, 3):
        extra.setdefault("in_chans", in_shape[0])
    model = timm.create_model(name, pretrained=download, num_classes=num_classes, **extra)
    classifier = model.pretrained_cfg.get("classifier")
    # distilled models name two heads; the first is the classification head
    head_name = (classifier[0] if isinstance(classifier, (list, tuple)) else classifier) or _last_linear(model)
    if weights:
        load_local_weights(model, weights, head_name)
    model_channels = _first_conv_channels(model)
    _check_channels(in_shape[0], model_channels, name)
    return ExternalNet(model, head_name, in_shape[0], model_channels, features=_timm_features)
