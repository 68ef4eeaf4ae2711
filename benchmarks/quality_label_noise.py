"""Label-noise benchmark of quality.py: precision at k of label_issues.csv on MNIST with flipped labels.

    # torchvision's MNIST files (MNIST/raw/*-ubyte[.gz]) outside the repository
    python benchmarks/quality_label_noise.py --mnist /tmp/mnist --root /tmp/mnist-noisy --train 10000 --noise 0.1

Writes an image folder ``<root>/train/<label>/*.png`` of ``--train`` seeded MNIST training images of
which ``--noise`` have their file in a wrong class folder, and ``<root>/test/<label>/*.png`` of
``--test`` test images; runs ``quality.py data=imagefolder data.root=<root> quality.sections=[labels]``
as a user would (CUDA when present: quality.device=auto), and reports precision at k (k = number of
flipped files) of label_issues.csv, the baseline's seconds and the command's wall time. With
``--noise 0`` it reports the class shares at the top of the ranking instead (the clean check).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def read_idx(path: Path) -> np.ndarray:
    """An MNIST IDX file (or its .gz copy) as a uint8 array; numpy only, so the benchmark starts fast."""
    import gzip

    opener = (lambda: gzip.open(str(path) + ".gz", "rb")) if not path.exists() else (lambda: open(path, "rb"))
    with opener() as fh:
        data = fh.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_noisy_folder(mnist: Path, root: Path, n_train: int, n_test: int, noise: float, seed: int) -> set[str]:
    """The image folder; returns the relative paths of the flipped training files."""
    rng = np.random.default_rng(seed)
    flipped: set[str] = set()
    for split, count in (("train", n_train), ("test", n_test)):
        prefix = "train" if split == "train" else "t10k"
        images = read_idx(mnist / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte")
        labels = read_idx(mnist / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte").astype(np.int64)
        pick = np.sort(rng.choice(len(labels), size=count, replace=False))
        labels = labels[pick]
        wrong = np.zeros(count, bool)
        if split == "train" and noise > 0:
            wrong[rng.choice(count, size=int(round(noise * count)), replace=False)] = True
            labels[wrong] = (labels[wrong] + rng.integers(1, 10, size=int(wrong.sum()))) % 10
        for j, (i, y) in enumerate(zip(pick, labels)):
            rel = f"{split}/{y}/{split}_{i:05d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(root / rel)
            if wrong[j]:
                flipped.add(rel)
    return flipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", type=Path, required=True, help="folder holding MNIST/raw/*-ubyte")
    ap.add_argument("--root", type=Path, required=True, help="where to write the noisy image folder (emptied)")
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--logs", type=Path, default=Path("logs"))
    ap.add_argument("--out", type=Path, default=None, help="JSON summary")
    ap.add_argument("overrides", nargs="*", help="extra quality.py overrides")
    args = ap.parse_args()
    if args.root.exists() and any(args.root.iterdir()):
        import shutil

        shutil.rmtree(args.root)
    flipped = write_noisy_folder(args.mnist, args.root, args.train, args.test, args.noise, args.seed)
    run_dir = args.logs / "quality_label_noise" / time.strftime("%Y-%m-%d_%H-%M-%S")
    cmd = [sys.executable, str(ROOT / "quality.py"), "data=imagefolder", f"data.root={args.root}",
           "quality.sections=[labels]", f"hydra.run.dir={run_dir}", f"paths.log_dir={args.logs}", *args.overrides]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"quality.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    with open(run_dir / "label_issues.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    report = json.loads((run_dir / "quality_report.json").read_text())["sections"]["labels"]
    out = {"train_images": args.train, "test_images": args.test, "noise": args.noise, "flipped": len(flipped),
           "rows": len(rows), "baseline": report["baseline"], "wall_seconds": round(wall, 1),
           "exit_code": proc.returncode, "rank_by": report["rank_by"], "splits": report["splits"]}
    if flipped:
        k = len(flipped)
        out["precision_at_k"] = round(sum(r["path"] in flipped for r in rows[:k]) / k, 4)  # short CSV: misses
        out["recall_in_csv"] = round(sum(r["path"] in flipped for r in rows) / k, 4)
    else:
        top = Counter(r["given"] for r in rows[:100])
        out["top100_given_classes"] = dict(top.most_common())
    print(json.dumps(out, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
