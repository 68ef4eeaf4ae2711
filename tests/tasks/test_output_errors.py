"""A full disk or an unwritable log directory: one line, exit 2, no half files, metrics.json never ok."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from helpers import FAST, compose_cfg, load_ckpt
from trueval.tasks.runner import run_task
from trueval.tasks.train import train

TINY = ["model.width=16", "model.depth=2", "+trainer.limit_train_batches=2", "logger=none",
        "callbacks.progress_bar=null", "trainer.max_epochs=3"]


def _run(run_dir: Path, overrides: list[str], log_dir: Path | None = None) -> tuple[int, dict]:
    cfg = compose_cfg("train", FAST + TINY + overrides, run_dir, log_dir=log_dir)
    with pytest.raises(SystemExit) as info:
        run_task(train, cfg)
    return info.value.code, json.loads((run_dir / "metrics.json").read_text())


def test_a_full_disk_during_a_checkpoint_ends_in_one_line(run_dir: Path, monkeypatch, capsys) -> None:
    import trueval.callbacks.checkpoint as ckpt_module

    real, calls = ckpt_module._save_synced, []

    def fill_the_disk(checkpoint, path):  # the third checkpoint write finds the disk full half-way
        calls.append(path)
        if len(calls) < 3:
            return real(checkpoint, path)
        path.write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_module, "_save_synced", fill_the_disk)
    code, record = _run(run_dir, [])
    assert code == 2
    assert record["status"] == "failed" and "No space left on device" in record["error"]
    assert ".ckpt" in record["error"]  # names the file
    leftovers = [p.name for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    for path in (run_dir / "checkpoints").glob("*.ckpt"):
        load_ckpt(path)  # every checkpoint on disk is whole
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err


def test_an_unwritable_log_dir_fails_before_training(run_dir: Path, tmp_path: Path) -> None:
    # a directory below a regular file: unwritable even for root (tests run as root, so chmod would not do)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    code, record = _run(run_dir, [], log_dir=blocker / "logs")
    assert code == 2
    assert record["status"] == "failed" and "history.jsonl" in record["error"]
    assert not (run_dir / "checkpoints").exists()  # refused before any training


def test_history_that_cannot_be_written_at_the_end_is_not_ok(run_dir: Path, monkeypatch) -> None:
    import trueval.utils.run_record as run_record

    def read_only(path, line):  # the log directory became read-only while the run trained
        raise run_record.OutputNotWritten(path, OSError(errno.EROFS, "Read-only file system"))

    monkeypatch.setattr(run_record, "append_line", read_only)
    code, record = _run(run_dir, ["trainer.max_epochs=1"])
    assert code == 2
    assert record["status"] == "failed" and "Read-only file system" in record["error"]
    assert record["metrics"]["test/acc"] > 0  # trained and tested; only the history line is missing
