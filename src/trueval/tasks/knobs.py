"""Types and ranges of the canonical config knobs, checked once before anything is built.

Hydra passes a command-line value on as whatever YAML makes of it: ``optimizer.lr=abc`` is the
string ``'abc'``, and without this check it fails deep inside timm, torch or Lightning as a
``ValueError`` traceback, sometimes after the integrity gate has run for minutes. One table of the
knobs every run reads, one message naming the key. Keys a config does not have are skipped; the
builders still check what only they can know (class weights against the number of classes).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf

from trueval.core.errors import UserError


@dataclass(frozen=True)
class Knob:
    """A number (``int`` or ``float``) or ``bool``, within ``[lo, hi]`` (``lo_open``: ``> lo``)."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    none: bool = False          # null allowed
    words: tuple[str, ...] = ()  # strings allowed as they are ("auto")
    items: int = 0              # a list of this many such values (optimizer.betas)


INT, BOOL = "int", "bool"
FLOAT = "float"
COUNT_OR_FRACTION = "count_or_fraction"  # Lightning's limit_*_batches: an int count or a 0..1 float

KNOBS: dict[str, Knob] = {
    "seed": Knob(INT, lo=0, hi=2**32 - 1, none=True),
    "optimizer.lr": Knob(FLOAT, lo=0, lo_open=True),
    "optimizer.weight_decay": Knob(FLOAT, lo=0),
    "optimizer.momentum": Knob(FLOAT, lo=0, hi=1),
    "optimizer.alpha": Knob(FLOAT, lo=0),
    "optimizer.eps": Knob(FLOAT, lo=0),
    "optimizer.betas": Knob(FLOAT, lo=0, hi=1, hi_open=True, items=2),
    "optimizer.nesterov": Knob(BOOL),
    "optimizer.filter_bias_and_bn": Knob(BOOL),
    "optimizer.fused": Knob(BOOL, words=("auto",)),
    "scheduler.step_size": Knob(INT, lo=1),
    "scheduler.gamma": Knob(FLOAT, lo=0, lo_open=True),
    "scheduler.pct_start": Knob(FLOAT, lo=0, hi=1, lo_open=True, hi_open=True),
    "scheduler.div_factor": Knob(FLOAT, lo=0, lo_open=True),
    "scheduler.final_div_factor": Knob(FLOAT, lo=0, lo_open=True),
    "scheduler.warmup_epochs": Knob(FLOAT, lo=0),
    "scheduler.min_lr_ratio": Knob(FLOAT, lo=0, hi=1),
    "data.batch_size": Knob(INT, lo=1),
    "data.eval_batch_size": Knob(INT, lo=1),
    "data.num_workers": Knob(INT, lo=0, words=("auto",)),
    "data.fraction": Knob(FLOAT, lo=0, hi=1, lo_open=True),
    "data.val_fraction": Knob(FLOAT, lo=0, hi=1, hi_open=True),
    "data.image_size": Knob(INT, lo=1, none=True),
    "data.seed": Knob(INT, lo=0, hi=2**32 - 1, none=True),
    "loss.label_smoothing": Knob(FLOAT, lo=0, hi=1, hi_open=True),
    "tta.hflip": Knob(BOOL, none=True),  # null in eval.yaml: keep the checkpoint's
    "tta.translate": Knob(INT, lo=0, none=True),
    "trainer.max_epochs": Knob(INT, lo=-1, none=True),
    "trainer.min_epochs": Knob(INT, lo=0, none=True),
    "trainer.max_steps": Knob(INT, lo=-1),
    "trainer.accumulate_grad_batches": Knob(INT, lo=1),
    "trainer.check_val_every_n_epoch": Knob(INT, lo=1, none=True),
    "trainer.log_every_n_steps": Knob(INT, lo=1, none=True),
    "trainer.gradient_clip_val": Knob(FLOAT, lo=0, none=True),
    "trainer.limit_train_batches": Knob(COUNT_OR_FRACTION, lo=0, none=True),
    "trainer.limit_val_batches": Knob(COUNT_OR_FRACTION, lo=0, none=True),
    "trainer.limit_test_batches": Knob(COUNT_OR_FRACTION, lo=0, none=True),
}


# keys a config leaves to the command line (``???``), and what to write there
REQUIRED = {
    "data.yaml_path": "set the dataset's yaml: data.yaml_path=<data.yaml> (Ultralytics layout; with "
                      "data.archive=<.tar.gz>, the yaml's path once unpacked)",
    "ckpt_path": "no checkpoint given: python eval.py ckpt_path=<file.ckpt or run directory>",
}


def check_required(cfg: DictConfig) -> None:
    """Raise ``UserError`` naming the first key the composed config left unset (``???``).

    Without this, omegaconf's ``MissingMandatoryValue`` surfaced where the value was first read:
    inside the audit it was reported as a crash (exit 4), elsewhere it reached Hydra (exit 1, the
    audit's code for a leak)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        raise UserError(REQUIRED.get(key, f"is required and not set: add {key}=<value> to the command line"),
                        key=key)


def check_knobs(cfg: DictConfig | dict[str, Any]) -> None:
    """Raise ``UserError`` naming the first knob of ``cfg`` that is unset (``???``) or whose value has
    the wrong type or range."""
    if isinstance(cfg, DictConfig):
        check_required(cfg)
    for key, knob in KNOBS.items():
        value = OmegaConf.select(cfg, key, default=_MISSING) if isinstance(cfg, DictConfig) else _get(cfg, key)
        if value is _MISSING:
            continue
        if knob.items:
            if not isinstance(value, (list, tuple, ListConfig)) or len(value) != knob.items:
                raise UserError(f"must be a list of {knob.items} numbers, got {value!r}", key=key)
            for item in value:
                _check(item, knob, key)
        else:
            _check(value, knob, key)


def with_checked_knobs(task: Callable[[DictConfig, Any], float]) -> Callable[[DictConfig, Any], float]:
    """``task`` with ``check_knobs`` first, so a bad value fails in the run record before any work."""

    @functools.wraps(task)
    def run(cfg: DictConfig, record: Any) -> float:
        check_knobs(cfg)
        return task(cfg, record)

    return run


class _Missing:
    pass


_MISSING = _Missing()


def _get(cfg: dict[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _check(value: Any, knob: Knob, key: str) -> None:
    if value is None:
        if knob.none:
            return
        raise UserError(f"must be {_describe(knob)}, got null", key=key)
    if isinstance(value, str) and value in knob.words:
        return
    number = _as_number(value, knob)
    if number is None:
        raise UserError(f"must be {_describe(knob)}, got {value!r}", key=key)
    if isinstance(number, bool):
        return
    low_ok = knob.lo is None or (number > knob.lo if knob.lo_open else number >= knob.lo)
    high_ok = knob.hi is None or (number < knob.hi if knob.hi_open else number <= knob.hi)
    if not (low_ok and high_ok):
        raise UserError(f"must be {_describe(knob)}, got {value!r}", key=key)


def _as_number(value: Any, knob: Knob) -> int | float | bool | None:
    """The value if it has the knob's type, else None (a bool is never a number, a string never
    one either: ``'1e-3'`` would pass here and fail in whatever library reads it)."""
    if knob.kind == BOOL:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if knob.kind == INT:
        return value if isinstance(value, int) else None
    if knob.kind == COUNT_OR_FRACTION and isinstance(value, float) and value > 1:
        return None  # 2.5 batches: neither a count nor a fraction
    return value


def _describe(knob: Knob) -> str:
    kind = {INT: "an integer", FLOAT: "a number", BOOL: "true or false",
            COUNT_OR_FRACTION: "a batch count (integer >= 0) or a fraction between 0 and 1"}[knob.kind]
    bounds = []
    if knob.lo is not None:
        bounds.append(f"{'>' if knob.lo_open else '>='} {_num(knob.lo)}")
    if knob.hi is not None:
        bounds.append(f"{'<' if knob.hi_open else '<='} {_num(knob.hi)}")
    extras = [*(repr(w) for w in knob.words), *(["null"] if knob.none else [])]
    text = kind + (" " + " and ".join(bounds) if bounds and knob.kind not in (BOOL, COUNT_OR_FRACTION) else "")
    return text + (f" (or {' or '.join(extras)})" if extras else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
