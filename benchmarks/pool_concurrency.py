"""How many trials of experiment=he2015_cifar10 to run at once on one GPU: 1, 4 and 8 concurrent trials.

    python benchmarks/pool_concurrency.py --cifar ../shared/data/cifar10-jpg.tar.gz --out /tmp/pool_bench

For each k it runs k copies of one network (``net``, default residual56; seeds 1..k) through the
gpu_pool launcher with ``hydra.launcher.jobs_per_gpu=k`` for ``--epochs`` epochs, and reads each
trial's steady epoch time (``time/epoch_seconds``, the last epoch: the first pays cuDNN autotuning
and the CUDA-graph recording). Aggregate throughput = k / mean epoch seconds (trial-epochs per
second); writes ``pool_concurrency.json``. The data's decoding and gate run once before the timing
(audit.py fills the cache).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from sweep_throughput import environment, timed_sweep  # noqa: E402


def cifar_root(archive: Path, out: Path) -> Path:
    root = out / "data"
    if not (root / "cifar10-jpg" / "train").is_dir() and not (root / "train").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    found = next(p.parent for p in root.glob("**/train") if (p.parent / "test").is_dir())
    return found


def run(k: int, common: list[str], out: Path) -> dict[str, object]:
    sweep = out / "sweeps" / f"k{k}"
    shutil.rmtree(sweep, ignore_errors=True)
    seeds = ",".join(str(s) for s in range(1, k + 1))
    command = [sys.executable, str(ROOT / "train.py"), "-m", "experiment=he2015_cifar10", *common, f"seed={seeds}",
               f"hydra.launcher.jobs_per_gpu={k}", f"hydra.sweep.dir={sweep}"]
    print("===", " ".join(command[2:]), flush=True)
    code, wall, gpu = timed_sweep(command, out / f"k{k}.log")
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    epochs = [r["metrics"].get("time/epoch_seconds") for r in records if r.get("status") == "ok"]
    epochs = [e for e in epochs if isinstance(e, (int, float))]
    mean_epoch = statistics.fmean(epochs) if epochs else None
    result = {"k": k, "exit_code": code, "ok": len(epochs), "wall_seconds": round(wall, 1),
              "epoch_seconds_per_trial": round(mean_epoch, 3) if mean_epoch else None,
              "trial_epochs_per_second": round(k / mean_epoch, 3) if mean_epoch else None, **gpu}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, required=True, help="cifar10-jpg.tar.gz, or an extracted folder")
    parser.add_argument("--out", type=Path, default=Path("/tmp/pool_bench"))
    parser.add_argument("--ks", default="1,4,8")
    parser.add_argument("--net", default="residual56")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every trial")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    root = args.cifar if args.cifar.is_dir() else cifar_root(args.cifar, args.out)
    common = [f"net={args.net}", f"data.root={root}", f"trainer.max_epochs={args.epochs}",
              f"trainer.check_val_every_n_epoch={args.epochs}", f"paths.log_dir={args.out / 'logs'}",
              f"paths.cache_dir={args.out / 'cache'}", *args.overrides]
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "audit.py"), "data=cifar10", f"data.root={root}",
                    f"paths.cache_dir={args.out / 'cache'}", f"paths.log_dir={args.out / 'logs'}"], cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    warm = round(time.perf_counter() - started, 1)
    results = [run(int(k), common, args.out) for k in args.ks.split(",")]
    best = max((r for r in results if r["trial_epochs_per_second"]), key=lambda r: r["trial_epochs_per_second"], default=None)
    report = {"environment": environment(), "net": args.net, "epochs": args.epochs, "cache_warm_up_seconds": warm,
              "results": results, "best_k": best["k"] if best else None}
    (args.out / "pool_concurrency.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
