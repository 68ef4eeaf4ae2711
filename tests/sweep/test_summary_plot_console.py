"""summary.png groups configurations by every swept key but the seed; the leaderboard is never cut."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import matplotlib
import pytest
from rich.console import Console

from trueval.sweep.plot import error_bars, plot_summary
from trueval.sweep.summary import build_summary, print_leaderboard

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _drawn(summary, tmp_path: Path, monkeypatch):  # noqa: ANN001, ANN202
    """The figure plot_summary draws for ``summary`` (kept open to be inspected)."""
    monkeypatch.setattr(plt, "close", lambda *args: None)
    plt.close("all")
    plot_summary(summary, tmp_path / "summary.png")
    return plt.figure(plt.get_fignums()[-1])


def _bar_extents(axis) -> list[tuple[float, float]]:  # noqa: ANN001
    """(low, high) of every error bar drawn on ``axis``."""
    extents = []
    for collection in axis.collections:
        for segment in collection.get_segments():
            (x0, y0), (x1, y1) = segment[0], segment[-1]
            extents.append((min(x0, x1), max(x0, x1)) if y0 == y1 else (min(y0, y1), max(y0, y1)))
    return extents


def test_depth_study_plots_each_network_not_their_mean(make_sweep, write_job, tmp_path, monkeypatch) -> None:
    """Six networks, one learning rate (from their configs): six bars, none beyond accuracy 1."""
    sweep = make_sweep()
    accs = {(4, "false"): 0.97, (13, "false"): 0.95, (33, "false"): 0.11,
            (4, "true"): 0.97, (13, "true"): 0.96, (33, "true"): 0.97}
    for num, ((depth, residual), acc) in enumerate(accs.items()):
        write_job(sweep, f"model.depth={depth},model.residual={residual}",
                  [f"model.depth={depth}", f"model.residual={residual}", "data=mnist"], num=num,
                  metrics={"val/acc_best": acc}, config={"optimizer": {"lr": 0.001}})
    summary = build_summary(sweep)
    figure = _drawn(summary, tmp_path, monkeypatch)
    axis = figure.axes[0]
    labels = [tick.get_text() for tick in axis.get_yticklabels()]
    assert len(axis.patches) == 6 and "model.depth=33, model.residual=false" in labels
    assert sorted(p.get_width() for p in axis.patches) == sorted(accs.values())
    assert all(0.0 <= lo and hi <= 1.0 for lo, hi in _bar_extents(axis))


def test_seeds_are_the_only_repeats_and_bars_stay_within_bounds(make_sweep, write_job, tmp_path, monkeypatch) -> None:
    sweep = make_sweep()
    num = 0
    for optimizer in ("adam", "sgd"):
        for lr in ("0.001", "0.01"):
            for seed, acc in ((0, 0.99), (1, 0.60)):  # a wide spread: mean +- std would pass 1.0
                write_job(sweep, f"o={optimizer},lr={lr},s={seed}",
                          [f"optimizer={optimizer}", f"optimizer.lr={lr}", f"seed={seed}"], num=num,
                          metrics={"val/acc_best": acc if optimizer == "adam" else acc - 0.5})
                num += 1
    figure = _drawn(build_summary(sweep), tmp_path, monkeypatch)
    axis = figure.axes[0]
    labels = axis.get_legend_handles_labels()[1]
    assert sorted(labels) == ["optimizer=adam", "optimizer=sgd"]  # one line per optimizer, seeds averaged
    extents = _bar_extents(axis)
    assert extents and all(0.0 <= lo and hi <= 1.0 for lo, hi in extents)
    assert max(hi for _, hi in extents) == pytest.approx(1.0)  # the adam bar is cut at the bound


def test_error_bars() -> None:
    assert error_bars([0.5], bounded=True) == (0.5, 0.0, 0.0)
    mean, lo, hi = error_bars([0.99, 0.6], bounded=True)
    assert mean - lo >= 0 and mean + hi == pytest.approx(1.0)
    assert error_bars([-2.0, 2.0], bounded=False)[1] == pytest.approx(2.828, abs=1e-3)


def test_leaderboard_outside_a_terminal_is_not_cut(make_sweep, write_job) -> None:
    sweep = make_sweep()
    long_value = "a_really_long_dataset_root_that_no_eighty_column_table_can_hold/with/more/parts"
    for num, lr in enumerate(("0.001", "0.01")):
        write_job(sweep, f"lr={lr}", [f"optimizer.lr={lr}", f"data.root={long_value}{num}", "trainer=cpu"], num=num,
                  metrics={"val/acc_best": 0.9 + num / 100, "test/acc": 0.8, "test/acc_macro": 0.7})
    out = io.StringIO()
    print_leaderboard(build_summary(sweep), console=Console(file=out, width=80))
    text = out.getvalue()
    assert f"{long_value}0" in text and f"{long_value}1" in text and "…" not in text
    assert "test/acc_macro" in text  # headers whole, not folded at 80 columns
    assert "same in every trial: trainer=cpu" in text
