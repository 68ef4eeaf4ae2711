"""The baseline task (``python baseline.py``): scikit-learn linear models on pixels and features.

Same data config, splits and integrity gate as train.py. ``ckpt_path`` names a trueval checkpoint
(or run directory) whose network's penultimate features feed the ``*_features`` methods. Each
method writes ``<run>/<method>/metrics.json`` in the schema every run uses (``test/acc``, ...);
the run's own ``metrics.json`` holds them all as ``test/acc/<method>``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from trueval.core.errors import UserError
from trueval.tasks import artifacts
from trueval.tasks.builders import build_datamodule, build_network
from trueval.tasks.runner import overrides
from trueval.utils.run_record import RunRecord

log = logging.getLogger("trueval")


def ordered_loader(dm: Any, split: str, batch_size: int = 512, trained: Mapping[str, Any] | None = None) -> DataLoader:
    """The split in file order, normalised as for the network, without augmentation. ``trained``: a
    checkpoint's hyper-parameters, whose statistics (and, for images of mixed sizes, side) the
    network's input follows instead of this data's."""
    from trueval.data.datasets import SampleDataset
    from trueval.data.transforms import build_transform, check_spec

    ss = dm.sets[split]
    mean, std, side = dm.mean, dm.std, dm.training_size  # images of mixed sizes: the side training uses
    if trained is not None:
        mean, std = trained.get("mean") or mean, trained.get("std") or std
        shape = trained.get("in_shape")
        side = int(shape[1]) if shape is not None and int(shape[1]) == int(shape[2]) else side
    transform = build_transform(check_spec(None, split), mean, std, image_size=side if ss.images is None else None)
    return DataLoader(SampleDataset(ss, transform), batch_size=batch_size, shuffle=False)


def checkpoint_network(path: str, dm: Any) -> tuple[Any, Mapping[str, Any]]:
    """The network of a trueval checkpoint (or run directory), its weights restored, for features,
    and the checkpoint's hyper-parameters (the statistics its input was normalised by)."""
    import torch

    from trueval.models.pretrained import read_weights, resolve_path

    file = resolve_path(path, "ckpt_path")
    ckpt = read_weights(file, "ckpt_path")
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not hparams or "cfg" not in hparams:
        raise UserError("not a trueval checkpoint (no stored run config)", key="ckpt_path", path=str(file))
    model_cfg = OmegaConf.create(hparams["cfg"]["model"])
    in_shape = dm.in_shape
    if dm.sets["train"].images is None and hparams.get("in_shape") is not None:
        in_shape = tuple(int(v) for v in hparams["in_shape"])  # mixed sizes are resized to the network's
    net = build_network(model_cfg, in_shape, int(hparams["num_classes"]), load_weights=False)
    state = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"the checkpoint's network does not fit this data ({in_shape}): "
                        f"{str(exc).splitlines()[0]}", key="ckpt_path", path=str(file)) from None
    return net.to(torch.device("cpu")), hparams


def split_arrays(dm: Any, net: Any = None, trained: Mapping[str, Any] | None = None
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import torch

    from trueval.models.linear_baselines import extract

    device = "cuda" if net is not None and torch.cuda.is_available() else "cpu"
    return {split: extract(ordered_loader(dm, split, trained=trained), net, device) for split in ("train", "val", "test")}


def run_baselines(data_cfg: DictConfig, methods: list[str], ckpt_path: str | None, out_dir: Path,
                  seed: int, Cs: list[float], max_iter: int, record_overrides: list[str] | None = None,
                  dm: Any = None) -> dict[str, dict[str, float]]:
    """Fit every method; ``out_dir/<method>/metrics.json`` each; returns {method: metrics}."""
    from trueval.models.linear_baselines import fit_and_score, parse_method

    parsed = {m: parse_method(m) for m in methods}
    needs_features = any(inputs == "features" for _, inputs in parsed.values())
    if needs_features and not ckpt_path:
        raise UserError("the *_features baselines need a network: ckpt_path=<checkpoint or run directory>",
                        key="ckpt_path")
    if dm is None:
        dm = build_datamodule(data_cfg)
        dm.setup("fit")
    arrays = {"pixels": split_arrays(dm)}
    if needs_features:
        net, trained = checkpoint_network(str(ckpt_path), dm)
        arrays["features"] = split_arrays(dm, net, trained)
    results = {}
    for method, (_, inputs) in parsed.items():
        record = RunRecord(out_dir / method, list(record_overrides or []) + [f"method={method}"], seed, "baseline")
        metrics = fit_and_score(method, arrays[inputs], dm.num_classes, Cs=Cs, max_iter=max_iter, seed=seed)
        record.finish(metrics)
        results[method] = metrics
    return results


def baseline(cfg: DictConfig, record: RunRecord | None) -> float:
    """Returns the test accuracy of the first method."""
    started = time.time()
    run_dir = Path(cfg.paths.output_dir)
    artifacts.write_config(cfg, run_dir)
    dm = build_datamodule(cfg.data)
    try:
        dm.setup("fit")
    finally:
        artifacts.write_integrity(dm, run_dir, record)
    methods = [str(m) for m in cfg.methods]
    if not methods:
        raise UserError("no baseline methods given", key="methods")
    results = run_baselines(cfg.data, methods, cfg.get("ckpt_path"), run_dir, int(cfg.seed),
                            [float(c) for c in cfg.C], int(cfg.max_iter), overrides(), dm=dm)
    metrics = {f"{key}/{method}": value for method, values in results.items() for key, value in values.items()}
    metrics["time/run_seconds"] = round(time.time() - started, 3)
    if record is not None and cfg.get("ckpt_path"):
        record.update(checkpoint=str(Path(cfg.ckpt_path).resolve()))
    artifacts.finish(cfg, record, metrics, [], None)
    value = results[methods[0]].get("test/acc")
    return float(value) if value is not None else math.nan
