"""Optimizers and schedules from their config groups, checked without a Trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from trueval.models.optim import build_optimizer, build_scheduler
from trueval.core.errors import UserError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _cfg(group: str, name: str) -> dict:
    return yaml.safe_load((CONFIGS / group / f"{name}.yaml").read_text())


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_takes_lr_and_weight_decay(name: str) -> None:
    cfg = {**_cfg("optimizer", name), "lr": 0.0123, "weight_decay": 0.0456}
    opt = build_optimizer(cfg, _model())
    assert {g["lr"] for g in opt.param_groups} == {0.0123}
    decays = sorted(g["weight_decay"] for g in opt.param_groups)
    assert decays[-1] == 0.0456
    if name != "rmsprop":  # biases and norm weights are kept out of weight decay
        assert decays[0] == 0.0


def test_filter_bias_and_bn_false_decays_every_parameter() -> None:
    model = _model()
    opt = build_optimizer({**_cfg("optimizer", "sgd"), "weight_decay": 0.01, "filter_bias_and_bn": False}, model)
    assert {g["weight_decay"] for g in opt.param_groups} == {0.01}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_sgd_nesterov_and_momentum() -> None:
    opt = build_optimizer({**_cfg("optimizer", "sgd"), "nesterov": True, "momentum": 0.8}, _model())
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.8
    plain = build_optimizer({**_cfg("optimizer", "sgd"), "nesterov": False}, _model())
    assert not plain.defaults["nesterov"]


def test_bad_optimizer_options_name_the_key() -> None:
    with pytest.raises(UserError, match="optimizer.lr"):
        build_optimizer({**_cfg("optimizer", "adam"), "lr": -1}, _model())
    with pytest.raises(UserError, match="optimizer.bogus"):
        build_optimizer({**_cfg("optimizer", "adam"), "bogus": 1}, _model())


def _lrs(name: str, steps: int, **over) -> list[float]:
    opt = build_optimizer({**_cfg("optimizer", "sgd"), "lr": 0.1}, _model())
    spec = build_scheduler({**_cfg("scheduler", name), **over}, opt, total_steps=steps, steps_per_epoch=10,
                           max_epochs=steps // 10)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        spec["scheduler"].step()
    return out


def test_schedules_shape_the_learning_rate() -> None:
    assert build_scheduler({"name": "none"}, build_optimizer(_cfg("optimizer", "adam"), _model()), 10, 1, 10) is None
    step = _lrs("step", 30, step_size=10, gamma=0.1)
    assert step[0] == pytest.approx(0.1) and step[15] == pytest.approx(0.01)
    expo = _lrs("exponential", 5, gamma=0.5)
    assert expo[:3] == pytest.approx([0.1, 0.05, 0.025])
    cos = _lrs("cosine", 100, interval="step", warmup_epochs=1)
    assert cos[0] < cos[9] == pytest.approx(0.1) and cos[-1] < 0.001
    one = _lrs("onecycle", 100)
    assert one[0] < one[30] and one[-1] < one[0]
