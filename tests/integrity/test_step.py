"""The one gate step: carved splits never leak, settings reach every DataModule, checks are said."""

from __future__ import annotations

import numpy as np

from synthetic import NEAR, jpeg, photos, shift
from trueval.core.samples import SampleSet
from trueval.data.base import ClassificationDataModule
from trueval.integrity import IntegritySettings, gate_step, match_fingerprint, print_report, run_gate


class ArrayData(ClassificationDataModule):
    """A DataModule over given arrays: {"train", "test"} (val carved) or {"all"} (ratio split)."""

    def __init__(self, splits: dict[str, np.ndarray], **kw) -> None:
        super().__init__(name="gen", num_workers=0, **kw)
        self.arrays = splits

    def load_splits(self) -> dict[str, SampleSet]:
        self.class_names = ["a", "b", "c"]
        return {s: SampleSet(s, np.arange(len(a)) % 3, images=a, name="gen") for s, a in self.arrays.items()}


def _pool_with_copies(n: int, seed: int) -> np.ndarray:
    """Photos, and for a sixth of them copies by shift+JPEG, crop or flip, and JPEG (clusters of 3-4)."""
    imgs = photos(n, seed=seed)
    copies = []
    for i in range(0, n, 6):
        copies.append(jpeg(shift(imgs[i], 2, 2), 60))
        copies.append(NEAR["crop"](imgs[i]) if i % 12 else NEAR["flip"](imgs[i]))
        if i % 12 == 0:
            copies.append(jpeg(imgs[i], 40))
    return np.concatenate([imgs, np.stack(copies)])


def test_validation_carved_from_train_keeps_every_cluster_whole() -> None:
    train = _pool_with_copies(120, seed=21)
    test = photos(30, seed=22)
    dm = ArrayData({"train": train, "test": test}, val_fraction=0.3, integrity={"cache": False})
    dm.setup()
    cross = {(p.a.split, p.b.split) for p in dm.leak_report.pairs}
    assert ("train", "val") not in cross
    assert dm.policy_record["carved_dropped"] == []
    assert dm.leak_report.within_split_duplicates >= 25  # most copies found (recall is not tested here), each inside one split
    # an independent gate over the carved splits agrees: no train/val pair
    again = run_gate({s: dm.sets[s] for s in ("train", "val")}, IntegritySettings.from_config({"cache": False}))
    assert not again.has_leak, again.summary_lines()


def test_ratio_split_of_a_pool_with_copies_is_clean() -> None:
    pool = _pool_with_copies(120, seed=23)
    dm = ArrayData({"all": pool}, split=[0.6, 0.2, 0.2], integrity={"cache": False})
    dm.setup()
    assert not dm.leak_report.has_leak and dm.policy_record["carved_dropped"] == []


def test_fingerprint_size_reaches_classification_checkpoints() -> None:
    imgs = photos(40, seed=3)
    dm = ArrayData({"train": imgs[:30], "val": imgs[30:35], "test": imgs[35:]},
                   integrity={"cache": False, "fingerprint_size": 8})
    dm.setup()
    assert dm.train_fingerprint["thumb_size"] == 8
    assert len(dm.manifest["splits"]["train"]["hashes"]) == 30


def test_one_function_returns_report_sets_manifest_and_fingerprint() -> None:
    imgs = photos(30, seed=5)
    sets = {"train": SampleSet("train", np.zeros(20), images=imgs[:20]),
            "val": SampleSet("val", np.zeros(5), images=imgs[20:25]),
            "test": SampleSet("test", np.zeros(6), images=np.concatenate([imgs[25:], imgs[:1]]))}
    out = gate_step(sets, IntegritySettings.from_config({"cache": False, "policy": "drop"}), dataset="gen")
    assert out.report.has_leak and len(out.sets["train"]) == 19 and len(out.sets["test"]) == 6
    assert out.manifest["splits"]["train"]["count"] == 19 and out.fingerprint["count"] == 19
    assert out.fingerprint["manifest_digest"] == out.manifest["train_digest"]
    # eval's overlap check can reuse the step's prints: the dropped copy is no longer in train
    settings = IntegritySettings.from_config({"cache": False})
    assert match_fingerprint(out.fingerprint, out.sets["test"], settings, prints=out.prints["test"]) == []
    kept = gate_step(sets, IntegritySettings.from_config({"cache": False, "policy": "warn"}))
    assert match_fingerprint(kept.fingerprint, kept.sets["test"], settings, prints=kept.prints["test"]) == [5]


def test_tiny_images_say_the_near_check_was_skipped(capsys) -> None:
    rng = np.random.default_rng(0)
    tiny = rng.integers(0, 255, (20, 8, 8, 1), dtype=np.uint8)
    sets = {"train": SampleSet("train", np.zeros(15), images=tiny[:15]),
            "test": SampleSet("test", np.zeros(5), images=tiny[15:])}
    report = run_gate(sets, IntegritySettings.from_config({"cache": False}))
    assert report.checks["exact"] == "ran" and report.checks["near"].startswith("skipped: every image is under 16 px")
    print_report(report)
    assert "skipped" in capsys.readouterr().out


def test_digits_audit_says_the_near_check_was_skipped_and_why(tmp_path) -> None:
    import json

    from helpers import compose_cfg
    from trueval.tasks.audit import audit
    from trueval.tasks.runner import run_task

    run_task(audit, compose_cfg("audit", ["data=digits"], tmp_path / "run"))
    checks = json.loads((tmp_path / "run" / "metrics.json").read_text())["checks"]
    assert checks["exact"] == "ran" and "under 16 px" in checks["near"] and checks["near"].startswith("skipped")


def test_the_prints_kept_for_each_split_are_that_splits_own() -> None:
    """The gate keeps each split's fingerprints as rows of the one array it searched (not a second copy):
    they must be exactly what that split alone gives, letterbox views renumbered from its first row."""
    from trueval.integrity.fingerprints import compute_prints
    from trueval.integrity.gate import find_duplicates

    imgs = photos(40, seed=5, size=48)
    boxed = imgs[30:].copy()
    boxed[:, :8], boxed[:, -8:] = 0, 0  # letterbox bars: these images get a view of their content
    splits = {"train": SampleSet("train", np.zeros(30), images=imgs[:30], name="gen"),
              "test": SampleSet("test", np.zeros(10), images=boxed, name="gen")}
    found = find_duplicates(splits, IntegritySettings.from_config({"cache": False}), prints_wanted=True)
    for name, ss in splits.items():
        alone, kept = compute_prints(ss), found.prints[name]
        for field in ("hashes", "thumbs", "boxes", "contrast", "side", "value_thumbs", "aspect"):
            assert np.array_equal(getattr(kept, field), getattr(alone, field)), (name, field)
        views = kept.views
        if alone.views is None:
            assert views is None or len(views) == 0
        else:
            assert np.array_equal(views.rows, alone.views.rows) and np.array_equal(views.thumbs, alone.views.thumbs)
    assert len(found.prints["test"].views) == 10


def test_the_audit_gets_its_report_without_copying_the_pixels_of_file_splits(tmp_path) -> None:
    """The audit only wants the report: splits whose samples are files come back without the copy of
    their decoded pixels (184 MB for CIFAR-10's carved splits), array-only splits keep theirs, and the
    report is the same."""
    from trueval.integrity.report import LeakReport

    imgs = _pool_with_copies(30, seed=31)
    files = [str(tmp_path / f"{i}.png") for i in range(len(imgs))]  # named, not read: the pixels are held
    with_files = SampleSet("train", np.arange(len(imgs)) % 3, images=imgs, paths=files, name="gen")
    leaked = np.concatenate([photos(17, seed=32), np.stack([jpeg(imgs[i], 50) for i in (1, 2, 3)])])
    arrays_only = SampleSet("test", np.arange(20) % 3, images=leaked, name="gen")
    settings = IntegritySettings.from_config({"cache": False})
    inputs = dict(splits={"train": with_files, "test": arrays_only}, dataset="gen", enforce=False)
    lean, full = gate_step(settings=settings, pixels=False, **inputs), gate_step(settings=settings, **inputs)
    assert lean.sets["train"].images is None and lean.sets["train"].paths == files
    assert lean.sets["test"].images is not None and full.sets["train"].images is not None
    strip = lambda r: {k: v for k, v in LeakReport.to_dict(r).items() if k != "seconds"}  # noqa: E731
    assert strip(lean.report) == strip(full.report) and len(lean.report.pairs) >= 3  # the copies are reported
