"""experiment=he2015_cifar10: the nine networks of He et al.'s Table 6 and the table/figure of the sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import ROOT, compose_cfg
from trueval.sweep import he2015


@pytest.mark.parametrize("net,depth,residual", [("plain20", 20, False), ("plain56", 56, False),
                                                ("residual56", 56, True), ("residual110", 110, True)])
def test_each_net_names_its_depth_and_skip_connections(tmp_path: Path, net: str, depth: int, residual: bool) -> None:
    cfg = compose_cfg("train", ["experiment=he2015_cifar10", f"net={net}"], tmp_path / "run")
    assert cfg.model.depth == depth and cfg.model.residual is residual and cfg.model.layout == "cifar"
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay, cfg.data.batch_size) == (0.1, 0.9, 1e-4, 128)


def test_sweep_lists_the_papers_nine_networks() -> None:
    exp = OmegaConf.load(ROOT / "configs" / "experiment" / "he2015_cifar10.yaml")
    nets = exp.hydra.sweeper.params.net.split(",")
    assert nets == list(he2015.PAPER_TEST_ERROR) and set(nets) == set(exp.he2015.nets)


def test_verdict_reads_the_qualitative_result() -> None:
    trials = [he2015.Trial(net=n, depth=d, residual=r, test_error=e, paper_test_error=None, final_train_error=None,
                           epochs=0, seconds=None, status="ok", job=n)
              for n, d, r, e in [("plain20", 20, False, 9.0), ("plain56", 56, False, 12.0),
                                 ("residual20", 20, True, 8.5), ("residual56", 56, True, 7.0)]]
    text = "\n".join(he2015.verdict(trials))
    assert "plain networks get worse with depth: holds" in text
    assert "residual networks get better with depth: holds" in text
    assert "residual beats plain at every depth (20, 56): holds" in text
    trials[1].test_error = 8.0
    assert "plain networks get worse with depth: does NOT hold" in "\n".join(he2015.verdict(trials))


@pytest.mark.slow
def test_a_small_sweep_writes_the_table_and_training_error_curves(tmp_path: Path) -> None:
    """Two of the nine networks for two epochs on the bundled digits, on the CPU, one after the other on one
    gpu_pool worker."""
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", "experiment=he2015_cifar10", "net=plain20,residual20", "data=digits",
         "trainer=cpu", "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1", "+trainer.limit_train_batches=3",
         "+trainer.limit_val_batches=1", "data.steps_per_call=1",
         "hydra.launcher.jobs_per_gpu=1", "hydra.launcher.gpus=[]", "extras.print_config=false", f"paths.log_dir={tmp_path / 'logs'}",
         f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["net"]: row for row in __import__("csv").DictReader((sweep / "he2015.csv").open())}
    assert set(rows) == {"plain20", "residual20"}
    for row in rows.values():
        assert row["status"] == "ok" and int(row["epochs"]) == 2 and len(row["train_error_curve"].split()) == 2
        assert 0 <= float(row["test_error"]) <= 100
    assert rows["residual20"]["paper_test_error"] == "8.75"
    assert (sweep / "he2015.png").stat().st_size > 10_000
    assert "| residual20 | 20 | yes |" in (sweep / "he2015.md").read_text()
    assert json.loads(next(sweep.glob("*/metrics.json")).read_text())["status"] == "ok"


def test_verdict_averages_seeds_of_one_network() -> None:
    trials = [he2015.Trial(net=f"residual{d}", depth=d, residual=True, test_error=e, paper_test_error=None,
                           final_train_error=None, epochs=0, seconds=None, status="ok", job=str(i))
              for i, (d, e) in enumerate([(20, 9.0), (20, 8.0), (56, 8.8), (56, 8.0)])]
    assert "residual networks get better with depth: holds (20 layers 8.50% -> 56 layers 8.40%)" in "\n".join(he2015.verdict(trials))
