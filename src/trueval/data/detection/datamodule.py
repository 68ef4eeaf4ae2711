"""The YOLO-format detection DataModule (`data=yolo`).

``setup`` does, in order and before any training: read the dataset yaml, resolve each split to
its images, read and validate every label file (``data.labels.policy``), take the
``data.fraction`` subset of the training split, run the integrity gate on the images of all
splits and apply its policy, then print the data report. Loaders yield lists of float images at
``data.image_size`` and lists of target dicts (boxes in pixels, class ids 0..K-1).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from trueval.data.detection.augment_options import RESIZE_MODES, check_augment
from trueval.data.detection.labels import (ImageLabels, LabelProblem, POLICIES, apply_label_policy,
                                           find_orphan_labels, read_split_labels)
from trueval.data.detection.report import data_report, print_report
from trueval.data.detection.yolo_yaml import SPLIT_KEYS, YoloSpec, label_path_for, load_yolo_yaml, resolve_split
from trueval.core.archives import unpack
from trueval.core.samples import SampleSet, displayed_sizes, resolve
from trueval.core.errors import UserError

if TYPE_CHECKING:  # imported where used: reading splits and the gate need no torch
    from torch.utils.data import DataLoader

    from trueval.data.detection.dataset import DetectionDataset

log = logging.getLogger("trueval")


class YoloData:
    """Train/val/test splits of a YOLO dataset yaml, gated for leaks before training.

    Lightning-free, so that building one (the audit does nothing more) imports neither Lightning
    nor torch: ``trueval.data.detection.YoloDataModule``, the same class with
    ``pl.LightningDataModule`` mixed in, is made on first use (``trueval.data.base.lightning_classes``).
    """

    task = "detection"

    def __init__(
        self,
        yaml_path: str,
        image_size: int = 320,
        resize: str = "letterbox",
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int | str = "auto",
        fraction: float = 1.0,
        seed: int = 42,
        val_split: str = "val",
        labels: Mapping[str, Any] | None = None,
        augment: Mapping[str, Any] | None = None,
        integrity: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        archive: str | None = None,
        data_dir: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"batch size must be a positive integer, got {batch_size!r}", key="data.batch_size")
        if not isinstance(image_size, int) or image_size < 32:
            raise UserError(f"image size must be an integer >= 32, got {image_size!r}", key="data.image_size")
        if not 0 < float(fraction) <= 1:
            raise UserError(f"fraction must be in (0, 1], got {fraction}", key="data.fraction")
        if resize not in RESIZE_MODES:
            raise UserError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}", key="data.resize")
        labels = dict(labels or {})
        self.label_policy = str(labels.pop("policy", "fail"))
        if labels:
            raise UserError(f"unknown option(s) {sorted(labels)}", key=f"data.labels.{sorted(labels)[0]}")
        if self.label_policy not in POLICIES:
            raise UserError(f"label policy must be one of {', '.join(POLICIES)}, got {self.label_policy!r}",
                            key="data.labels.policy")
        if yaml_path in (None, "", "???"):
            raise UserError("point data.yaml_path at a YOLO dataset yaml", key="data.yaml_path")
        self.yaml_path = str(yaml_path)
        self.image_size = image_size
        self.resize = resize
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.fraction = float(fraction)
        self.seed = int(seed)
        self.val_split = str(val_split)
        self.augment = check_augment(augment)
        self.integrity_cfg = dict(integrity or {})
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.archive = archive
        self.data_dir = data_dir
        self._name = name

        self.spec: YoloSpec | None = None
        self.items: dict[str, list[ImageLabels]] = {}
        self.sets: dict[str, SampleSet] = {}
        self.label_problems: list[LabelProblem] = []
        self.image_sizes: dict[str, tuple[int, int]] = {}
        self.report: dict[str, Any] = {}
        self.leak_report: Any = None
        self.policy_record: dict[str, Any] = {}
        self.manifest: dict[str, Any] = {}
        self.train_fingerprint: dict[str, Any] = {}
        self.class_names: list[str] = []

    # ----------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self._name or f"yolo:{Path(self.yaml_path).parent.name or self.yaml_path}"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def has_test(self) -> bool:
        return "test" in self.items

    @property
    def leaky(self) -> bool:
        return bool(self.leak_report is not None and getattr(self.leak_report, "has_leak", False))

    # ----------------------------------------------------------------- data on disk
    def prepare_data(self) -> None:
        self._ensure_extracted()

    def _ensure_extracted(self) -> None:
        """Unpack ``data.archive`` into ``data.data_dir`` when the yaml is not there yet (local file only)."""
        if Path(self.yaml_path).expanduser().is_file() or not self.archive:
            return
        archive = Path(self.archive).expanduser()
        if not archive.is_file():
            raise UserError(f"neither the dataset yaml ({self.yaml_path}) nor the archive to unpack exists",
                            key="data.archive", path=str(archive))
        dest = Path(self.data_dir or Path(self.yaml_path).parent.parent).expanduser()
        unpack(archive, dest, key="data.archive")  # safely, and whole or not at all (concurrent sweep jobs)
        log.info("unpacked %s into %s", archive, dest)
        if not Path(self.yaml_path).expanduser().is_file():
            raise UserError(f"unpacked {archive} into {dest}, but the yaml is still missing",
                            key="data.yaml_path", path=self.yaml_path)

    # ----------------------------------------------------------------- setup
    def gate_inputs(self) -> dict[str, Any]:
        """The arguments of ``trueval.integrity.gate_step`` for this dataset (all but the settings): every
        split's images, with labels read and validated, and the `data.fraction` of the training split."""
        self._ensure_extracted()
        self.spec = load_yolo_yaml(self.yaml_path)
        self.class_names = list(self.spec.names)
        self.label_problems = []
        items, sources = self._read_splits(self.spec)
        if self.fraction < 1.0:
            items["train"] = self._subset(items["train"])
        self.items = items
        # as displayed (EXIF orientation applied), from each header, before anything decodes: every
        # unreadable file is named at once
        self.image_sizes = displayed_sizes([it.image for split_items in items.values() for it in split_items])
        sets = {split: self._sample_set(split, its, sources[split]) for split, its in items.items()}
        manifest = {"task": "detection", "dataset": self.name, "yaml": self.spec.yaml_path, "root": self.spec.root,
                    "class_names": self.class_names, "seed": self.seed, "fraction": self.fraction,
                    "val_split": self.val_split, "image_size": self.image_size, "resize": self.resize,
                    "label_policy": self.label_policy}
        return {"splits": sets, "cache_dir": self._gate_cache(), "dataset": self.name, "manifest": manifest,
                "target_key": "boxes"}

    def sample_sets(self) -> dict[str, SampleSet]:
        """Every split's images as read (labels validated), before the integrity policy."""
        return self.gate_inputs()["splits"]

    def setup(self, stage: str | None = None) -> None:
        if self.sets:
            return
        from trueval.integrity import gate_step

        outcome = gate_step(settings=self.integrity_settings(), enforce=True, **self.gate_inputs())
        self.leak_report, self.policy_record = outcome.report, outcome.record
        items, sets = self.items, outcome.sets
        # keep the images the gate's policy kept (policy drop removes leaking ones)
        for split, ss in sets.items():
            keep = set(ss.paths or [])
            items[split] = [it for it in items[split] if resolve(it.image) in keep]
        self.items, self.sets = items, sets
        self.report = data_report(items, self.image_sizes, self.class_names)
        print_report(self.report, self.class_names)
        self.manifest = {**outcome.manifest, "label_problems": [str(p) for p in self.label_problems],
                         "report": self.report}
        self.train_fingerprint = outcome.fingerprint
        self.split_prints = outcome.prints  # pixel hashes + small thumbnails per split (eval's overlap check)
        self._log_summary()

    def _gate_cache(self) -> Path | None:
        caching = self.integrity_cfg.get("cache", True) is not False
        return None if self.cache_dir is None or not caching else self.cache_dir / "integrity"

    def _read_splits(self, spec: YoloSpec) -> tuple[dict[str, list[ImageLabels]], dict[str, list[str]]]:
        """Images and validated labels of every split, and the folders / list files each was read from."""
        items: dict[str, list[ImageLabels]] = {}
        sources: dict[str, list[str]] = {}
        for split, (key, split_entries) in self._split_entries(spec).items():
            files = resolve_split(spec, split_entries, key)
            if files.duplicates:
                log.warning("%s split: %d image(s) named more than once, kept once", split, files.duplicates)
            labels = read_split_labels(files.images, len(spec.names), label_path_for)
            claimed = [it.label_file for it in labels if it.label_file]
            folders = [s for s in files.sources if s not in files.list_sources]
            orphans = find_orphan_labels(folders, claimed, label_path_for)
            kept, problems = apply_label_policy(split, labels, orphans, self.label_policy)
            if not kept:
                raise UserError(f"the {split} split has no usable images left", key="data.labels.policy")
            self.label_problems += problems
            items[split], sources[split] = kept, files.sources
        return items, sources

    def _split_entries(self, spec: YoloSpec) -> dict[str, tuple[str, list[str]]]:
        """split -> (the yaml key or path it reads, entries); ``data.val_split`` may redirect val."""
        out = {"train": ("train", spec.entries["train"])}
        if self.val_split in spec.entries:
            out["val"] = (self.val_split, spec.entries[self.val_split])
        elif self.val_split in SPLIT_KEYS:
            raise UserError(f"the dataset yaml has no `{self.val_split}:` split", key="data.val_split")
        else:  # a folder or list file, relative to the dataset root
            out["val"] = ("data.val_split", [self.val_split])
        if "test" in spec.entries:
            out["test"] = ("test", spec.entries["test"])
        else:
            log.warning("%s has no `test:` split: no test metrics (train.py needs test=false)", spec.yaml_path)
        return out

    def _subset(self, items: list[ImageLabels]) -> list[ImageLabels]:
        """A seeded ``data.fraction`` of the training images (at least one)."""
        n = max(1, int(round(self.fraction * len(items))))
        keep = np.sort(np.random.default_rng(self.seed).choice(len(items), size=n, replace=False))
        return [items[i] for i in keep]

    def _sample_set(self, split: str, items: list[ImageLabels], sources: list[str]) -> SampleSet:
        paths = [resolve(it.image) for it in items]
        root = self.spec.root if self.spec else ""
        return SampleSet(split=split, targets=np.array([len(it.classes) for it in items], dtype=np.int64),
                         paths=paths, sources=list(sources), name=self.name,
                         origin=[os.path.relpath(p, root) if root else p for p in paths], image_mode="RGB")

    def integrity_settings(self):
        from trueval.integrity import IntegritySettings

        return IntegritySettings.from_config(self.integrity_cfg)

    def _log_summary(self) -> None:
        counts = ", ".join(f"{s} {len(v)}" for s, v in self.items.items())
        log.info("%s: %s images, %d classes (%s), image size %d (%s)%s", self.name, counts, self.num_classes,
                 ", ".join(self.class_names), self.image_size, self.resize, "  [LEAKY]" if self.leaky else "")

    # ----------------------------------------------------------------- loaders
    def _workers(self) -> int:
        if self.num_workers == "auto":
            return min(8, os.cpu_count() or 1)
        try:
            return int(self.num_workers)
        except (TypeError, ValueError) as exc:
            raise UserError(f"num_workers must be an integer or auto, got {self.num_workers!r}",
                            key="data.num_workers") from exc

    def split_items(self, split: str) -> list[ImageLabels]:
        """The labelled images of a split, in the order of ``self.sets[split]`` (which eval may subset)."""
        if split not in self.sets:
            if split == "test" and self.sets:
                raise UserError("the dataset yaml has no `test:` split; run with test=false", key="test")
            raise UserError(f"no {split} split (call setup first)", key="data")
        by_path = {resolve(it.image): it for it in self.items[split]}
        return [by_path[p] for p in self.sets[split].paths or []]

    def dataset(self, split: str, train_transforms: bool | None = None) -> DetectionDataset:
        """The Dataset of one split; the training split is augmented unless told otherwise."""
        items = self.split_items(split)
        augment = split == "train" if train_transforms is None else train_transforms
        from trueval.data.detection.dataset import DetectionDataset
        from trueval.data.detection.transforms import build_detection_transform

        transform = build_detection_transform(self.image_size, self.resize, self.augment, train=augment)
        return DetectionDataset(items, transform)

    def _loader(self, split: str) -> DataLoader:
        import torch
        from torch.utils.data import DataLoader

        from trueval.data.detection.dataset import detection_collate

        train = split == "train"
        workers = self._workers()
        return DataLoader(
            self.dataset(split), batch_size=self.batch_size if train else self.eval_batch_size, shuffle=train,
            num_workers=workers, collate_fn=detection_collate, generator=torch.Generator().manual_seed(self.seed),
            pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

