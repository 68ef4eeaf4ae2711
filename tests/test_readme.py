"""Every command the README shows is run: here, by another named test, or by CI (`make test`)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from data.test_imagefolder import write_class_tree
from helpers import ROOT, run_cli

README = ROOT / "README.md"

# commands that other tests run as written (shortened with overrides where they train for long)
ELSEWHERE = {
    "make train": "tests/test_cli.py::test_default_train_under_a_minute_with_accuracy (the same python train.py)",
    "make test": ".ci/run",
    "python train.py -m": "tests/sweep/test_sweeps_e2e.py::test_readme_sweep_commands_run_as_written",
    "python -m trueval.summary": "tests/sweep/test_summary.py",
    "tensorboard --logdir": "tests/tasks/test_tensorboard.py (a real tensorboard over a sweep)",
    "python -m trueval.compare": "tests/stats/test_kfold_e2e.py",
    "python quality.py": "tests/quality/test_quality_app.py::test_flipped_labels_ranked_first_then_left_out_of_training",
}


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line:
                commands.append(line)
    return commands


def test_every_readme_command_is_covered() -> None:
    commands = readme_commands()
    assert "make train" in commands and "make test" in commands
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    for command in commands:
        here = command.split()[0] in (".venv/bin/python", "python") and command.split()[1] in (
            "train.py", "eval.py", "audit.py") and " -m " not in command
        assert here or any(command.startswith(p) for p in ELSEWHERE), f"README command not run by a test: {command}"


@pytest.mark.slow
def test_readme_train_eval_audit_commands_run(tmp_path: Path) -> None:
    logs = [f"paths.log_dir={tmp_path / 'logs'}", f"paths.cache_dir={tmp_path / 'cache'}"]
    images = tmp_path / "images"
    write_class_tree(images, per_class=8, seed=0)
    # a planted leak for the imagefolder audit: one image copied into a second class-folder tree
    leaky = tmp_path / "leaky"
    for split in ("train", "test"):
        write_class_tree(leaky / split, per_class=6, seed=1 if split == "train" else 2)
    first = sorted((leaky / "train" / "class_0").iterdir())[0]
    (leaky / "test" / "class_0" / "copied.png").write_bytes(first.read_bytes())
    run_dir = None
    ran: set[tuple[str, ...]] = set()  # a command shown twice (`.venv/bin/python` and `python`) runs once
    for command in readme_commands():
        words = shlex.split(command)
        if words[0] not in (".venv/bin/python", "python") or words[1] not in ("train.py", "eval.py", "audit.py") \
                or "-m" in words:
            continue
        args = [w.replace("<dir>", str(leaky)) for w in words[2:]]
        if words[1] == "eval.py":
            assert run_dir is not None, "README shows eval.py before any training command"
            args = [f"ckpt_path={sorted((run_dir / 'checkpoints').glob('*.ckpt'))[-1]}"]
        if (words[1], *args) in ran:
            continue
        ran.add((words[1], *args))
        proc = run_cli(words[1], args + logs)
        expected = 1 if (words[1] == "audit.py" and "imagefolder" in command) else 0
        assert proc.returncode == expected, (command, proc.stdout[-1500:], proc.stderr[-1500:])
        if words[1] == "train.py":
            runs = sorted((tmp_path / "logs" / "train" / "runs").iterdir())
            run_dir = runs[-1]
            assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
