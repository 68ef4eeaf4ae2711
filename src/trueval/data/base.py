"""The classification DataModule every dataset option shares.

A subclass only says how to read its data (``load_splits``). This base then, in order: makes the
splits the template is responsible for (a seeded, stratified ratio split, or validation carved
from the training set, never from the test set, keeping duplicate clusters and user groups
whole), takes the `data.fraction` subset of the training set, runs the integrity gate and applies
its policy before any training step, computes normalisation statistics on the training split,
and serves loaders: the GPU-resident loader when the data fits on the GPU, torch DataLoaders
otherwise.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from trueval.core.graph import merged_groups
from trueval.core.samples import SampleSet
from trueval.data.augment_options import check_spec, is_identity
from trueval.core.errors import TooFewCandidates, UserError

if TYPE_CHECKING:  # imported where used: reading splits and the gate need no torch
    import torch

log = logging.getLogger("trueval")

SPLITS = ("train", "val", "test")
# candidates for a validation split carved from train, beyond val_fraction (CIFAR-10: 5% of them have
# copies in the rest of train and stay there)
_VAL_RESERVE = 0.1


class ClassificationData:
    """Shared split, integrity, normalisation and loader logic; subclasses implement ``load_splits``.

    Lightning-free, so that building one (the audit does nothing more) imports neither Lightning
    nor torch: a dataset module defines ``<Name>Data`` and its ``<Name>DataModule``, the same class
    with ``pl.LightningDataModule`` mixed in, is made on first use (``lightning_classes``).
    """

    task = "classification"

    def __init__(
        self,
        name: str,
        data_dir: str = "data",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int | str = "auto",
        fraction: float = 1.0,
        val_fraction: float = 0.1,
        split: Sequence[float] | None = None,
        seed: int = 42,
        image_size: int | None = None,
        loader: str = "auto",
        augment: Mapping[str, Any] | None = None,
        integrity: Mapping[str, Any] | None = None,
        group_regex: str | None = None,
        cache_dir: str | None = None,
        drop_last: bool = False,
        steps_per_call: int = 1,
        folds: int | None = None,
        fold: int | None = None,
        classes: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"batch size must be a positive integer, got {batch_size!r}", key="data.batch_size")
        if not 0 < float(fraction) <= 1:
            raise UserError(f"fraction must be in (0, 1], got {fraction}", key="data.fraction")
        if not 0 <= float(val_fraction) < 1:
            raise UserError(f"val_fraction must be in [0, 1), got {val_fraction}", key="data.val_fraction")
        if isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int) or steps_per_call < 1:
            raise UserError(f"steps_per_call must be a positive integer, got {steps_per_call!r}",
                            key="data.steps_per_call")
        if loader not in ("auto", "gpu", "torch"):
            raise UserError(f"loader must be auto, gpu or torch, got {loader!r}", key="data.loader")
        if split is not None:
            split = [float(s) for s in split]
            if len(split) != 3 or any(s < 0 for s in split) or abs(sum(split) - 1.0) > 1e-6:
                raise UserError(f"split must be three non-negative ratios train/val/test summing to 1, got {split} "
                                f"(sum {sum(split):.4g})", key="data.split")
        self.folds, self.fold = _check_folds(folds, fold)
        self.name = name
        self.data_dir = str(data_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.fraction = float(fraction)
        self.val_fraction = float(val_fraction)
        self.split = split
        self.seed = int(seed)
        self.image_size = image_size
        self.loader = loader
        self.drop_last = drop_last
        self.steps_per_call = steps_per_call
        augment = dict(augment or {})
        unknown = set(augment) - set(SPLITS)
        if unknown:
            raise UserError(f"augmentation is given per split (train, val, test), not {sorted(unknown)}",
                            key=f"data.augment.{sorted(unknown)[0]}")
        self.augment = {s: check_spec(augment.get(s), s) for s in SPLITS}
        self.integrity_cfg = dict(integrity or {})
        self.group_regex = group_regex
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.options = options
        self.sets: dict[str, SampleSet] = {}
        self.leak_report: Any = None
        self.policy_record: dict[str, Any] = {}
        self.manifest: dict[str, Any] = {}
        self.train_fingerprint: dict[str, Any] = {}
        self.class_names: list[str] = []
        self.mean: tuple[float, ...] = ()
        self.std: tuple[float, ...] = ()
        self._device_cache: dict[str, Any] = {}
        self.training_size: int | None = image_size
        # a subset of the dataset's classes, renumbered in this order (transfer: digits 0-4 -> 5-9)
        self.classes = None if classes is None else [str(c) for c in classes]

    # ----------------------------------------------------------------- to implement
    def load_splits(self) -> dict[str, SampleSet]:
        """Either {"all": pool} (the template splits by `data.split`) or {"train", "test"[, "val"]}."""
        raise NotImplementedError

    # ----------------------------------------------------------------- properties
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        train = self.sets["train"]
        if train.images is not None:
            _, h, w, c = train.images.shape
            return (c, h, w)
        sample = train.load(0)
        size = self.training_size
        return (sample.shape[2], size or sample.shape[0], size or sample.shape[1])

    # ----------------------------------------------------------------- setup
    def integrity_settings(self):
        from trueval.integrity import IntegritySettings

        return IntegritySettings.from_config(self.integrity_cfg)

    def gate_inputs(self) -> dict[str, Any]:
        """The arguments of ``trueval.integrity.gate_step`` for this dataset (all but the settings):
        the splits as read, and how the template cuts them (``cut``), keeping duplicate clusters whole."""
        raw = self.load_splits()
        if self.classes is not None:
            raw = self._select_classes(raw)
        if self.folds and "val" in raw and "all" not in raw:  # k-fold over a dataset that ships val/: pooled
            raw = {**raw, "train": _concat(raw["train"], raw["val"])}
            del raw["val"]
        # pairs of splits the template cut itself
        carved: list[tuple[str, str]] = []
        if "all" in raw:
            if self.split is None:
                raise UserError(f"{self.name}: one pool of data needs ratios to split it, e.g. data.split=[0.8,0.1,0.1]",
                                key="data.split")
            carved = [("train", "val"), ("train", "test"), ("val", "test")]
        else:
            if "train" not in raw or "test" not in raw:
                raise UserError(f"{self.name}: needs a train and a test split, found {sorted(raw)}", key="data")
            if "val" not in raw:
                if self.val_fraction <= 0:
                    raise UserError(f"{self.name} has no validation split: set data.val_fraction > 0",
                                    key="data.val_fraction")
                carved = [("train", "val")]
        needs_cut = bool(carved) or self.fraction < 1.0 or bool(self.options.get("exclude"))
        candidates = self._val_candidates(raw) if carved == [("train", "val")] and not self.folds else None

        def cut(clusters, hard):  # ``hard``: the candidates the search was told of (None: every sample)
            return self._cut(raw, clusters, None if hard is None else hard.get("train"))

        return {"splits": raw, "cache_dir": self._gate_cache(), "dataset": self.name,
                "cut": cut if needs_cut else None,
                "candidates": {"train": candidates} if candidates is not None else None, "carved": tuple(carved),
                "manifest": {"dataset": self.name, "seed": self.seed, "fraction": self.fraction,
                             "split_ratios": self.split, "val_fraction": self.val_fraction,
                             **({"folds": self.folds, "fold": self.fold} if self.folds else {})}}

    def _val_candidates(self, raw: Mapping[str, SampleSet]) -> np.ndarray:
        """The train samples validation may be carved from (a bool per sample): a seeded stratified draw
        of `data.val_fraction` and a reserve (``_VAL_RESERVE``), user groups whole. The gate searches
        them against the rest of train as hard as across splits; searching every training image so
        was a third of the search's time (CIFAR-10: 62 s against 42 s on 2 cores). The reserve
        stands in for candidates whose copies stay in train with them."""
        from trueval.data.splitting import group_stratified_split

        train = raw["train"]
        share = min(1.0, self.val_fraction * (1.0 + _VAL_RESERVE))
        _, drawn = group_stratified_split(train.targets, self._groups(train, cluster=False), [1.0 - share, share],
                                          self.seed)
        mask = np.zeros(len(train), bool)
        mask[drawn] = True
        return mask

    def _cut(self, raw: Mapping[str, SampleSet], clusters, candidates: np.ndarray | None = None
             ) -> dict[str, tuple[str, np.ndarray]]:
        """The splits the template makes, as indices into the read splits: a ratio split of one pool or
        validation carved from train (never from test; only from ``candidates`` when the gate searched
        only those hard: ``TooFewCandidates`` when too few are free), then the `data.fraction` of
        train. Duplicate clusters (``clusters(split)``, from the gate's own search) and user groups
        stay whole."""
        from trueval.data.splitting import carve_from_candidates, group_stratified_split, stratified_subset

        if "all" in raw:
            pool = raw["all"]
            groups = self._groups(pool, clusters=clusters("all"))
            parts = group_stratified_split(pool.targets, groups, self.split, self.seed)
            if self.folds:  # k-fold: the test part as without folds; train and val are folds of the rest
                rest = np.sort(np.concatenate(parts[:2]))
                tr, va = self._fold_parts(pool.targets[rest], groups[rest])
                parts = [rest[tr], rest[va], parts[2]]
            plan = {s: ("all", np.sort(idx)) for s, idx in zip(SPLITS, parts)}
        else:
            plan = {s: (s, np.arange(len(ss))) for s, ss in raw.items()}
            if "val" not in raw:
                train = raw["train"]
                groups = self._groups(train, clusters=clusters("train"))
                if self.folds:
                    tr, va = self._fold_parts(train.targets, groups)
                elif candidates is not None:
                    size = int(round(self.val_fraction * len(train)))
                    tr, va, free = carve_from_candidates(train.targets, groups, candidates, size, self.seed)
                    if free < size:
                        raise TooFewCandidates(f"{free} of the {int(candidates.sum())} validation candidates have no "
                                               f"copy in the rest of train, {size} wanted")
                else:
                    tr, va = group_stratified_split(train.targets, groups, [1 - self.val_fraction, self.val_fraction],
                                                    self.seed)
                plan["train"], plan["val"] = ("train", np.sort(tr)), ("train", np.sort(va))
        if self.fraction < 1.0:
            src, idx = plan["train"]
            train = raw[src].subset(idx)
            keep = stratified_subset(train.targets, self.fraction, self.seed, groups=self._groups(train, cluster=False))
            plan["train"] = (src, idx[np.sort(keep)])
        if self.options.get("exclude"):  # a manifest of quality.py quality.fix=true
            from trueval.data.exclusions import exclude_from_plan

            plan = exclude_from_plan(raw, plan, self.options["exclude"])
        for split in SPLITS:
            if len(plan[split][1]) == 0:
                raise UserError(f"{self.name}: the {split} split is empty", key="data.split" if self.split else "data")
        self._warn_classes_without_samples(raw, plan)
        return {s: plan[s] for s in SPLITS}

    def _select_classes(self, raw: dict[str, SampleSet]) -> dict[str, SampleSet]:
        """Keep the samples of ``data.classes`` only, their targets renumbered 0..k-1 in that order."""
        known = [str(c) for c in self.class_names]
        unknown = [c for c in self.classes if c not in known]
        if unknown or len(set(self.classes)) != len(self.classes) or not self.classes:
            raise UserError(f"data.classes must name distinct classes of {self.name}, got {self.classes} "
                            f"(its classes: {known})", key="data.classes")
        mapping = np.full(len(known), -1, dtype=np.int64)
        for new, name in enumerate(self.classes):
            mapping[known.index(name)] = new
        out = {}
        for split, ss in raw.items():
            keep = np.flatnonzero(mapping[ss.targets] >= 0)
            subset = ss.subset(keep)
            subset.targets = mapping[subset.targets]
            out[split] = subset
        self.class_names = list(self.classes)
        return out

    def _fold_parts(self, targets: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """k-fold cross-validation: fold `data.fold` of `data.folds` is validation, the others train."""
        from trueval.data.splitting import group_kfold_split

        log.info("%s: k-fold cross-validation, fold %d of %d is the validation split (test split untouched)",
                 self.name, self.fold, self.folds)
        return group_kfold_split(targets, groups, self.folds, self.fold, self.seed)

    def _warn_classes_without_samples(self, raw: Mapping[str, SampleSet], plan) -> None:
        """Say which classes a split has no sample of (a class of one image stays in train)."""
        for split in ("val", "test"):
            src, idx = plan[split]
            if src == split:
                continue  # the user's own split: as given
            have = set(np.unique(raw[src].targets[idx]).tolist())
            pool = set(np.unique(raw[src].targets).tolist())
            missing = sorted(pool - have)
            if missing:
                names = [self.class_names[c] if c < len(self.class_names) else str(c) for c in missing]
                log.warning("%s: the %s split has no sample of class(es) %s (too few images, or one cluster of "
                            "copies: kept in train)", self.name, split, ", ".join(names[:10]))

    def sample_sets(self) -> dict[str, SampleSet]:
        """The train/val/test splits as the template makes them, before the integrity policy."""
        from trueval.integrity import gate_step

        return gate_step(settings=self.integrity_settings(), enforce=False, **self.gate_inputs()).sets

    def setup(self, stage: str | None = None) -> None:
        if self.sets:
            return
        from trueval.integrity import gate_step

        outcome = gate_step(settings=self.integrity_settings(), enforce=True, **self.gate_inputs())
        self.leak_report, self.policy_record = outcome.report, outcome.record
        self.sets = sets = outcome.sets
        self.manifest, self.train_fingerprint = outcome.manifest, outcome.fingerprint
        self.split_prints = outcome.prints  # pixel hashes + small thumbnails per split (eval's overlap check)
        self.training_size = self._training_size()
        self.mean, self.std = self._normalisation(sets["train"], self.training_size)
        log.info("%s: train %d, val %d, test %d samples, %d classes, input %s", self.name,
                 len(sets["train"]), len(sets["val"]), len(sets["test"]), self.num_classes, self.in_shape)

    def _caching(self) -> bool:
        """`data.integrity.cache=false` bypasses every cache: the gate's and the decoded images'."""
        return self.integrity_cfg.get("cache", True) is not False

    def _array_cache(self) -> Path | None:
        """Where decoded images are cached (None: `data.integrity.cache=false`, or no cache dir)."""
        return self.cache_dir if self._caching() else None

    def _folder(self, root: str | Path) -> Path:
        """``data.root`` as a folder: an archive (.tar.gz, .zip, ...) is unpacked once, by content,
        into the cache (``core.archives``), a temporary folder without one."""
        from trueval.core.archives import ARCHIVE_SUFFIXES, is_archive, unpacked
        from trueval.integrity.console import stage

        path = Path(root).expanduser()
        if not path.exists():
            raise UserError("no such folder or archive", key="data.root", path=str(path))
        if path.is_dir():
            return path
        if not is_archive(path):
            raise UserError(f"a file, not a folder or an archive ({', '.join(ARCHIVE_SUFFIXES)})", key="data.root",
                            path=str(path))
        with stage(f"reading the archive {path.name}", total=None):
            return unpacked(root, self._array_cache())

    def _gate_cache(self) -> Path | None:
        return None if self.cache_dir is None or not self._caching() else self.cache_dir / "integrity"

    def _groups(self, ss: SampleSet, cluster: bool = True, clusters: np.ndarray | None = None) -> np.ndarray:
        """Group id per sample: duplicate clusters (``clusters``, else found now when ``cluster``) and
        `data.group_regex` groups, merged."""
        from trueval.data.splitting import groups_from_regex

        if clusters is None and cluster:
            from trueval.integrity import duplicate_groups

            clusters = duplicate_groups(ss, self.integrity_settings(), cache_dir=self._gate_cache())
        groups = np.arange(len(ss)) if clusters is None else np.asarray(clusters)
        if self.group_regex:
            if ss.paths is None:
                raise UserError("group_regex needs file-backed data (file names to match)", key="data.group_regex")
            user = np.asarray(groups_from_regex(ss.paths, self.group_regex))
            groups = merged_groups(groups, user)
        return groups

    def _training_size(self) -> int | None:
        """One side length for file-backed images of different sizes (a batch needs one size): the
        user's `data.image_size`, else the median side, said once."""
        if self.image_size or all(self.sets[s].images is not None for s in SPLITS):
            return self.image_size
        from trueval.data.imagefolder import header_sizes

        # every split's files in one stage (one line on the console, not one per split)
        sizes = header_sizes([p for s in SPLITS if self.sets[s].paths is not None for p in self.sets[s].paths])
        if len(set(sizes.values())) <= 1:
            return None
        side = int(np.median([min(wh) for wh in sizes.values()]))
        examples = ", ".join(f"{Path(p).name} {w}x{h}" for p, (w, h) in list(_distinct(sizes).items())[:3])
        log.warning("%s: images differ in size (%d sizes, e.g. %s): resized to %dx%d for training "
                    "(set data.image_size to choose)", self.name, len(set(sizes.values())), examples, side, side)
        return side

    @staticmethod
    def _normalisation(train: SampleSet, size: int | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean/std of the training split (up to 10,000 samples), on the 0-1 scale."""
        n = len(train)
        idx = np.random.default_rng(0).choice(n, size=min(n, 10_000), replace=False) if n > 10_000 else np.arange(n)
        if train.images is not None:
            x = train.images[idx].astype(np.float64) / 255.0
            mean, std = x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2))
        else:  # images of any size: pooled over every pixel of up to 500 of them
            loaded = [train.load(int(i)) for i in idx[:500]]
            pixels = np.concatenate([a.reshape(-1, a.shape[-1]) for a in loaded]).astype(np.float64) / 255.0
            mean, std = pixels.mean(axis=0), pixels.std(axis=0)
        std = np.where(std < 1e-6, 1.0, std)
        return tuple(float(m) for m in mean), tuple(float(s) for s in std)

    # ----------------------------------------------------------------- loaders
    def _device(self) -> torch.device:
        import torch

        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.strategy.root_device
        return torch.device("cpu")

    def _use_gpu_loader(self) -> bool:
        if self.loader == "torch":
            return False
        device = self._device()
        in_memory = all(self.sets[s].images is not None for s in SPLITS)
        trainer = getattr(self, "trainer", None)
        distributed = trainer is not None and trainer.world_size > 1
        if self.loader == "gpu":
            if not in_memory:
                raise UserError("loader=gpu needs data that fits in memory (set data.image_size for image folders)",
                                key="data.loader")
            return True
        if device.type != "cuda" or not in_memory or distributed:
            return False
        from trueval.data.gpu_loader import fits_on_gpu

        nbytes = sum(self.sets[s].images.nbytes for s in SPLITS)
        return fits_on_gpu(nbytes, device)

    def _workers(self, split: str) -> int:
        if self.num_workers != "auto":
            return int(self.num_workers)
        ss = self.sets[split]
        if ss.images is not None and is_identity(self.augment[split]):
            return 0  # indexing a tensor is faster than any worker hand-off
        return min(8, os.cpu_count() or 1)

    def _loader(self, split: str) -> Any:
        import torch
        from torch.utils.data import DataLoader

        from trueval.data.datasets import SampleDataset
        from trueval.data.transforms import build_transform

        train = split == "train"
        batch = self.batch_size if train else self.eval_batch_size
        weights = None
        if train and self.options.get("sampler"):  # data.sampler=balanced
            from trueval.data.samplers import sample_weights

            weights = sample_weights(self.options["sampler"], self.sets[split].targets)
        if self._use_gpu_loader():
            from trueval.data.gpu_loader import GpuLoader

            device = self._device()
            if split not in self._device_cache:
                ss = self.sets[split]
                images = torch.from_numpy(np.ascontiguousarray(ss.images)).permute(0, 3, 1, 2).contiguous()
                self._device_cache[split] = (images.to(device), torch.as_tensor(ss.targets).to(device))
            images, targets = self._device_cache[split]
            spec = self.augment[split]
            module = getattr(getattr(self, "trainer", None), "lightning_module", None)
            overfit = bool(getattr(getattr(self, "trainer", None), "overfit_batches", 0))
            return GpuLoader(images=images, targets=targets, batch_size=batch, shuffle=train and not overfit,
                             drop_last=self.drop_last and train, augment=None if is_identity(spec) else spec,
                             mean=self.mean, std=self.std, seed=self.seed + SPLITS.index(split),
                             channels_last=bool(getattr(module, "channels_last", False)),
                             steps_per_call=self.steps_per_call if train else 1,
                             weights=None if weights is None else torch.as_tensor(weights, device=device))
        if train and self.steps_per_call > 1:
            log.info("data.steps_per_call=%d applies to the GPU-resident loader only: the DataLoader "
                     "hands the training step one batch at a time", self.steps_per_call)
        ss = self.sets[split]
        resize = self.training_size if ss.images is None else None
        transform = build_transform(self.augment[split], self.mean, self.std, image_size=resize, split=split)
        workers = self._workers(split)
        generator = torch.Generator().manual_seed(self.seed)
        dataset = SampleDataset(ss, transform)
        if weights is not None:  # data.sampler=balanced
            from trueval.data.samplers import weighted_sampler

            sampler = weighted_sampler(weights, generator)
        else:
            from trueval.data.gpu_loader import EpochShuffleSampler

            # epoch k's order from (seed, k) alone, so that a resumed run sees the orders an unbroken one saw
            sampler = EpochShuffleSampler(dataset, self.seed) if train else None
        return DataLoader(dataset, batch_size=batch, sampler=sampler,
                          drop_last=self.drop_last and train, num_workers=workers, generator=generator,
                          pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)

    def train_dataloader(self) -> Any:
        return self._loader("train")

    def val_dataloader(self) -> Any:
        return self._loader("val")

    def test_dataloader(self) -> Any:
        return self._loader("test")

    def class_weights(self) -> list[float]:
        """Inverse-frequency weights of the training split ("balanced", as scikit-learn defines it)."""
        counts = np.bincount(self.sets["train"].targets, minlength=self.num_classes).astype(np.float64)
        counts = np.where(counts == 0, 1, counts)
        return [float(w) for w in counts.sum() / (self.num_classes * counts)]


_LIGHTNING: dict[tuple[str, str], type] = {}


def lightning_classes(module: str, name: str, plain: Mapping[str, type]) -> type:
    """A dataset module's ``__getattr__``: ``plain[name]`` (a Lightning-free data class: a
    ``ClassificationData``, or ``YoloData``) with ``pl.LightningDataModule`` mixed in, made once, on
    first use, under the module and name the configs' ``_target_`` gives (so Hydra finds it and
    pickle finds it again). Importing a dataset module therefore imports no Lightning: the audit
    builds the plain class (``plain_class``). A classification dataset's class also derives from
    ``ClassificationDataModule``."""
    if name not in plain:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    if (module, name) not in _LIGHTNING:
        import pytorch_lightning as pl

        base = plain[name]
        lightning = (lightning_classes(__name__, "ClassificationDataModule", LIGHTNING_FREE)
                     if issubclass(base, ClassificationData) and base is not ClassificationData
                     else pl.LightningDataModule)
        _LIGHTNING[module, name] = type(name, (base, lightning), {"__module__": module, "__qualname__": name,
                                                                 "__doc__": base.__doc__})
    return _LIGHTNING[module, name]


def plain_class(target: str) -> str:
    """The Lightning-free class behind a DataModule ``_target_`` (itself when its module has none)."""
    import importlib

    module, _, name = target.rpartition(".")
    if not module.startswith("trueval.data."):  # nothing else is imported before the allow-list check
        return target
    try:
        plain = vars(importlib.import_module(module)).get("LIGHTNING_FREE", {}).get(name)
    except ImportError:
        return target
    return target if plain is None else f"{module}.{plain.__name__}"


LIGHTNING_FREE = {"ClassificationDataModule": ClassificationData}


def __getattr__(name: str) -> type:
    return lightning_classes(__name__, name, LIGHTNING_FREE)


def _distinct(sizes: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """One file per distinct size (for naming examples)."""
    out: dict[tuple[int, int], str] = {}
    for p, wh in sizes.items():
        out.setdefault(wh, p)
    return {p: wh for wh, p in out.items()}


def _check_folds(folds: Any, fold: Any) -> tuple[int | None, int | None]:
    """`data.folds` / `data.fold`: both unset (no cross-validation), or k >= 2 folds and one of them."""
    if folds in (None, 0, 1) and fold is None:
        return None, None
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        if folds in (None, 0, 1):
            raise UserError(f"data.fold={fold} needs data.folds (the number of folds, at least 2)", key="data.folds")
        raise UserError(f"folds must be an integer of at least 2, got {folds!r}", key="data.folds")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise UserError(f"data.folds={folds} runs one trial per fold: set data.fold to one of 0..{folds - 1}, or "
                        f"run all of them with python train.py -m data.folds={folds} 'data.fold=range({folds})' "
                        + ("(data.fold is not set)" if fold is None else f"(got data.fold={fold!r})"), key="data.fold")
    return folds, fold


def _concat(a: SampleSet, b: SampleSet) -> SampleSet:
    """One SampleSet of two splits' samples (for k-fold over a dataset that ships its own val split)."""
    if (a.images is None) != (b.images is None) or (a.paths is None) != (b.paths is None):
        raise UserError("data.folds: the train and val splits are stored differently (files and arrays); "
                        "cannot pool them for cross-validation", key="data.folds")
    images = None if a.images is None else np.concatenate([a.images, b.images])
    paths = None if a.paths is None else [*a.paths, *b.paths]
    return SampleSet(split="train", targets=np.concatenate([a.targets, b.targets]), images=images, paths=paths,
                     sources=[*a.sources, *b.sources], name=a.name, origin=[*(a.origin or []), *(b.origin or [])],
                     image_mode=a.image_mode)
