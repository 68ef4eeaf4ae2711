"""eval.py reads a checkpoint as data: it never runs code from it and refuses to score the wrong thing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from data.test_imagefolder import write_class_tree
from helpers import compose_cfg, load_ckpt, run_cli, run_inprocess
from trueval.core.errors import UserError
from trueval.tasks.checkpoints import check_fits_data, check_stored_config, load_checkpoint
from trueval.tasks.evaluate import evaluate
from trueval.tasks.runner import run_task
from trueval.tasks.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real one-epoch run on three RGB class folders: (data root, best checkpoint)."""
    base = tmp_path_factory.mktemp("trained")
    root = base / "images"
    for split, seed in (("train", 1), ("val", 2), ("test", 3)):
        write_class_tree(root / split, per_class=6 if split == "train" else 3, seed=seed)
    _, m = run_inprocess(train, "train", ["data=imagefolder", f"data.root={root}", "trainer.max_epochs=1",
                                          "logger=none"], base / "run")
    assert m["status"] == "ok", m["error"]
    return root, Path(m["best_checkpoint"])


def _refused_eval(tmp_path: Path, overrides: list[str]) -> str:
    """Run eval in-process as eval.py does; it must exit 2. Returns the recorded error."""
    from helpers import FAST

    cfg = compose_cfg("eval", FAST + ["logger=none", *overrides], tmp_path / "eval")
    with pytest.raises(SystemExit) as exit_info:
        run_task(evaluate, cfg)
    assert exit_info.value.code == 2
    record = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert record["status"] == "failed"
    return record["error"]


def _craft(ckpt: Path, out: Path, edit) -> Path:
    data = load_ckpt(ckpt)
    edit(data)
    torch.save(data, out)
    return out


@pytest.mark.slow
def test_a_checkpoint_config_cannot_run_code(trained: tuple[Path, Path], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = {"_target_": "sympy.sympify", "_args_": [f"__import__('os').system('touch {marker}')"]}

    def edit(c: dict) -> None:
        c["hyper_parameters"]["cfg"]["data"] = payload

    evil = _craft(trained[1], tmp_path / "evil.ckpt", edit)
    torch.load(evil, weights_only=True)  # the file itself is plain data
    proc = run_cli("eval.py", [f"ckpt_path={evil}", f"paths.log_dir={tmp_path / 'logs'}", "logger=none"], timeout=120)
    assert not marker.exists(), "code from the checkpoint ran"
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "data._target_" in proc.stderr and "sympy.sympify" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_stored_config_refuses_what_the_allow_list_does_not_hold() -> None:
    good = {"model": {"_target_": "trueval.models.nets.mlp.MLP", "depth": 2}}
    check_stored_config(good, "x.ckpt")
    cases = {
        # a nested node that a recursive instantiate would call
        "model.kwargs.act._target_": {"model": {"_target_": "trueval.models.nets.mlp.MLP",
                                                "kwargs": {"act": {"_target_": "os.system", "_args_": ["id"]}}}},
        # a class reached through a module of an allowed package is not one of its classes
        "data._target_": {"data": {"_target_": "trueval.data.detection.datamodule.tarfile.TarFile"}},
        # a function of an allowed package is not a constructor
        "callbacks.x._target_": {"callbacks": {"x": {"_target_": "trueval.data.splitting.groups_from_regex"}}},
        "trainer.strategy._target_": {"trainer": {"strategy": {"_target_": "builtins.eval", "_args_": ["1"]}}},
    }
    for key, cfg in cases.items():
        with pytest.raises(UserError, match=key.replace(".", r"\.").replace("[", r"\[")):
            check_stored_config(cfg, "x.ckpt")
    with pytest.raises(UserError, match="interpolation"):
        check_stored_config({"data": {"root": "${oc.env:HOME}"}}, "x.ckpt")


def test_eval_refuses_renamed_class_folders(trained: tuple[Path, Path], tmp_path: Path) -> None:
    root, ckpt = trained
    renamed = tmp_path / "renamed"
    shutil.copytree(root, renamed)
    for split in ("train", "val", "test"):
        for k, name in enumerate(("red", "green", "blue")):
            (renamed / split / f"class_{k}").rename(renamed / split / name)
    error = _refused_eval(tmp_path, [f"ckpt_path={ckpt}", f"+data.root={renamed}"])
    assert "classes are not the checkpoint's" in error and "'class_0'" in error and "'blue'" in error


def test_eval_refuses_images_of_another_channel_count(trained: tuple[Path, Path], tmp_path: Path) -> None:
    root, ckpt = trained
    gray = tmp_path / "gray"
    shutil.copytree(root, gray)
    for png in gray.rglob("*.png"):
        Image.open(png).convert("L").save(png)
    # image folders are converted to one declared colour mode (RGB unless data.image_mode says otherwise):
    # greyscale files alone no longer change the input; declaring them greyscale does
    error = _refused_eval(tmp_path, [f"ckpt_path={ckpt}", f"+data.root={gray}", "+data.image_mode=L"])
    assert "1 channel where the network takes 3" in error and "3x16x16" in error


def test_eval_refuses_weights_of_another_architecture(trained: tuple[Path, Path], tmp_path: Path) -> None:
    def narrower(c: dict) -> None:
        c["hyper_parameters"]["cfg"]["model"]["width"] = 32

    other = _craft(trained[1], tmp_path / "other.ckpt", narrower)
    error = _refused_eval(tmp_path, [f"ckpt_path={other}"])
    assert "another size" in error and "network [32," in error


def test_class_order_and_image_size_are_named() -> None:
    hp = {"class_names": ["cat", "dog"], "in_shape": [3, 32, 32]}
    check_fits_data(hp, ["cat", "dog"], (3, 32, 32), "x.ckpt")
    with pytest.raises(UserError, match="another order"):
        check_fits_data(hp, ["dog", "cat"], (3, 32, 32), "x.ckpt")
    with pytest.raises(UserError, match=r"64x64 pixels .* 32x32 \(\+data.image_size=32"):
        check_fits_data(hp, ["cat", "dog"], (3, 64, 64), "x.ckpt")


def test_files_that_are_not_checkpoints_are_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(str(tmp_path / "missing.ckpt"))
    empty = tmp_path / "empty.ckpt"
    empty.touch()
    with pytest.raises(UserError, match=r"empty \(0 bytes\)"):
        load_checkpoint(str(empty))
    tensor = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(UserError, match="not a checkpoint: the file holds Tensor"):
        load_checkpoint(str(tensor))
    truncated = tmp_path / "truncated.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(100)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(UserError, match="cannot load the checkpoint"):
        load_checkpoint(str(truncated))


def test_a_run_directory_stands_for_its_best_checkpoint(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """`eval.py ckpt_path=<run dir>` as `baseline.py` takes it (before: "is not a file")."""
    from trueval.tasks.checkpoints import checkpoint_file

    _, ckpt = trained
    run_dir = ckpt.parent.parent
    assert checkpoint_file(str(run_dir)) == ckpt  # metrics.json's best_checkpoint
    _, record = run_inprocess(evaluate, "eval", [f"ckpt_path={run_dir}", "logger=none"], tmp_path / "eval")
    assert record["status"] == "ok", record["error"]
    assert record["checkpoint"] == str(ckpt.resolve())
    empty = tmp_path / "no_run"
    empty.mkdir()
    with pytest.raises(UserError, match="a run directory without a checkpoint"):
        checkpoint_file(str(empty))
