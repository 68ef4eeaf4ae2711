"""Reading a YOLO dataset yaml and resolving each split to its image files.

The layout is the Ultralytics one: ``path`` (the dataset root; relative to the yaml's folder, or
the yaml's folder when absent), ``train``/``val``/``test`` (each a folder of images, a text file
listing images, or a list of either, relative to ``path``) and ``names`` (a list, or a mapping
from class id to name). The yaml is data: it is read with ``yaml.safe_load`` and nothing in it
(``download:`` scripts included) is ever executed.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trueval.core.files import hidden_under
from trueval.core.samples import resolve
from trueval.core.errors import UserError

log = logging.getLogger(__name__)

# the image suffixes Ultralytics accepts that PIL decodes without plugins
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
SPLIT_KEYS = ("train", "val", "test")
# files that sit beside images without being one (labels next to their image, Ultralytics' caches, notes)
NOT_IMAGES = frozenset({".txt", ".cache", ".json", ".xml", ".yaml", ".yml", ".csv", ".md", ".npy"})


@dataclass(frozen=True)
class YoloSpec:
    """What a dataset yaml says, with ``root`` resolved and ``names`` as a list."""

    yaml_path: str
    root: str
    entries: dict[str, list[str]]  # split key -> the entries the yaml gave (folder / list file / image)
    names: list[str]


@dataclass(frozen=True)
class SplitFiles:
    """One split's images (resolved, in a stable order) and the folders / list files they came from."""

    images: list[str]  # absolute, symlinks kept (the label lookup follows the path as written)
    sources: list[str]
    list_sources: frozenset[str]  # the subset of sources that are list files or single images
    duplicates: int  # images named twice in the split (kept once)


def load_yolo_yaml(yaml_path: str | os.PathLike) -> YoloSpec:
    """Parse and check a dataset yaml; every problem names the file and the key."""
    path = Path(yaml_path).expanduser()
    if not path.is_file():
        raise UserError("dataset yaml not found", key="data.yaml_path", path=str(path))
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:  # an archive or an image passed as the yaml: bad input, not a crash
        hint = (f"; to unpack a local archive first, pass data.archive={path} and data.yaml_path=<the yaml it "
                f"holds, under data.data_dir>" if path.name.endswith((".tar.gz", ".tgz", ".tar", ".zip", ".gz"))
                else "")
        raise UserError(f"not a text file, so not a dataset yaml{hint}", key="data.yaml_path", path=str(path)) from exc
    except yaml.YAMLError as exc:  # includes python tags that safe_load refuses to construct
        raise UserError(f"not a valid data yaml (read with yaml.safe_load, nothing is executed): {exc}",
                        path=str(path)) from exc
    if not isinstance(doc, dict):
        raise UserError("a dataset yaml must be a mapping with path/train/val/test/names", path=str(path))
    if "download" in doc:
        log.info("%s: ignoring `download:`; trueval never downloads or runs code from a data yaml", path)

    base = path.parent
    root_value = doc.get("path")
    root = Path(str(root_value)).expanduser() if root_value not in (None, "") else base
    if not root.is_absolute():
        root = base / root
    if not root.is_dir():
        raise UserError(f"`path: {root_value}` is not a folder ({root})", path=str(path))

    entries: dict[str, list[str]] = {}
    for key in SPLIT_KEYS:
        value = doc.get(key)
        if value in (None, "", []):
            continue
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) and v for v in items):
            raise UserError(f"`{key}:` must be a path or a list of paths, got {value!r}", path=str(path))
        entries[key] = [str(v) for v in items]
    for key in ("train", "val"):
        if key not in entries:
            raise UserError(f"the yaml has no `{key}:` split", path=str(path))

    names = _parse_names(doc.get("names"), path)
    if "nc" in doc and int(doc["nc"]) != len(names):
        raise UserError(f"`nc: {doc['nc']}` but `names` has {len(names)} entries", path=str(path))
    return YoloSpec(yaml_path=resolve(path), root=resolve(root), entries=entries, names=names)


def _parse_names(value: Any, path: Path) -> list[str]:
    """``names`` as a list (index = class id) from a list or a {id: name} mapping."""
    if isinstance(value, list):
        names = [str(v) for v in value]
    elif isinstance(value, dict):
        try:
            ids = sorted(int(k) for k in value)
        except (TypeError, ValueError) as exc:
            raise UserError(f"`names` keys must be class ids 0..K-1, got {sorted(map(str, value))}",
                            path=str(path)) from exc
        if ids != list(range(len(ids))):
            raise UserError(f"`names` ids must be 0..{len(ids) - 1} without gaps, got {ids}", path=str(path))
        names = [str(value[i] if i in value else value[str(i)]) for i in ids]
    else:
        raise UserError("`names` must be a list of class names or a mapping {id: name}", path=str(path))
    if not names:
        raise UserError("`names` is empty", path=str(path))
    if len(set(names)) != len(names):
        raise UserError(f"`names` has repeated class names: {names}", path=str(path))
    return names


def resolve_split(spec: YoloSpec, entries: list[str], key: str) -> SplitFiles:
    """The image files of one split, from folders (searched recursively), list files or images."""
    images: list[str] = []
    sources: list[str] = []
    list_sources: set[str] = set()
    for entry in entries:
        p = _entry_path(spec, entry, key)
        if p.is_dir():
            files = [f for f in p.rglob("*") if f.is_file() and not hidden_under(f, p)]
            found = sorted(str(f) for f in files if f.suffix.lower() in IMAGE_SUFFIXES)
            _warn_skipped(files, f"{key}: {entry}")
            if not found:
                raise UserError(f"`{key}: {entry}` is a folder without images ({p})", path=spec.yaml_path)
            images += [os.path.abspath(f) for f in found]
            sources.append(resolve(p))
        elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            images.append(os.path.abspath(p))
            sources.append(resolve(p))
            list_sources.add(resolve(p))
        elif p.is_file():
            images += _read_list_file(p)
            sources.append(resolve(p))
            list_sources.add(resolve(p))
        else:
            raise UserError(f"`{key}: {entry}` does not exist ({p})", path=spec.yaml_path)
    # the same file named twice (a list file and its folder, say) is kept once
    seen: set[str] = set()
    unique = []
    for f in images:
        if resolve(f) not in seen:
            seen.add(resolve(f))
            unique.append(f)
    return SplitFiles(images=unique, sources=sources, list_sources=frozenset(list_sources),
                      duplicates=len(images) - len(unique))


def _warn_skipped(files: list[Path], where: str) -> None:
    """Say how many files of a split folder are left out as no image type read here (a .gif or .heic
    among the photos), by suffix: the split is otherwise silently smaller than the folder."""
    kinds = Counter(f.suffix.lower() or "(none)" for f in files
                    if f.suffix.lower() not in IMAGE_SUFFIXES and f.suffix.lower() not in NOT_IMAGES)
    if kinds:
        counted = ", ".join(f"{k} {n}" for k, n in kinds.most_common())
        log.warning("`%s`: %d files left out, not an image type read here (%s; read: %s)", where,
                    sum(kinds.values()), counted, " ".join(sorted(IMAGE_SUFFIXES)))


def _entry_path(spec: YoloSpec, entry: str, key: str) -> Path:
    """Where a split entry points: absolute, or relative to ``path``. A missing ``../x`` falls back to
    ``x`` under ``path``, as Ultralytics does: Roboflow's exports put the yaml beside ``train/`` and
    ``valid/`` yet write ``train: ../train/images``."""
    p = Path(entry).expanduser()
    if p.is_absolute():
        return p
    p = Path(spec.root) / p
    if not p.exists() and entry.startswith("../") and (Path(spec.root) / entry[3:]).exists():
        log.info("%s: `%s: %s` does not exist; reading %s instead (as Ultralytics does)",
                 spec.yaml_path, key, entry, entry[3:])
        return Path(spec.root) / entry[3:]
    return p


def _read_list_file(path: Path) -> list[str]:
    """Image paths from a text file, one per line; relative lines are relative to the file's folder."""
    out = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line).expanduser()
        p = p if p.is_absolute() else path.parent / p
        if not p.is_file():
            raise UserError(f"line {lineno}: listed image does not exist: {line}", path=str(path))
        out.append(os.path.abspath(p))
    if not out:
        raise UserError("the image list is empty", path=str(path))
    return out


def label_path_for(image_path: str) -> str:
    """The label file of an image: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``.

    The Ultralytics convention; an image outside an ``images`` folder has its label file next to it.
    """
    sep = os.sep
    head, marker, tail = image_path.rpartition(f"{sep}images{sep}")
    swapped = f"{head}{sep}labels{sep}{tail}" if marker else image_path
    return str(Path(swapped).with_suffix(".txt"))
