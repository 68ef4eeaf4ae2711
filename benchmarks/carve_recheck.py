#!/usr/bin/env python
"""Carve validation from train as the template does, then audit the carved train and val again as
two given splits: a second search, of another shape, of what the carve promises has no pair.

    python benchmarks/carve_recheck.py data=cifar10 data.root=<JPEG copy> paths.cache_dir=<dir>

Prints the split sizes, the second audit's train-val pairs and the first 20 of them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from trueval.integrity import gate_step, run_gate


def main(overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "configs"), version_base="1.3"):
        cfg = compose(config_name="audit", overrides=overrides)
    dm = instantiate(cfg.data, _convert_="partial")
    settings = dm.integrity_settings()
    start = time.perf_counter()
    out = gate_step(settings=settings, enforce=False, **dm.gate_inputs())
    print("carved", {k: len(v) for k, v in out.sets.items()}, "in %.1f s" % (time.perf_counter() - start))
    again = run_gate({"train": out.sets["train"], "val": out.sets["val"]}, settings, cache_dir=None,
                     dataset="carve-recheck")
    print("second audit of train and val: %d pairs, %d validation images" % (
        len(again.pairs), len({p.b.index for p in again.pairs})))
    for p in again.pairs[:20]:
        print(" ", p.kind, p.a.path, p.b.path, round(1 - p.distance, 3))


if __name__ == "__main__":
    main(sys.argv[1:])
