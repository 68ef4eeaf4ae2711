"""Trials per hour of a 16-trial MLP-on-MNIST sweep: 1, 4 or 8 trials at once per GPU against one at a time.

    python benchmarks/sweep_throughput.py --mnist ../shared/data/mnist --out /tmp/sweep_bench

Runs the same grid (4 optimizers x 2 learning rates x 2 batch sizes) twice through train.py:
``basic``: Hydra's default launcher, one trial after the other in one process; ``pool4``:
``hydra/launcher=gpu_pool hydra.launcher.jobs_per_gpu=4``, four trial processes per GPU (``pool1``,
``pool8``: one, eight; `--modes basic,pool1,pool4,pool8`). Prints and
writes ``sweep_throughput.json`` (wall seconds, trials per hour, speed-up, mean trial seconds,
accuracy, GPU utilisation). ``--smoke`` runs a 4-trial CPU version on scikit-learn's digits, to
check the script itself on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trueval.sweep.summary import build_summary  # noqa: E402

GRID = ["optimizer=adam,sgd,adamw,rmsprop", "optimizer.lr=1e-3,3e-3", "data.batch_size=128,256"]
SMOKE_GRID = ["optimizer=adam,sgd", "optimizer.lr=1e-3,1e-2"]
MODES = {
    "basic": [],
    "pool1": ["hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=1"],
    "pool4": ["hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=4"],
    "pool8": ["hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=8"],
}


def prepare_mnist(source: Path, data_dir: Path) -> None:
    """Unpack the IDX files into torchvision's layout, ``<data_dir>/MNIST/raw``."""
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for archive in sorted(source.glob("*.gz")):
        target = raw / archive.stem
        if not target.exists():
            with gzip.open(archive, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    if len(list(raw.glob("*-ubyte"))) < 4:
        raise SystemExit(f"expected the four MNIST *.gz files in {source}")


class GpuSampler(threading.Thread):
    """Polls nvidia-smi once a second: mean GPU utilisation and peak memory during a sweep."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.util: list[float] = []
        self.memory: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        if shutil.which("nvidia-smi") is None:
            return
        while not self.stopped.wait(1.0):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout.strip().splitlines()
            if out:
                values = [[float(v) for v in line.split(",")] for line in out]
                self.util.append(statistics.fmean(v[0] for v in values))
                self.memory.append(sum(v[1] for v in values))

    def report(self) -> dict[str, float | None]:
        return {"gpu_util_mean_pct": round(statistics.fmean(self.util), 1) if self.util else None,
                "gpu_memory_peak_mib": max(self.memory) if self.memory else None}


def timed_sweep(command: list[str], log_path: Path) -> tuple[int, float, dict[str, object]]:
    """Run a sweep command from the checkout, its output to ``log_path``: exit code, wall seconds
    and the GPU's utilisation and memory while it ran."""
    sampler = GpuSampler()
    sampler.start()
    started = time.perf_counter()
    with log_path.open("w") as log:
        code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - started
    sampler.stopped.set()
    return code, wall, sampler.report()


def run_sweep(mode: str, grid: list[str], common: list[str], out: Path) -> dict[str, object]:
    sweep_dir = out / "sweeps" / mode
    shutil.rmtree(sweep_dir, ignore_errors=True)
    command = [sys.executable, str(ROOT / "train.py"), "-m", *grid, *common, *MODES[mode], f"hydra.sweep.dir={sweep_dir}"]
    print(f"\n=== {mode}: {' '.join(command[2:])}", flush=True)
    code, wall, gpu = timed_sweep(command, out / f"{mode}.log")
    if code != 0:
        raise SystemExit(f"{mode} sweep failed (exit code {code}); see {out / f'{mode}.log'}")
    summary = build_summary(sweep_dir)
    ok = [t for t in summary.trials if t.status == "ok"]
    accs = [t.metric(summary.metric) for t in ok]
    return {
        "mode": mode, "launcher_overrides": MODES[mode], "trials": len(summary.trials), "ok": len(ok),
        "wall_seconds": round(wall, 1), "trials_per_hour": round(len(summary.trials) / wall * 3600, 1),
        "mean_trial_seconds": round(statistics.fmean(t.seconds for t in ok if t.seconds), 1) if ok else None,
        f"mean_{summary.metric}": round(statistics.fmean(accs), 4) if accs else None,
        **gpu, "sweep_dir": str(sweep_dir),
    }


def warm_cache(common: list[str], out: Path) -> float:
    """Fill the integrity gate's cache before any timing (both modes then start from a warm cache).

    The first trial of whichever mode ran first would otherwise pay the whole gate (about a
    minute for MNIST) and skew the comparison. Runs audit.py on the same data overrides.
    """
    data = [o for o in common if o.startswith(("data", "paths"))]
    started = time.perf_counter()
    command = [sys.executable, str(ROOT / "audit.py"), *data, f"hydra.run.dir={out / 'warm_cache'}"]
    print(f"=== warm-up (not timed): {' '.join(command[1:])}", flush=True)
    with (out / "warm_cache.log").open("w") as log:
        code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    if code not in (0, 1):  # 1: a leak was found, which the trials' policy handles
        raise SystemExit(f"cache warm-up failed (exit code {code}); see {out / 'warm_cache.log'}")
    return round(time.perf_counter() - started, 1)


def environment() -> dict[str, object]:
    import torch

    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "gpus": torch.cuda.device_count(), "cpu_cores": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, help="folder with the four MNIST *.gz files (e.g. ../shared/data/mnist)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/trueval_sweep_bench"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--modes", default="basic,pool4", help=f"comma list of {sorted(MODES)}")
    parser.add_argument("--smoke", action="store_true", help="4 trials of digits on the CPU, 2 at a time")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every trial")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    common = [f"trainer.max_epochs={args.epochs}", f"paths.log_dir={args.out / 'logs'}", "model=mlp"]
    if args.smoke:
        grid = SMOKE_GRID
        common += ["data=digits", "trainer=cpu"]
        MODES["pool4"] = ["hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=2", "hydra.launcher.gpus=[]"]
    else:
        if args.mnist is None:
            raise SystemExit("--mnist is required (or --smoke)")
        data_dir = args.out / "data"
        prepare_mnist(args.mnist, data_dir)
        grid = GRID
        common += ["data=mnist", f"data.data_dir={data_dir}", "trainer=gpu"]
    common += list(args.overrides)
    warm_seconds = warm_cache(common, args.out)
    results: list[dict] = []
    report = {"environment": environment(), "epochs": args.epochs, "grid": grid, "common": common,
              "cache_warm_up_seconds": warm_seconds, "results": results}
    for mode in args.modes.split(","):
        results.append(run_sweep(mode, grid, common, args.out))
        # written after every mode: a run cut short by a time limit keeps the modes it finished
        by_mode = {r["mode"]: r for r in results}
        if "basic" in by_mode:
            for r in results:
                r["speedup_vs_basic"] = round(by_mode["basic"]["wall_seconds"] / r["wall_seconds"], 2)
        (args.out / "sweep_throughput.json").write_text(json.dumps(report, indent=2))
    print()
    for r in results:
        print(f"{r['mode']:>6}: {r['ok']}/{r['trials']} ok, {r['wall_seconds']:7.1f} s, {r['trials_per_hour']:7.1f} trials/h, "
              f"speed-up {r.get('speedup_vs_basic', '-')}, mean trial {r['mean_trial_seconds']} s, "
              f"GPU util {r['gpu_util_mean_pct']}%")
    print(f"wrote {args.out / 'sweep_throughput.json'}")
    failed = [r["mode"] for r in results if r["ok"] < r["trials"]]
    if failed:  # a throughput of failing trials is no result
        raise SystemExit(f"trials failed in {failed}: see {args.out}/sweeps/<mode>/summary.md")


if __name__ == "__main__":
    main()
