"""rich output: the config header at the start, the metrics table at the end, user errors.

Outside a terminal (CI logs, ``| tee``, sweeps) rich would squeeze tables into 80 columns and cut
paths with an ellipsis; ``print_whole`` prints a table as wide as its content instead, so run
directories and checkpoint paths can be copied from any log.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

console = Console()
err_console = Console(stderr=True)

_TREE_ORDER = ("data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths", "extras")
# config groups whose choice the header shows
HEADER_GROUPS = ("experiment", "data", "model", "optimizer", "scheduler", "trainer", "logger", "debug")


def print_whole(renderable: Any, target: Console | None = None) -> None:
    """Print without cutting anything: in a terminal folded to its width, elsewhere as wide as needed."""
    target = target or console
    if target.is_terminal:
        target.print(renderable)
        return
    width = max(target.width, target.measure(renderable, options=target.options.update(width=10_000)).maximum)
    Console(file=target.file, width=width, color_system=None, soft_wrap=True).print(renderable)


def config_tree(cfg: DictConfig, save_to: Path | None = None, show: bool = True) -> None:
    """Print the composed config as a tree (groups first) and save it as plain text."""
    tree = Tree("config", guide_style="dim")
    keys = [k for k in _TREE_ORDER if k in cfg] + [k for k in cfg if k not in _TREE_ORDER and k != "hydra"]
    for key in keys:
        node = cfg[key]
        branch = tree.add(f"[bold]{key}[/bold]")
        if isinstance(node, DictConfig):
            branch.add(OmegaConf.to_yaml(node, resolve=True).rstrip() or "{}")
        else:
            branch.add(str(node))
    if show:
        print_whole(tree)
    if save_to is not None:
        with open(save_to, "w") as fh:
            Console(file=fh, width=120, color_system=None).print(tree)


def config_header(choices: Mapping[str, str], overrides: Sequence[str], tree_file: Path | None = None) -> None:
    """Two short lines instead of the whole tree: the group choices and what the command line changed."""
    chosen = " ".join(f"{g}={choices[g]}" for g in HEADER_GROUPS if choices.get(g) not in (None, "null"))
    lines = [f"[bold]config[/bold] {chosen}"]
    lines.append("[bold]changed[/bold] " + (" ".join(overrides) if overrides else "nothing (the defaults)"))
    if tree_file is not None:
        lines.append(f"[dim]full config: {tree_file} (print it with extras.print_config=true)[/dim]")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)


def metrics_table(title: str, metrics: Mapping[str, Any], extra: Sequence[tuple[str, str]] = ()) -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    for key in sorted(metrics):
        value = metrics[key]
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    for key, value in extra:
        table.add_row(f"[dim]{key}[/dim]", f"[dim]{value}[/dim]")
    print_whole(table)


def user_error(message: str, title: str = "error") -> None:
    """The one-paragraph message for bad input, on stderr."""
    if not err_console.is_terminal:  # CI logs, `2> file`: one plain paragraph, paths never cut or folded
        err_console.print(f"{title}: {message}", soft_wrap=True, markup=False, highlight=False)
        return
    err_console.print(Panel(Text(message, overflow="fold"), title=title, border_style="red", expand=False))


def log_to_files(logger: logging.Logger, level: int, message: str) -> None:
    """Log ``message`` to the run's log files only, not to the console: a message the console is
    about to show in its own form (``user_error``'s panel) was otherwise printed twice there."""
    record = logger.makeRecord(logger.name, level, "(trueval)", 0, message, None, None)
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
                handler.handle(record)
        current = current.parent if current.propagate else None


def is_terminal() -> bool:
    return sys.stdout.isatty()


# --------------------------------------------------------------------------- third-party noise

# Warnings the template itself causes and the user cannot act on: trueval modules log per epoch,
# so Lightning's log_every_n_steps hint never applies; the pytree deprecation is inside Lightning.
_NOISE_WARNINGS = (
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
# Lightning's advertisement at every Trainer start
_NOISE_LOG_PREFIXES = ("💡 Tip:",)


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_NOISE_LOG_PREFIXES)


def silence_library_noise(ignore_all_warnings: bool = False) -> None:
    """Drop the third-party messages listed above (``extras.ignore_warnings``: every Python warning)."""
    for pattern in _NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    if ignore_all_warnings:
        warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                 "lightning.pytorch.utilities.rank_zero"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _DropAdverts) for f in target.filters):
            target.addFilter(_DropAdverts())
