"""A tiny Hydra app for launcher tests: each job records its process, GPU and timing."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg: DictConfig) -> float:
    start = time.time()
    if cfg.crash:
        os._exit(7)  # dies without reporting, like a trial killed for memory
    if cfg.kill_value is not None and cfg.value == cfg.kill_value:
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-trial, like the kernel's OOM killer does
    if cfg.fail:
        raise RuntimeError("injected failure")
    time.sleep(cfg.sleep)
    out = Path(HydraConfig.get().runtime.output_dir)
    record = {"value": cfg.value, "pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
              "start": start, "end": time.time(), "num": HydraConfig.get().job.num}
    (out / "record.json").write_text(json.dumps(record))
    print(f"job {record['num']} done")
    return float(cfg.value)


if __name__ == "__main__":
    main()
