"""Which ``_target_``s a config may name: the one allow-list every instantiate goes through.

A checkpoint stores its run's config, and eval.py rebuilds the data and network from it. Hydra's
``instantiate`` calls whatever a ``_target_`` names, so a checkpoint that loads safely with
``torch.load(weights_only=True)`` could still run code through its config (``sympy.sympify`` with
a string argument is ``eval``). Objects are therefore built only from the classes of the
project's own config groups and of the Lightning callbacks/loggers, plus a few named factories:
the list below is what ``configs/`` uses (tests/tasks/test_allowed_targets.py checks every
``_target_`` there). A new network, datamodule or callback under these packages needs no edit
here; anything else is added to this file on purpose, never by a config.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Iterator, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf

from trueval.core.errors import UserError

# packages whose *classes* a config may construct (functions there are refused: only a class
# defined in one of these packages passes, not one a module merely imports, such as subprocess.Popen)
CLASS_PACKAGES = (
    "trueval.data.",
    "trueval.models.",
    "trueval.callbacks.",
    "trueval.sweep.",
    "pytorch_lightning.callbacks.",
    "pytorch_lightning.loggers.",
    "optuna.samplers.",  # hparams_search's sampler
)

# callables that are not classes of those packages, by exact name
FACTORIES = frozenset({
    "pytorch_lightning.Trainer",
    "trueval.models.detection.build_detector",
    "trueval.models.nets.external.TimmNet",  # timm.create_model / torchvision.models.get_model by name
    "trueval.models.nets.external.TorchvisionNet",
    "trueval.callbacks.progress.make_progress_bar",
    # experiment=transfer_*: a Hydra callback that fits the scikit-learn baselines when the sweep ends
    "trueval.tasks.transfer_study.TransferStudyCallback",
})


# Your own constructors, from your own shell (never from a file): comma-separated exact names, or
# packages ending in "." whose classes may be built, e.g. TRUEVAL_ALLOWED_TARGETS=mylab.callbacks.
# The test suite allows its helper callbacks this way.
EXTRA_ENV = "TRUEVAL_ALLOWED_TARGETS"


def _extra() -> tuple[tuple[str, ...], frozenset[str]]:
    """(extra class packages, extra exact names) from the environment."""
    items = [i.strip() for i in os.environ.get(EXTRA_ENV, "").split(",") if i.strip()]
    return tuple(i for i in items if i.endswith(".")), frozenset(i for i in items if not i.endswith("."))


def iter_leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(full config key, value)`` leaf of a config tree (mappings and lists)."""
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node, resolve=True)  # the values instantiate would see
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from iter_leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from iter_leaves(value, f"{prefix}[{i}]")
    else:
        yield prefix, node


def iter_targets(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(config key, _target_)`` in a config tree."""
    return ((key, value) for key, value in iter_leaves(node, prefix)
            if key == "_target_" or key.endswith("._target_"))


def check_target(target: Any, key: str, path: str | None = None) -> None:
    """Raise ``UserError`` naming ``key`` (and the file ``path`` it came from) unless ``target``
    is an allowed constructor."""
    name = target if isinstance(target, str) else \
        f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
    extra_packages, extra_names = _extra()
    packages = CLASS_PACKAGES + extra_packages
    if name in FACTORIES or name in extra_names:
        return
    # the string is checked before anything is imported: importing a module can run code too
    if not name.startswith(packages):
        raise UserError(_refusal(name), key=key, path=path)
    obj = target
    if isinstance(target, str):
        from hydra._internal.utils import _locate  # what instantiate itself resolves a target with

        try:
            obj = _locate(target)
        except Exception as exc:  # a missing module or attribute: the same message instantiate would give
            raise UserError(f"cannot find `{target}` ({str(exc).splitlines()[0]})", key=key, path=path) from None
    module = getattr(obj, "__module__", "") or ""
    if not inspect.isclass(obj) or not f"{module}.".startswith(packages):
        raise UserError(_refusal(name, f"it resolves to {module}.{getattr(obj, '__qualname__', type(obj).__name__)}"),
                        key=key, path=path)


def check_targets(node: Any, key: str = "", path: str | None = None) -> None:
    """``check_target`` for every ``_target_`` in ``node`` (whose own key is ``key``), reporting
    the first refused one's full key."""
    for full_key, target in iter_targets(node, key):
        check_target(target, full_key, path)


def _refusal(name: str, why: str = "") -> str:
    return (f"`{name}` is not a constructor trueval builds from a config{f' ({why})' if why else ''}. "
            "Only classes under " + ", ".join(p.rstrip(".") for p in CLASS_PACKAGES) + " and "
            + ", ".join(sorted(FACTORIES)) + f" are built; add your own to trueval/tasks/allowed_targets.py or name "
            f"them in the environment variable {EXTRA_ENV}.")
