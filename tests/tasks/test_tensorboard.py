"""What TensorBoard SERVES for a sweep, asked over its HTTP data API and seen in a headless browser.

TensorBoard's Python ``EventAccumulator`` lists points that the served page drops (a tag written
again at step 0 hides its earlier points), so these tests ask a running ``tensorboard --logdir``
what it shows: the curves, the HParams experiment, the images, and the page itself.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tasks.chromium_cdp import DEEP_TEXTS, Chromium, find_chromium

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 2
LRS = ("0.001", "0.003")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(base: str, path: str, **query: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _post(base: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-trial learning-rate sweep on digits through train.py, with a constant override."""
    base = tmp_path_factory.mktemp("tb")
    sweep_dir = base / "sweep"
    env = dict(os.environ, PROJECT_ROOT=str(ROOT))
    env.pop("TRUEVAL_UID", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", f"optimizer.lr={','.join(LRS)}", "data=digits", "trainer=cpu",
         f"trainer.max_epochs={EPOCHS}", "data.num_workers=0",
         "+trainer.limit_train_batches=5", "+trainer.limit_val_batches=2", f"paths.log_dir={base / 'logs'}",
         f"paths.cache_dir={base / 'cache'}", f"hydra.sweep.dir={sweep_dir}"], cwd=base, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


@pytest.fixture(scope="module")
def tensorboard(sweep: Path) -> Iterator[str]:
    """``tensorboard --logdir <sweep>`` on a free local port; yields its base URL once both runs load."""
    port = _free_port()
    binary = shutil.which("tensorboard", path=str(Path(sys.executable).parent)) or shutil.which("tensorboard")
    command = [binary, "--logdir", str(sweep), "--port", str(port), "--host", "127.0.0.1", "--reload_interval", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                runs = _get(base, "/data/runs")
                tags = _get(base, "/data/plugin/scalars/tags")
                if len(runs) == len(LRS) and all("test/acc" in tags.get(r, {}) for r in runs):
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "tensorboard did not load the sweep in 90 s"
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _job_of(sweep: Path, lr: str) -> Path:
    """The job directory of one trial, found by its learning rate (whatever the naming scheme)."""
    jobs = [p for p in sweep.iterdir() if p.is_dir() and f"optimizer.lr={lr}" in p.name]
    assert len(jobs) == 1, jobs
    return jobs[0]


def _metrics(sweep: Path, lr: str) -> dict[str, float]:
    return json.loads((_job_of(sweep, lr) / "metrics.json").read_text())["metrics"]


@pytest.fixture(scope="module")
def run_of(sweep: Path, tensorboard: str) -> dict[str, str]:
    """TensorBoard's run name of each trial."""
    runs = _get(tensorboard, "/data/runs")
    return {lr: next(r for r in runs if r.startswith(_job_of(sweep, lr).name + "/")) for lr in LRS}


def test_runs_are_named_by_the_swept_key_only(sweep: Path, tensorboard: str) -> None:
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == [f"optimizer.lr={lr}" for lr in LRS]  # no trainer.max_epochs=..., data=digits, ...
    assert sorted(_get(tensorboard, "/data/runs")) == [f"optimizer.lr={lr}/tensorboard" for lr in LRS]


def test_every_curve_has_one_point_per_epoch_and_test_values_show(sweep: Path, tensorboard: str, run_of: dict) -> None:
    for lr in LRS:
        metrics = _metrics(sweep, lr)
        for tag in ("val/acc", "val/loss", "val/acc_best", "train/loss"):
            points = _get(tensorboard, "/data/plugin/scalars/scalars", run=run_of[lr], tag=tag)
            steps = [step for _, step, _ in points]
            assert len(points) == EPOCHS and steps == sorted(set(steps)) and steps[0] > 0, (tag, points)
        assert points[-1][2] == pytest.approx(metrics["train/loss"], rel=1e-5)
        test = _get(tensorboard, "/data/plugin/scalars/scalars", run=run_of[lr], tag="test/acc")
        assert len(test) == 1 and test[0][1] >= steps[-1] and test[0][2] == pytest.approx(metrics["test/acc"], rel=1e-5)


def test_hparams_show_the_sweep_and_the_final_metrics(sweep: Path, tensorboard: str) -> None:
    experiment = _post(tensorboard, "/data/plugin/hparams/experiment", {"experimentName": "", "hparamsLimit": 1000})
    hparams = {info["name"]: info for info in experiment["hparamInfos"]}
    assert hparams["optimizer.lr"].get("differs") is True
    assert not any(info.get("differs") for name, info in hparams.items() if name != "optimizer.lr")
    assert {"trainer.max_epochs", "data", "model", "optimizer", "seed"} <= set(hparams)
    assert not [name for name in hparams if "_target_" in name or name.startswith("paths")]
    # the frontend ticks the first five metrics: the test and optimised metrics lead
    shown = [info["name"]["tag"] for info in experiment["metricInfos"]][:5]
    assert shown[:2] == ["test/acc", "val/acc_best"] and "test/loss" in shown
    groups = _post(tensorboard, "/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_UNKNOWN"],
        "colParams": [{"hparam": "trainer.max_epochs"}, {"metric": {"tag": "test/acc", "group": ""}}],
        "startIndex": 0, "sliceSize": 100})["sessionGroups"]
    assert len(groups) == len(LRS)
    for group in groups:
        lr = f"{group['hparams']['optimizer.lr']:g}"
        assert group["hparams"]["trainer.max_epochs"] == EPOCHS
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert values["test/acc"] == pytest.approx(_metrics(sweep, lr)["test/acc"], rel=1e-5)
        assert values["val/acc_best"] == pytest.approx(_metrics(sweep, lr)["val/acc_best"], rel=1e-5)


def test_confusion_matrix_image_is_served(tensorboard: str, run_of: dict) -> None:
    tags = _get(tensorboard, "/data/plugin/images/tags")
    for lr in LRS:
        assert "test/confusion_matrix" in tags[run_of[lr]]
        images = _get(tensorboard, "/data/plugin/images/images", run=run_of[lr], tag="test/confusion_matrix")
        assert len(images) == 1


def _browser() -> Chromium:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true but chromium is missing: .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test")
    return Chromium(binary, width=1600, height=1000)


def test_browser_shows_named_runs_full_curves_and_the_hparams_table(sweep: Path, tensorboard: str, run_of: dict) -> None:
    browser = _browser()
    shots = sweep / "screenshots"
    try:
        # the time-series page, drawn as SVG so the curve's points can be counted
        browser.goto(f"{tensorboard}/?forceSVG=true#timeseries")
        filter_set = browser.wait_for("""(() => { const i = Array.from(document.querySelectorAll('input'))
            .find(e => (e.placeholder || '').includes('Filter tags')); if (!i) return false;
            i.value = '^val/acc$'; i.dispatchEvent(new Event('input', {bubbles: true})); return true; })()""")
        assert filter_set, "no tag filter on the time-series page"
        runs = browser.wait_for(f"""(() => {{ const names = {DEEP_TEXTS}('runs-selector, runs-table, .runs-table');
            return names.filter(t => t.endsWith('/tensorboard')).length >= {len(LRS)} ? names : null; }})()""")
        curves = browser.wait_for("""(() => { const card = Array.from(document.querySelectorAll('scalar-card-component'))
            .find(c => ((c.querySelector('.heading, .tag, [class*=title]') || {}).textContent || '').trim() === 'val/acc');
            if (!card) return null; const lines = Array.from(card.querySelectorAll('svg path'))
              .map(p => p.getAttribute('d') || '').filter(d => /^M-?[0-9.]+,-?[0-9.]+L/.test(d));
            return lines.length ? lines.map(d => d.split('L').length) : null; })()""")
        browser.screenshot(shots / "time_series_val_acc.png")
        assert runs, "the runs table did not render"
        assert sorted(t for t in runs if t.endswith("/tensorboard")) == [run_of[lr] for lr in LRS]
        assert curves and all(points == EPOCHS for points in curves), curves  # one point per epoch, every run

        browser.goto(f"{tensorboard}/#hparams")
        # the header, and the rows with their values (they arrive after the header)
        table = browser.wait_for(f"""(() => {{ const t = {DEEP_TEXTS}('tf-hparams-table-view');
            return t.includes('test/acc') && t.filter(c => /^0[.][0-9]+$/.test(c)).length >= {3 * len(LRS)} ? t : null; }})()""")
        browser.screenshot(shots / "hparams_table.png")
        assert table, "the HParams table has no test/acc column with values"
        assert "optimizer.lr" in table and "val/acc_best" in table
        numbers = [float(cell) for cell in table if cell.replace(".", "", 1).isdigit()]
        for lr in LRS:  # each trial's test accuracy is in the table, as metrics.json has it
            assert any(abs(n - _metrics(sweep, lr)["test/acc"]) < 1e-4 for n in numbers), (lr, table)
    finally:
        browser.close()
    print(f"screenshots: {shots}")
