"""Planted-duplicate benchmark of the integrity gate (recall per transform, false pairs, time).

    # extract the CIFAR-10 JPEG copy outside the repository first
    mkdir -p /tmp/cifar10 && tar xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp/cifar10
    python benchmarks/planted_duplicates.py suite --root /tmp/cifar10 --classes airplane,cat,ship
    python benchmarks/planted_duplicates.py audit --root /tmp/cifar10

``suite``: for each class, a 3,000-image suite of ONE class (tiny photos of one class look alike,
which is what the verification must keep apart): 1,500 originals as the train split; a test split
of 1,500 images of the same class, of which 40 per (transform, strength) are transformed copies of
distinct train originals and the rest are other photos. Reports recall per transform and strength
(a planted pair counts when the gate reports that pair), the unplanted pairs (false pairs, unless
CIFAR itself holds a near-copy: a contact sheet ``unplanted_<class>.png`` is written to inspect them)
and the time. Any image folder with ``<split>/<class>/*`` works as ``--root``.

``audit``: the gate on the whole dataset (train/ against test/, every file), cold and with a warm cache.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from trueval.data.samples import SampleSet
from trueval.integrity import IntegritySettings, print_report, run_gate

# --------------------------------------------------------------------------- transforms


def _encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg(im, quality, rng):
    return _encode(im, "JPEG", quality=int(quality)), ".jpg"


def resize(im, factor, rng):
    w, h = im.size
    return _encode(im.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BICUBIC)), ".png"


def crop(im, keep, rng):
    """Keep ``keep`` of each side at a random position, resized back to the original size."""
    w, h = im.size
    cw, ch = round(w * keep), round(h * keep)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return _encode(im.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BICUBIC)), ".png"


def shift(im, pixels, rng):
    """Translate by ``pixels`` in a random direction, black fill (like RandomCrop with padding)."""
    a = np.asarray(im)
    angle = rng.uniform(0, 2 * np.pi)
    dx, dy = int(round(pixels * np.cos(angle))), int(round(pixels * np.sin(angle)))
    if dx == 0 and dy == 0:
        dx = int(pixels)
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = a[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return _encode(Image.fromarray(out)), ".png"


def brightness(im, factor, rng):
    return _encode(ImageEnhance.Brightness(im).enhance(factor)), ".png"


def contrast(im, factor, rng):
    return _encode(ImageEnhance.Contrast(im).enhance(factor)), ".png"


def hflip(im, _, rng):
    return _encode(im.transpose(Image.FLIP_LEFT_RIGHT)), ".png"


def grayscale(im, channels, rng):
    g = im.convert("L")
    return _encode(g if channels == 1 else g.convert("RGB")), ".png"


TRANSFORMS = {
    "jpeg": (jpeg, [90, 70, 50, 30]),  # quality
    "resize": (resize, [0.5, 0.75, 1.5, 2.0]),  # factor (the copy keeps its new size)
    "crop": (crop, [0.95, 0.9, 0.85]),  # fraction of each side kept, resized back
    "shift": (shift, [1, 2, 3, 4]),  # pixels, black fill
    "brightness": (brightness, [0.6, 0.8, 1.25, 1.5]),
    "contrast": (contrast, [0.5, 0.75, 1.33, 1.6]),
    "hflip": (hflip, [1]),
    "grayscale": (grayscale, [1, 3]),  # channels of the saved copy
}

# --------------------------------------------------------------------------- suite


def class_files(root: Path, cls: str) -> list[Path]:
    files = sorted(p for split in sorted(root.iterdir()) if (root / split / cls).is_dir()
                   for p in (root / split / cls).iterdir() if p.is_file())
    if not files:
        sys.exit(f"no files for class {cls!r} under {root}/<split>/{cls}/")
    return files


def build_suite(root: Path, cls: str, work: Path, size: int, per: int, seed: int):
    """Train originals, test = planted copies + other photos; returns the two sets and the planted pairs."""
    rng = np.random.default_rng(seed)
    files = class_files(root, cls)
    half = size // 2
    combos = [(name, s) for name, (_, strengths) in TRANSFORMS.items() for s in strengths]
    n_copies = per * len(combos)
    if n_copies > half or 2 * half > len(files):
        sys.exit(f"class {cls}: {len(files)} files are too few for a {size}-image suite with {n_copies} copies")
    order = rng.permutation(len(files))
    train_files = [files[i] for i in order[:half]]
    others = [files[i] for i in order[half:half + half - n_copies]]
    out = work / f"suite-{cls}" / "test"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sources = rng.choice(half, n_copies, replace=False)
    test_paths, planted = [], {}
    for c, (name, strength) in enumerate(combos):
        fn = TRANSFORMS[name][0]
        for k, src in enumerate(sources[c * per:(c + 1) * per]):
            with Image.open(train_files[src]) as im:
                data, ext = fn(im.convert("RGB"), strength, rng)
            path = out / f"copy_{name}_{strength}_{k:03d}{ext}"
            path.write_bytes(data)
            planted[len(test_paths)] = (int(src), name, strength)
            test_paths.append(str(path))
    test_paths += [str(p) for p in others]
    train = SampleSet("train", np.zeros(len(train_files), np.int64), paths=[str(p) for p in train_files],
                      sources=[str(root)], name=f"suite-{cls}")
    test = SampleSet("test", np.zeros(len(test_paths), np.int64), paths=test_paths, sources=[str(out)],
                     name=f"suite-{cls}")
    return train, test, planted


def contact_sheet(pairs: list[tuple[str, str]], path: Path, cell: int = 64) -> None:
    if not pairs:
        return
    per_row = 10
    rows = (len(pairs) + per_row - 1) // per_row
    sheet = Image.new("RGB", (per_row * (cell + 6), rows * (2 * cell + 10)), "white")
    for k, (a, b) in enumerate(pairs):
        x, y = (k % per_row) * (cell + 6), (k // per_row) * (2 * cell + 10)
        for j, p in enumerate((a, b)):
            with Image.open(p) as im:
                sheet.paste(im.convert("RGB").resize((cell, cell), Image.NEAREST), (x, y + j * (cell + 2)))
    sheet.save(path)


def run_suite(args) -> None:
    root, work = Path(args.root), Path(args.workdir)
    settings = IntegritySettings.from_config({"cache": False, "thresholds": _threshold_overrides(args)})
    found_by = defaultdict(list)
    summary = []
    for cls in args.classes.split(","):
        train, test, planted = build_suite(root, cls, work, args.size, args.per, args.seed)
        start = time.perf_counter()
        report = run_gate({"train": train, "test": test}, settings, cache_dir=None, dataset=f"suite-{cls}")
        seconds = time.perf_counter() - start
        reported = {(p.a.index, p.b.index) for p in report.pairs if p.a.split == "train" and p.b.split == "test"}
        for j, (src, name, strength) in planted.items():
            found_by[(name, strength)].append((src, j) in reported)
        unplanted = sorted(pair for pair in reported if planted.get(pair[1], (None,))[0] != pair[0])
        contact_sheet([(train.paths[a], test.paths[b]) for a, b in unplanted[:200]], work / f"unplanted_{cls}.png")
        summary.append({"class": cls, "images": len(train) + len(test), "planted": len(planted),
                        "unplanted_pairs": len(unplanted), "within_split_duplicates": report.within_split_duplicates,
                        "near_threshold": report.near_threshold, "seconds": round(seconds, 1)})
        print(json.dumps(summary[-1]))
    print("\n| transform | strength | copies | recall |\n|---|---|---|---|")
    per_transform = defaultdict(list)
    for (name, strength), hits in found_by.items():
        per_transform[name] += hits
        print(f"| {name} | {strength} | {len(hits)} | {np.mean(hits):.3f} |")
    print("\n| transform | copies | recall |\n|---|---|---|")
    for name, hits in per_transform.items():
        print(f"| {name} | {len(hits)} | {np.mean(hits):.3f} |")
    allhits = [h for v in per_transform.values() for h in v]
    print(f"\noverall recall {np.mean(allhits):.3f} over {len(allhits)} planted copies; "
          f"unplanted pairs per suite: {[s['unplanted_pairs'] for s in summary]}; "
          f"seconds per suite: {[s['seconds'] for s in summary]}")


# --------------------------------------------------------------------------- audit


def folder_set(root: Path, split: str) -> SampleSet:
    classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
    paths, targets = [], []
    for t, cls in enumerate(classes):
        for p in sorted((root / split / cls).iterdir()):
            paths.append(str(p.resolve()))
            targets.append(t)
    return SampleSet(split, np.asarray(targets), paths=paths, sources=[str((root / split).resolve())],
                     name=root.name)


def run_audit(args) -> None:
    root = Path(args.root)
    cache = Path(tempfile.mkdtemp(prefix="trueval-gate-cache-"))
    settings = IntegritySettings.from_config({"thresholds": _threshold_overrides(args)})
    try:
        for label in ("cold", "warm"):
            sets = {"train": folder_set(root, "train"), "test": folder_set(root, "test")}  # fresh objects each run
            start = time.perf_counter()
            report = run_gate(sets, settings, cache_dir=cache, dataset=root.name)
            seconds = time.perf_counter() - start
            print(f"{label}: {seconds:.1f} s, {len(report.pairs)} cross-split pairs, "
                  f"{report.within_split_duplicates} within-split duplicates")
        print_report(report)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _threshold_overrides(args) -> dict:
    return {k: v for k, v in (("near", args.near), ("candidates", args.candidates)) if v is not None}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("suite", "audit"))
    ap.add_argument("--root", default="/tmp/cifar10", help="image folder with <split>/<class>/ files")
    ap.add_argument("--workdir", default="/tmp/trueval-planted", help="where planted copies are written")
    ap.add_argument("--classes", default="airplane", help="comma-separated classes, one suite each")
    ap.add_argument("--size", type=int, default=3000, help="images per suite")
    ap.add_argument("--per", type=int, default=40, help="planted copies per transform and strength")
    ap.add_argument("--near", type=float, default=None, help="override thresholds.near")
    ap.add_argument("--candidates", type=int, default=None, help="override thresholds.candidates")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    run_suite(args) if args.mode == "suite" else run_audit(args)


if __name__ == "__main__":
    main()
