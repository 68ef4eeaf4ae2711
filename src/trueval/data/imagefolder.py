"""A user's own images in class folders: pre-split (`train/`, `val/`, `test/`) or one tree split by ratios.

Every image is converted to the dataset's one colour mode (`data.image_mode`, RGB by default: the
first file's mode decides nothing) and 16-bit images are scaled to 8 bits. Small images of one
size (or any images with `data.image_size` set) are decoded once, resized, and cached as one uint8
array keyed by the files' content: sweeps and repeated runs skip decoding, and the GPU-resident
loader can take them. Larger sets and folders of mixed sizes stay on disk and are decoded per item
(the integrity gate works on its own normalised thumbnails of any size; training resizes to one
size and says so).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from trueval.data.base import ClassificationData, lightning_classes
from trueval.core.samples import SampleSet, displayed_sizes, resolve, unreadable
from trueval.core.errors import UnreadableImages, UserError

log = logging.getLogger("trueval")

# torchvision.datasets.folder.IMG_EXTENSIONS (tests check they agree): importing torchvision costs
# seconds, and listing a folder needs none of it
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
IN_MEMORY_LIMIT_BYTES = 4 * 1024**3
SIZE_SAMPLE = 64  # headers read to estimate a folder's size in memory
DECODE_CHUNK = 4096  # files decoded and resized at a time (`data.image_size`)


def list_class_folders(folder: Path, classes: list[str] | None = None) -> tuple[list[str], list[int], list[str]]:
    """(resolved paths, class indices, class names) of ``folder/<class>/<image>``."""
    if not folder.is_dir():
        raise UserError("image folder does not exist", key="data.root", path=str(folder))
    found = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise UserError("no class folders inside (expected <root>/<class>/<image files>)", key="data.root",
                        path=str(folder))
    if classes is None:
        classes = found
    else:
        extra = sorted(set(found) - set(classes))
        if extra:
            raise UserError(f"classes {extra} are not in the training split", key="data.root", path=str(folder))
    paths, targets = [], []
    left_out: Counter[str] = Counter()
    for name in found:
        here: Counter[str] = Counter()
        files = image_files(folder / name, here)
        if not files:
            extra = f" ({_counted(here)}: not read)" if here else ""
            raise UserError(f"empty class folder: no image files inside{extra}; image files end in "
                            f"{', '.join(IMG_EXTENSIONS)}", key="data.root", path=str(folder / name))
        paths.extend(files)
        targets.extend([classes.index(name)] * len(files))
        left_out += here
    if left_out:
        # said, not silent: a researcher's .gif or .heic photos are neither trained on nor audited
        log.warning("%s: %d files left out, not image files by their extension (%s); read are %s, as "
                    "torchvision's ImageFolder reads", folder, sum(left_out.values()), _counted(left_out),
                    ", ".join(IMG_EXTENSIONS))
    return paths, targets, classes


def _counted(extensions: Counter[str]) -> str:
    return ", ".join(f"{n} {ext or 'without an extension'}" for ext, n in extensions.most_common())


def image_files(folder: Path, left_out: Counter[str] | None = None) -> list[str]:
    """Sorted resolved paths of the image files under ``folder`` (recursively), hidden files and
    folders left out (``core.files.hidden_under``'s rule, by name: the walk sees one name at a
    time). The folder is resolved once and only links are resolved per file: ``Path.resolve`` on
    each of 60,000 files took seconds. ``left_out``: counts the other files' extensions."""
    out: list[str] = []
    stack = [os.path.realpath(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file():
                    ext = os.path.splitext(e.name)[1].lower()
                    if ext in IMG_EXTENSIONS:
                        out.append(os.path.realpath(e.path) if e.is_symlink() else e.path)
                    elif left_out is not None:
                        left_out[ext] += 1
    return sorted(out)


def resize_array(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 NHWC array to size x size (antialiased bilinear)."""
    import torch
    from torchvision.transforms.v2 import functional as F

    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    x = F.resize(x, [size, size], antialias=True)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


MODES = ("RGB", "L")


def check_mode(mode: str) -> str:
    """The dataset's one colour mode (`data.image_mode`): every image is converted to it."""
    if mode not in MODES:
        raise UserError(f"image_mode must be RGB (colour) or L (greyscale), got {mode!r}", key="data.image_mode")
    return mode


def header_sizes(paths: list[str], quiet: bool = False) -> dict[str, tuple[int, int]]:
    """(width, height) of every file from its header (no decoding).
    ``quiet``: no progress stage (a sample of a few files)."""
    if quiet:
        return displayed_sizes(paths)
    from trueval.integrity.console import stage

    with stage("reading image sizes", total=None):
        return displayed_sizes(paths)


def _decode(paths: list[str], mode: str, size: int | None, strict: bool = True) -> np.ndarray | None:
    """One uint8 NHWC array of ``paths``. Images of different sizes are an error when ``strict`` (the
    user asked for `data.in_memory=true`); otherwise (auto) None, said as soon as a file shows a
    second size: such a folder stays files. With `data.image_size` every image is resized to it."""
    from trueval.integrity.console import stage

    assert paths, "no image files"  # refused before: an empty class folder is a UserError
    with stage("decoding images", total=len(paths)):
        from trueval.integrity.fingerprints import decode_alike  # torch and torchvision: seconds, shown

        found = decode_alike(paths, mode, size)  # one size already (CIFAR's files): no copy, no resize
        if isinstance(found, np.ndarray):
            return found
        if size:
            return _decode_resized(paths, mode, size)
    if not strict:
        return None
    examples = ", ".join(f"{Path(p).name} {sh[1]}x{sh[0]}" for sh, p in list(found.items())[:3])
    raise UserError(f"images have different sizes ({len(found)} distinct, e.g. {examples}) and "
                    "data.in_memory=true holds them as one array: set data.image_size to resize them, or "
                    "leave data.in_memory=auto", key="data.image_size")


def _decode_resized(paths: list[str], mode: str, size: int) -> np.ndarray:
    """``paths`` decoded a chunk at a time and resized to ``size`` x ``size``, into one array (a list
    of them all stacked at the end held every image twice)."""
    from trueval.integrity.fingerprints import decode_in_chunks

    out: np.ndarray | None = None
    for start, decoded in zip(range(0, len(paths), DECODE_CHUNK), decode_in_chunks(paths, mode, DECODE_CHUNK)):
        resized = [resize_array(a[None], size)[0] if a.shape[:2] != (size, size) else a for a in decoded]
        if out is None:
            out = np.empty((len(paths), *resized[0].shape), np.uint8)
        np.stack(resized, out=out[start:start + len(resized)])
    assert out is not None
    return out


def decode_cached(paths: list[str], mode: str, size: int | None, cache_dir: Path | None,
                  strict: bool = True) -> np.ndarray | None:
    """Decoded uint8 NHWC pixels of ``paths``, from the array cache when the files' CONTENT is unchanged
    (keyed by a hash of their bytes: a swapped file with the old size and mtime is a miss). Not
    ``strict`` (`data.in_memory=auto`): None for images of several sizes, remembered in the cache under
    the same key, so a warm run neither decodes nor opens them to know."""
    from trueval.integrity.cache import GateCache, key_of, file_digests

    cache = GateCache(None if cache_dir is None else Path(cache_dir) / "arrays")
    key = ""
    if cache.dir is not None:
        digests = file_digests(paths)
        key = key_of("arrays", 3, mode, size, paths,  # 3: EXIF orientation applied
                      hashlib.blake2b(b"".join(digests)).hexdigest())
        hit = cache.load("decoded", key, ["images"])
        if hit is not None and hit["images"].ndim == 4 and len(hit["images"]) == len(paths) \
                and hit["images"].dtype == np.uint8:
            return hit["images"]
        if not strict and cache.load("not_held", key, ["count"]) is not None:
            return None
    images = _decode(paths, mode, size, strict)
    if images is None:
        cache.save("not_held", key, {"count": np.array(len(paths))})
        return None
    cache.save("decoded", key, {"images": images})
    return images


def _may_hold(paths: list[str], size: int | None, in_memory: Any, mode: str) -> bool:
    """Whether to try decoding into memory: when asked, or (auto) when the images would take under
    4 GiB, judged from the headers of at most ``SIZE_SAMPLE`` files spread over the list (opening all
    60,000 CIFAR files took 10-19 s on every run). Whether they really share one size is seen while
    decoding (``decode_cached``); a folder that does not stays files, decoded per item."""
    if in_memory in (True, "true"):
        return True
    if in_memory in (False, "false"):
        return False
    channels = 1 if mode == "L" else 3
    if size:
        return size * size * channels * len(paths) < IN_MEMORY_LIMIT_BYTES
    step = max(1, len(paths) // SIZE_SAMPLE)
    sizes = list(header_sizes(paths[::step][:SIZE_SAMPLE], quiet=True).values())
    if len(set(sizes)) > 1:
        return False
    w, h = sizes[0]
    return w * h * channels * len(paths) < IN_MEMORY_LIMIT_BYTES


def make_set(split: str, paths: list[str], targets: list[int], sources: list[str], name: str, mode: str,
             size: int | None, cache_dir: Path | None, in_memory: Any) -> SampleSet:
    images = None
    try:
        hold = _may_hold(paths, size, in_memory, mode)
    except UnreadableImages:  # the headers of a sample of the files: look at them all
        from trueval.integrity.console import stage

        with stage(f"looking for every {split} file that cannot be read", total=None):
            raise UnreadableImages(unreadable(paths, mode)) from None
    if hold:  # a decode that fails names the rest of the split's broken files itself (decode_in_chunks)
        images = decode_cached(paths, mode, size, cache_dir, strict=in_memory in (True, "true"))
    return SampleSet(split=split, targets=np.asarray(targets), images=images, paths=paths, sources=sources,
                     name=name, image_mode=mode)


def read_presplit(root: Path, name: str, image_size: int | None, cache_dir: Path | None,
                  in_memory: Any = "auto", mode: str = "RGB") -> tuple[dict[str, SampleSet], list[str]]:
    """``root/train`` and ``root/test`` (and ``root/val``, ``valid`` or ``validation`` if present) class-folder trees."""
    root = Path(root).expanduser()
    mode = check_mode(mode)
    if not (root / "train").is_dir():
        raise UserError("expected a train/ folder of class folders inside", key="data.root", path=str(root))
    paths, targets, classes = list_class_folders(root / "train")
    listed = {"train": (paths, targets, root / "train")}
    for split, folder in split_folders(root).items():
        if split != "train":
            listed[split] = (*list_class_folders(folder, classes)[:2], folder)
    sets = {}
    for split, (p, t, folder) in listed.items():
        try:
            sets[split] = make_set(split, p, t, [resolve(folder)], name, mode, image_size, cache_dir, in_memory)
        except UnreadableImages as exc:  # the other splits' broken files in the same message: the later
            # ones, and the earlier ones left as files (not decoded yet: a truncated file passes its header)
            others = [p for other, (p, _, _) in listed.items() if other != split
                      and (other not in sets or sets[other].images is None)]
            raise exc.with_more([e for files in others for e in unreadable(files, mode)]) from None
    if "test" not in sets:
        raise UserError("expected a test/ folder next to train/ (or use one class-folder tree with data.split)",
                        key="data.root", path=str(root))
    return sets, classes


# the folder names a split may have; validation has three spellings in the wild (Roboflow's
# exports write valid/, Keras and many Kaggle sets validation/)
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def split_folders(root: Path) -> dict[str, Path]:
    """The split folders of a pre-split root; two spellings of one split are an error, and any other
    folder beside them is named in a warning (it is not read, and the user should know)."""
    found: dict[str, Path] = {}
    for split, names in SPLIT_FOLDERS.items():
        present = [root / n for n in names if (root / n).is_dir()]
        if len(present) > 1:
            raise UserError(f"both {' and '.join(p.name + '/' for p in present)} are here: which one is the "
                            f"{split} split? Remove or rename the other", key="data.root", path=str(root))
        if present:
            found[split] = present[0]
    known = {n for names in SPLIT_FOLDERS.values() for n in names}
    others = sorted(p.name + "/" for p in root.iterdir()
                    if p.is_dir() and p.name not in known and not p.name.startswith(".") and p.name != "__MACOSX")
    if others:
        log.warning("%s: %s not read (only %s are splits)", root, ", ".join(others),
                    ", ".join(f"{n}/" for n in sorted(known)))
    return found


class ImageFolderData(ClassificationData):
    """`data.root` is either ``train/ [val/] test/`` class folders, or one class-folder tree plus `data.split`,
    or an archive (.tar.gz, .zip, ...) holding either."""

    def __init__(self, root: str | None = None, in_memory: Any = "auto", image_mode: str = "RGB",
                 **kwargs: Any) -> None:
        if not root:
            raise UserError("set the folder of your images: data.root=<dir>", key="data.root")
        kwargs.setdefault("name", f"imagefolder:{Path(root).name}")
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.in_memory = in_memory
        self.image_mode = check_mode(image_mode)

    def load_splits(self) -> dict[str, SampleSet]:
        root = self._folder(self.root)
        if not root.is_dir():
            raise UserError("image folder (or archive) does not exist", key="data.root", path=str(root))
        if (root / "train").is_dir():
            if self.split is not None:
                log.info("%s is already split into folders: data.split is ignored", self.root)
            sets, self.class_names = read_presplit(root, self.name, self.image_size, self._array_cache(),
                                                   self.in_memory, self.image_mode)
            return sets
        splits = sorted(f"{n}/" for names in SPLIT_FOLDERS.values() for n in names if (root / n).is_dir())
        if splits:  # read as one class tree, these would be classes named after splits
            raise UserError(f"{', '.join(splits)} but no train/ folder: a split root needs train/ (and test/); "
                            "one class-folder tree has a folder per class", key="data.root", path=str(root))
        paths, targets, self.class_names = list_class_folders(root)
        pool = make_set("all", paths, targets, [resolve(root)], self.name, self.image_mode, self.image_size,
                        self._array_cache(), self.in_memory)
        return {"all": pool}


LIGHTNING_FREE = {"ImageFolderDataModule": ImageFolderData}


def __getattr__(name: str) -> type:  # ImageFolderDataModule: ImageFolderData with Lightning, made on first use
    return lightning_classes(__name__, name, LIGHTNING_FREE)
