"""Paired tests: McNemar's exact test, alignment by content, refusal of different test samples, t-intervals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from trueval.compare import main as compare_main
from trueval.core.errors import UserError
from trueval.stats.intervals import format_interval, t_interval
from trueval.stats.paired import compare_predictions, paired_test, sign_test
from trueval.stats.predictions import load_predictions, write_predictions


def test_mcnemar_exact_and_mid_p() -> None:
    exact, mid = sign_test(10, 2)
    assert exact == pytest.approx(0.0385742, abs=1e-6)  # 2 * P(X <= 2), X ~ Bin(12, 1/2)
    assert mid == pytest.approx(exact - 2 * 0.5 * 66 / 4096, abs=1e-9)
    assert sign_test(0, 0) == (1.0, 1.0)
    a = np.array([1] * 50 + [1] * 10 + [0] * 2 + [0] * 8)
    b = np.array([1] * 50 + [0] * 10 + [1] * 2 + [0] * 8)
    result = paired_test(a, b)
    assert (result.a_better, result.b_better, result.n) == (10, 2, 70)
    assert result.significant and result.diff == pytest.approx(8 / 70)
    assert result.diff_ci95[0] > 0


def _write(path: Path, hashes: list[str], target: list[int], pred: list[int]) -> Path:
    return write_predictions(path / "test_predictions.npz", [f"id{h}" for h in hashes], hashes, np.array(target),
                             np.array(pred), np.eye(3)[pred])


def test_samples_are_matched_by_content_not_order(tmp_path: Path) -> None:
    _write(tmp_path / "a", ["h1", "h2", "h3", "h4"], [0, 1, 2, 0], [0, 1, 2, 1])
    _write(tmp_path / "b", ["h4", "h3", "h2", "h1"], [0, 2, 1, 0], [0, 0, 1, 0])
    a, b = load_predictions(tmp_path / "a"), load_predictions(tmp_path / "b")
    assert a.prob.shape == (4, 3) and list(a.ids) == ["idh1", "idh2", "idh3", "idh4"]
    result = compare_predictions(a, b)
    # h3: A right, B wrong; h4: A wrong, B right
    assert (result.a_better, result.b_better) == (1, 1)


def test_compare_cli_refuses_different_test_samples_with_exit_2(tmp_path: Path, capsys) -> None:
    _write(tmp_path / "a", ["h1", "h2", "h3"], [0, 1, 2], [0, 1, 2])
    _write(tmp_path / "b", ["h1", "h2", "h9"], [0, 1, 2], [0, 1, 1])
    _write(tmp_path / "c", ["h3", "h2", "h1"], [2, 1, 0], [2, 1, 1])
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "different samples" in err and "1 only in A, 1 only in B" in err
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
    assert "test_predictions.npz" in capsys.readouterr().err
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "c"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"a_better": 1' in out and '"b_better": 0' in out and '"n": 3' in out


def test_relabelled_test_samples_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "a", ["h1", "h2"], [0, 1], [0, 1])
    _write(tmp_path / "b", ["h1", "h2"], [0, 2], [0, 1])
    with pytest.raises(UserError, match="different labels"):
        compare_predictions(load_predictions(tmp_path / "a"), load_predictions(tmp_path / "b"))


def test_t_interval_over_seeds() -> None:
    lo, hi = t_interval([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2) * std 1 / sqrt(3)
    assert (lo, hi) == (pytest.approx(2 - half, abs=1e-5), pytest.approx(2 + half, abs=1e-5))
    assert all(math.isnan(v) for v in t_interval([1.0]))
    assert format_interval(0.5, [0.4, 0.6]) == "0.5000 [0.4000, 0.6000]"
    assert format_interval(0.5, [math.nan, math.nan]) == "0.5000"
