"""last.ckpt is the last completed epoch; checkpoints are written whole or not at all."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from helpers import load_ckpt, run_inprocess
from trueval.callbacks.checkpoint import AtomicCheckpointIO
from trueval.tasks.train import train
from trueval.utils.run_record import OutputNotWritten

TINY = ["model.width=16", "model.depth=2", "+trainer.limit_train_batches=3", "logger=none",
        "callbacks.progress_bar=null"]


def test_last_ckpt_is_the_last_epoch_when_the_metric_stops_improving(run_dir: Path) -> None:
    # a learning rate of ~0: val/acc never improves after epoch 0, so the top-k checkpoint stays at
    # epoch 0; Lightning 2.6's save_last then left last.ckpt at epoch 0 as well
    _, record = run_inprocess(train, "train", TINY + ["trainer.max_epochs=3", "optimizer.lr=1e-12"], run_dir)
    assert record["status"] == "ok"
    ckpts = run_dir / "checkpoints"
    assert load_ckpt(ckpts / "epoch_000.ckpt")["epoch"] == 0  # the best is still epoch 0
    last = load_ckpt(ckpts / "last.ckpt")
    assert last["epoch"] == 2 and last["global_step"] == 9
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]


def _partial_then_enospc(checkpoint, fh) -> None:
    fh.write(b"PK\x03\x04 half a checkpoint")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_checkpoint_write_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    monkeypatch.setattr("trueval.callbacks.checkpoint.torch.save", _partial_then_enospc)
    with pytest.raises(OutputNotWritten, match="No space left on device") as info:
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    assert str(path) in str(info.value)
    assert load_ckpt(path)["epoch"] == 1  # the previous checkpoint, whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
