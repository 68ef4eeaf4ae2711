"""A checkpoint read as data, and checked against what eval.py builds from it.

Loading never runs code: ``torch.load(weights_only=True)`` for the file, the allow-list of
constructors for the config stored in it (``allowed_targets``), and no interpolations (a stored
config is resolved when it is saved, so ``${...}`` in one was put there by hand). Then the data and
network eval builds must be the ones the weights were trained for: the same class names in the same
order (renamed or reordered class folders would be scored against shuffled labels) and the same
input shape, and every weight tensor the size the network expects.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from trueval.core.errors import UserError
from trueval.tasks.allowed_targets import check_targets, iter_leaves
from trueval.tasks.knobs import REQUIRED

KEY = "ckpt_path"
log = logging.getLogger("trueval")


def checkpoint_file(path: str | None) -> Path:
    """``ckpt_path`` as a file: a run directory stands for its best checkpoint (``best_checkpoint`` in
    its metrics.json, else ``checkpoints/last.ckpt``), as for ``baseline.py``."""
    if not path:  # null (``???``, unset, is refused before: ``knobs.check_required``)
        raise UserError(REQUIRED[KEY], key=KEY)
    file = Path(str(path)).expanduser()
    if file.is_dir():
        from trueval.models.pretrained import resolve_path

        file = resolve_path(file, KEY)
        log.info("%s is a run directory: evaluating its checkpoint %s", path, file)
    return file


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint file at ``path`` (``checkpoint_file``) as plain data; anything that is not a
    trueval checkpoint is a user error."""
    file = Path(str(path)).expanduser()
    if not file.exists():
        raise UserError("checkpoint file does not exist", key=KEY, path=str(file))
    if not file.is_file():
        raise UserError("is not a file (give the .ckpt file or its run directory)", key=KEY,
                        path=str(file))
    if file.stat().st_size == 0:
        raise UserError("the checkpoint file is empty (0 bytes), probably a save cut short (full disk, killed job)",
                        key=KEY, path=str(file))
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with objects, other formats: many exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load the checkpoint with torch.load(weights_only=True): {first}", key=KEY,
                        path=str(file)) from None
    if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
        held = type(ckpt).__name__ if not isinstance(ckpt, Mapping) else f"a dict of {sorted(map(str, ckpt))[:5]}"
        raise UserError(f"not a checkpoint: the file holds {held}, not a Lightning checkpoint "
                        "(a dict with state_dict and hyper_parameters)", key=KEY, path=str(file))
    if not isinstance(ckpt.get("hyper_parameters"), Mapping) or not isinstance(ckpt["hyper_parameters"].get("cfg"),
                                                                               Mapping):
        raise UserError("not a trueval checkpoint (no stored run config)", key=KEY, path=str(file))
    check_stored_config(ckpt["hyper_parameters"]["cfg"], str(file))
    return dict(ckpt)


def check_stored_config(cfg: Mapping[str, Any], path: str) -> None:
    """Refuse a stored config that names a constructor outside the allow-list or holds ``${...}``."""
    check_targets(cfg, "", path=path)
    for key, value in iter_leaves(cfg):
        if isinstance(value, str) and "${" in value:
            raise UserError(f"the checkpoint's stored config holds the interpolation {value!r}; a saved config "
                            "is resolved, so this one was edited by hand and is not used", key=key, path=path)


def check_fits_data(hparams: Mapping[str, Any], class_names: Sequence[Any], in_shape: Sequence[int] | None,
                    path: str) -> None:
    """Refuse data whose classes or input shape differ from those the checkpoint was trained on."""
    stored = hparams.get("class_names")
    if stored is not None:
        ours, theirs = [str(c) for c in class_names], [str(c) for c in stored]
        if ours != theirs:
            raise UserError(_class_difference(theirs, ours), key="data", path=path)
    stored_shape = hparams.get("in_shape")
    if stored_shape is not None and in_shape is not None and list(stored_shape) != list(in_shape):
        c0, h0, w0 = (int(v) for v in stored_shape)
        c1, h1, w1 = (int(v) for v in in_shape)
        what = []
        if c0 != c1:
            what.append(f"{c1} channel{'s' * (c1 != 1)} where the network takes {c0}")
        if (h0, w0) != (h1, w1):
            what.append(f"{h1}x{w1} pixels where it was trained on {h0}x{w0}"
                        + (f" (+data.image_size={h0} resizes them)" if h0 == w0 else ""))
        raise UserError(f"the data's images do not fit the checkpoint: {' and '.join(what)} "
                        f"(input {c1}x{h1}x{w1}, checkpoint {c0}x{h0}x{w0}, channels x height x width)",
                        key="data", path=path)


def check_weights_fit(module: torch.nn.Module, state_dict: Mapping[str, Any], path: str) -> None:
    """Refuse weights of another architecture with the tensors that differ, instead of a
    size-mismatch traceback from ``load_state_dict``."""
    expected = module.state_dict()
    sized = [f"{k}: checkpoint {list(v.shape)}, network {list(expected[k].shape)}"
             for k, v in state_dict.items()
             if k in expected and isinstance(v, torch.Tensor) and v.shape != expected[k].shape]
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if not (sized or missing or unexpected):
        return
    parts = []
    if sized:
        parts.append(f"{len(sized)} tensor(s) of another size ({'; '.join(sized[:3])})")
    if missing:
        parts.append(f"{len(missing)} missing ({', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} not in the network ({', '.join(unexpected[:3])})")
    raise UserError("the checkpoint's weights are not those of the network its config describes (another "
                    "architecture or input?): " + "; ".join(parts), key=KEY, path=path)


def _class_difference(stored: list[str], ours: list[str]) -> str:
    if sorted(stored) == sorted(ours):
        first = next(i for i, (a, b) in enumerate(zip(stored, ours)) if a != b)
        return (f"the data has the checkpoint's {len(ours)} classes in another order (label {first} is "
                f"{ours[first]!r} in the data, {stored[first]!r} in the checkpoint): scores would be against "
                "shuffled labels.")
    gone = [c for c in stored if c not in ours]
    new = [c for c in ours if c not in stored]
    return (f"the data's classes are not the checkpoint's ({len(ours)} in the data, {len(stored)} in the "
            f"checkpoint): not in the data {_few(gone)}; not in the checkpoint {_few(new)}. Renamed class "
            "folders would be scored against shuffled labels; evaluate on data with the checkpoint's class names.")


def _few(names: list[str], n: int = 5) -> str:
    more = f", ... {len(names) - n} more" if len(names) > n else ""
    return "[" + ", ".join(repr(x) for x in names[:n]) + more + "]"

