"""The depth-study summary: built from a fake multirun directory, and from the real quick study."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Callable

import pytest
from omegaconf import OmegaConf

from trueval.sweep.depth_study import DepthStudyCallback, collect, main, summarize

MLP = "trueval.models.nets.mlp.MLP"
CNN = "trueval.models.nets.cnn.CNN"


def job(write_job: Callable[..., Path], sweep: Path, num: int, target: str, depth: int, residual: bool,
        data: str, acc: float | None, grad: float = 1.0, status: str | None = "ok") -> Path:
    point = f"{target.rsplit('.', 1)[-1].lower()}_d{depth}_{'residual' if residual else 'plain'}"
    metrics = {} if acc is None else {
        "test/acc": acc, "train/loss_epoch": 2.3 if acc < 0.2 else 0.1,
        "train/grad_norm_sum_first": grad * 2, "train/grad_norm_sum_last": grad,
        "time/total_seconds": 10.0 + depth, "model/params": 1000 * depth}
    return write_job(sweep, f"+experiment/depth_points={point}", [f"+experiment/depth_points={point}"], num=num,
                     status=status, metrics=metrics, seconds=99.0,
                     choices={"data": data, "model": target.rsplit(".", 1)[-1].lower()},
                     config={"model": {"_target_": target, "depth": depth, "residual": residual}})


def fake_study(make_sweep: Callable[..., Path], write_job: Callable[..., Path]) -> Path:
    sweep = make_sweep()
    num = 0
    for depth, plain_acc in ((4, 0.97), (13, 0.95), (33, 0.11)):
        job(write_job, sweep, num, MLP, depth, False, "mnist", plain_acc, grad=10.0 / depth ** 3)
        job(write_job, sweep, num + 1, MLP, depth, True, "mnist", 0.97, grad=5.0)
        num += 2
    job(write_job, sweep, num, CNN, 10, False, "cifar10", 0.8)
    job(write_job, sweep, num + 1, CNN, 56, True, "cifar10", 0.85)
    job(write_job, sweep, num + 2, CNN, 30, False, "cifar10", None, status="failed")
    return sweep


def test_table_has_one_row_per_job(make_sweep, write_job) -> None:
    sweep = fake_study(make_sweep, write_job)
    rows = collect(sweep)
    assert len(rows) == 9
    deep_plain = next(r for r in rows if r.network == "MLP" and r.depth == 33 and not r.residual)
    assert deep_plain.test_acc == 0.11 and deep_plain.train_loss == 2.3
    assert deep_plain.grad_norm_last < deep_plain.grad_norm_first
    assert deep_plain.seconds == 43.0  # time/total_seconds wins over the run's wall_seconds
    assert deep_plain.data == "mnist" and deep_plain.params == 33000
    failed = next(r for r in rows if r.status == "failed")
    assert failed.test_acc is None and failed.depth == 30 and failed.network == "CNN"
    # rows are ordered: network, data, plain before residual, by depth
    mlp_plain = [r.depth for r in rows if r.network == "MLP" and not r.residual]
    assert mlp_plain == [4, 13, 33]


def test_writes_csv_markdown_and_plot(make_sweep, write_job) -> None:
    sweep = fake_study(make_sweep, write_job)
    summarize(sweep)
    with (sweep / "depth_study.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 9
    assert {"network", "depth", "residual", "test_acc", "train_loss", "grad_norm_first", "grad_norm_last",
            "seconds"} <= set(table[0])
    markdown = (sweep / "depth_study.md").read_text()
    assert "| MLP | mnist | 33 | no | 0.11 | 2.3 |" in markdown
    assert markdown.count("\n| ") == 10  # header + 9 rows
    png = (sweep / "depth_study.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_hydra_callback_and_cli(make_sweep, write_job, capsys) -> None:
    sweep = fake_study(make_sweep, write_job)
    DepthStudyCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert (sweep / "depth_study.png").is_file()
    (sweep / "depth_study.md").unlink()
    assert main([str(sweep)]) == 0
    assert "| CNN | cifar10 | 56 | yes | 0.85 |" in capsys.readouterr().out
    assert (sweep / "depth_study.md").is_file()
    assert main([str(sweep / "nope")]) == 2


def test_empty_or_unfinished_sweep_still_summarises(make_sweep, write_job) -> None:
    sweep = make_sweep()
    job(write_job, sweep, 0, MLP, 4, False, "digits", None, status=None)  # still running
    rows = summarize(sweep)
    assert rows[0].status == "missing metrics.json"
    assert (sweep / "depth_study.png").is_file()


@pytest.mark.slow
def test_quick_study_end_to_end(tmp_path: Path) -> None:
    """`python train.py experiment=resnet_depth_quick`: six jobs, the summary, and the finding."""
    from helpers import run_cli

    # one thread: on a small shared CPU, two threads fighting other processes made the study 7x slower
    result = run_cli("train.py", ["experiment=resnet_depth_quick", f"paths.log_dir={tmp_path / 'logs'}",
                                  f"paths.cache_dir={tmp_path / 'cache'}", "extras.print_config=false"],
                     timeout=600, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = [p.parent for p in (tmp_path / "logs").rglob("depth_study.csv")]
    assert (sweep / "depth_study.md").is_file()
    assert (sweep / "depth_study.png").read_bytes()[:4] == b"\x89PNG"
    rows = collect(sweep)
    assert len(rows) == 6 and all(r.status == "ok" for r in rows), [(r.job, r.status) for r in rows]
    assert {(r.network, r.depth, r.residual) for r in rows} == {
        ("MLP", 4, False), ("MLP", 33, False), ("MLP", 4, True), ("MLP", 33, True), ("CNN", 10, False), ("CNN", 16, True)}
    for row in rows:
        assert row.data == "digits"
        for value in (row.test_acc, row.train_loss, row.grad_norm_first, row.grad_norm_last, row.seconds):
            assert value is not None and math.isfinite(value), row
    by_point = {(r.network, r.depth, r.residual): r for r in rows}
    plain, residual = by_point[("MLP", 33, False)], by_point[("MLP", 33, True)]
    # the 33-layer plain MLP stays near chance (10 classes) while the residual one learns
    assert plain.test_acc < 0.3 and residual.test_acc > 0.8 and residual.test_acc - plain.test_acc > 0.5
    assert plain.train_loss > 2.0
    # ... because its gradients vanish (the sum keeps the head's gradient, which does not vanish)
    assert plain.grad_norm_first < 0.1 * residual.grad_norm_first
    assert plain.grad_norm_first < by_point[("MLP", 4, False)].grad_norm_first
    assert by_point[("MLP", 4, False)].test_acc > 0.8
    job_metrics = json.loads((sweep / rows[0].job / "metrics.json").read_text())["metrics"]
    for key in ("time/epoch_seconds", "time/total_seconds", "time/samples_per_second", "train/grad_norm_sum",
                "train/grad_norm_sum_first", "train/grad_norm_sum_last", "model/params", "model/macs"):
        assert key in job_metrics, key


def test_every_point_of_the_full_study_composes_and_builds(tmp_path: Path) -> None:
    """experiment=resnet_depth: 14 points, the (data, network, depth, residual) the study promises."""
    from helpers import CONFIGS, compose_cfg
    from trueval.tasks.builders import build_network

    params = OmegaConf.load(CONFIGS / "experiment" / "resnet_depth.yaml").hydra.sweeper.params
    points = [p.strip() for p in params["+experiment/resnet_depth_points"].split(",")]
    seen = set()
    for point in points:
        cfg = compose_cfg("train", ["experiment=resnet_depth", f"+experiment/resnet_depth_points={point}"],
                          tmp_path / point)
        in_shape = (1, 28, 28) if cfg.data.name == "mnist" else (3, 32, 32)
        net = build_network(cfg.model, in_shape, 10)
        seen.add((cfg.data.name, type(net).__name__, cfg.model.depth, cfg.model.residual))
        assert "grad_norm" in cfg.callbacks and "timing" in cfg.callbacks
    expected = {("mnist", "MLP", d, r) for d in (4, 13, 23, 33) for r in (False, True)}
    expected |= {("cifar10", "CNN", d, False) for d in (10, 13, 30)}
    expected |= {("cifar10", "CNN", d, True) for d in (16, 32, 56)}
    assert seen == expected
