"""``model.pretrained=<path>``: start any classifier from local weights, offline, never running code.

The file may be a trueval checkpoint (``.ckpt``; a run directory picks its best checkpoint), a plain
``state_dict`` saved with ``torch.save``, a ``.safetensors`` file, or a torchvision/timm weight file
for the named architecture. Everything is read with ``torch.load(weights_only=True)`` (or
safetensors), so a pickle holding objects is refused. The head is re-initialised when its shape
differs (another class count) or when a trueval checkpoint names other classes, and the log says
so; any other missing, unexpected or mis-shaped tensor is refused, naming it, so a wrong file fails
loudly instead of training from a half-loaded backbone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trueval.core.errors import UserError

log = logging.getLogger("trueval")

# wrappers a checkpoint may put around the state dict, and prefixes its keys may carry
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")
_KEY_PREFIXES = ("", "module.", "model.", "net.", "net.model.", "backbone.", "_orig_mod.", "net._orig_mod.")
_EXAMPLES = 3


def resolve_path(path: str | Path, key: str) -> Path:
    """A weight file, or a trueval run directory (its best checkpoint, else ``checkpoints/last.ckpt``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        record = path / "metrics.json"
        best = None
        if record.is_file():
            try:
                best = json.loads(record.read_text()).get("best_checkpoint")
            except (json.JSONDecodeError, AttributeError):
                best = None
        for candidate in (best, path / "checkpoints" / "last.ckpt"):
            if candidate and Path(candidate).is_file():
                return Path(candidate)
        raise UserError("a run directory without a checkpoint (no best_checkpoint in metrics.json, no "
                        "checkpoints/last.ckpt)", key=key, path=str(path))
    if not path.is_file():
        raise UserError("weights file not found (pretrained weights are read only from a local file)",
                        key=key, path=str(path))
    return path


def read_weights(path: Path, key: str) -> Any:
    try:
        if path.suffix == ".safetensors":  # the format of weights published on the Hugging Face Hub
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt file or a pickle with arbitrary objects
        raise UserError(f"cannot read the weights file safely (torch.load weights_only=True / safetensors): "
                        f"{error}", key=key, path=str(path)) from None


def checkpoint_classes(raw: Any) -> list[str] | None:
    """The class names a trueval checkpoint was trained on (None for other files)."""
    if isinstance(raw, Mapping):
        names = (raw.get("hyper_parameters") or {}).get("class_names")
        if isinstance(names, Sequence) and not isinstance(names, str):
            return [str(n) for n in names]
    return None


def unwrap_state_dict(obj: Any, path: Path, key: str) -> dict[str, torch.Tensor]:
    while isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _STATE_DICT_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise UserError("the file holds no state dict (a mapping of parameter names to tensors)", key=key,
                        path=str(path))
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def strip_prefix(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Drop the wrapper prefix (``module.``, ``net.``, ...) that matches the most model keys."""

    def matches(prefix: str) -> int:
        return sum(1 for k in state if k.startswith(prefix) and k[len(prefix):] in expected)

    best = max(_KEY_PREFIXES, key=matches)
    return {k[len(best):]: v for k, v in state.items() if k.startswith(best)} if best else state


def load_state(model: nn.Module, state: dict[str, torch.Tensor], head_name: str, path: Path, key: str,
               reset_head: bool = False) -> list[str]:
    """Load ``state`` into ``model``; returns the head tensors left re-initialised.

    The head is left out when its shape differs or ``reset_head``; every other key must match.
    """
    expected = model.state_dict()
    state = strip_prefix(state, set(expected))
    head_keys = {k for k in expected if k.startswith(head_name + ".")}
    skipped_head = sorted(k for k in head_keys if k in state and (reset_head or state[k].shape != expected[k].shape))
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
        raise UserError(f"the weights do not match {type(model).__name__} (another architecture or depth?): "
                        + "; ".join(problems), key=key, path=str(path))
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped_head}, strict=False)
    return skipped_head


def load_pretrained(net: nn.Module, path: str | Path, class_names: Sequence[str] | None = None,
                    key: str = "model.pretrained") -> None:
    """Load local weights into a classifier built by ``trueval.models.factory``."""
    from trueval.models.nets.external import ExternalNet
    from trueval.models.stages import HEAD

    file = resolve_path(path, key)
    raw = read_weights(file, key)
    trained_on = checkpoint_classes(raw)
    other_classes = trained_on is not None and class_names is not None and list(class_names) != trained_on
    state = unwrap_state_dict(raw, file, key)
    if isinstance(net, ExternalNet):  # library weight files name the inner model's tensors
        target, head = net.model, net.head_name
    else:
        target, head = net, HEAD
    reset = load_state(target, state, head, file, key, reset_head=other_classes)
    if reset:
        why = (f"the checkpoint was trained on classes {trained_on}" if other_classes
               else "the file's head has another number of classes")
        log.warning("loaded %s; head re-initialised (%s): %s", file, why, ", ".join(reset))
    else:
        log.info("loaded %s (head included)", file)
