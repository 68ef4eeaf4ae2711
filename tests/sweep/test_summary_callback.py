"""SweepSummaryCallback writes the summary at the end of a multirun and never fails the sweep."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import OmegaConf

from trueval.sweep.callbacks import SweepSummaryCallback


def test_summary_written_on_multirun_end(make_sweep, write_job) -> None:
    sweep = make_sweep()
    for num, loss in enumerate([0.3, 0.1]):
        write_job(sweep, f"optimizer.lr={num}", [f"optimizer.lr={num}"], num=num, metrics={"val/loss": loss})
    config = OmegaConf.create({"optimized_metric": "val/loss", "hydra": {"sweep": {"dir": str(sweep)},
                                                                        "sweeper": {"direction": "minimize"}}})
    SweepSummaryCallback(print_table=False).on_multirun_end(config=config)
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].split(",")[3] == "1"  # rank 1 is optimizer.lr=1 (val/loss 0.1)
    assert (sweep / "summary.png").exists()


def test_a_broken_sweep_dir_is_logged_not_raised(tmp_path: Path, caplog) -> None:
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "missing")}}})
    with caplog.at_level(logging.ERROR):
        SweepSummaryCallback(print_table=False).on_multirun_end(config=config)
    assert "python -m trueval.summary" in caplog.text
