"""The audit (classification and YOLO) imports only what it uses: no Lightning, timm or matplotlib
ever, and on a warm run (a cached verdict) not even torch. Importing Lightning alone took 5 s of a
10 s warm audit of CIFAR-10; checked in a fresh interpreter, where sys.modules cannot be faked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "pytorch_lightning", "lightning_fabric", "torchmetrics", "timm", "matplotlib")

# runs audit.py as a user does, then prints which heavy packages the process imported
PROBE = """
import json, runpy, sys
sys.argv = ["audit.py", *json.loads(sys.argv[1])]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("PROBE", json.dumps({"code": code, "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(%r))}))
""" % (HEAVY,)


def _folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for k in range(2):
            folder = root / split / f"c{k}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folder / f"{split}{k}{i}.png")


def _audit(tmp_path: Path, data: list[str], run: str) -> dict:
    args = [*data, f"paths.cache_dir={tmp_path / 'cache'}", f"paths.log_dir={tmp_path / 'logs'}",
            f"hydra.run.dir={tmp_path / run}"]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    line = [x for x in out.stdout.splitlines() if x.startswith("PROBE ")]
    assert line, out.stdout[-2000:] + out.stderr[-2000:]
    return json.loads(line[-1][len("PROBE "):])


@pytest.mark.slow
def test_audit_imports_no_lightning_and_warm_no_torch(tmp_path: Path) -> None:
    _folder(tmp_path / "images")
    data = ["data=imagefolder", f"data.root={tmp_path / 'images'}"]
    cold = _audit(tmp_path, data, "cold")
    assert cold["code"] == 0
    assert not {"pytorch_lightning", "lightning_fabric", "torchmetrics", "timm", "matplotlib"} & set(cold["heavy"])
    warm = _audit(tmp_path, data, "warm")
    assert warm == {"code": 0, "heavy": []}


@pytest.mark.slow
def test_yolo_audit_imports_no_lightning_and_warm_no_torch(tmp_path: Path) -> None:
    from trueval.data.detection.synthetic import write_synthetic_yolo

    yaml_path = write_synthetic_yolo(tmp_path / "yolo", counts={"train": 4, "val": 2, "test": 2}, size=32)
    data = ["data=yolo", f"data.yaml_path={yaml_path}"]
    cold = _audit(tmp_path, data, "cold")
    assert cold["code"] == 0
    assert not {"pytorch_lightning", "lightning_fabric", "torchmetrics", "timm", "matplotlib"} & set(cold["heavy"])
    warm = _audit(tmp_path, data, "warm")
    assert warm == {"code": 0, "heavy": []}


@pytest.mark.slow
def test_mnist_audit_imports_no_torchvision(tmp_path: Path) -> None:
    """MNIST's IDX files are arrays: reading them and the gate on them need no torchvision (1 s to
    import, a thirtieth of a cold MNIST audit); only decoding files does."""
    import gzip
    import struct

    raw = tmp_path / "mnist"
    raw.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 40)):
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">IIII", 2051, n, 28, 28) + rng.integers(0, 255, (n, 28, 28), dtype=np.uint8).tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">II", 2049, n) + (np.arange(n) % 10).astype(np.uint8).tobytes())
    cold = _audit(tmp_path, ["data=mnist", f"data.data_dir={raw}"], "cold")
    assert cold["code"] == 0 and "torch" in cold["heavy"] and "torchvision" not in cold["heavy"]
