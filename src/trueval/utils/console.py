"""rich output: the config tree at the start, the metrics table at the end, user errors."""

from __future__ import annotations

import sys
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
        console.print(tree)
    if save_to is not None:
        with open(save_to, "w") as fh:
            Console(file=fh, width=120, color_system=None).print(tree)


def metrics_table(title: str, metrics: Mapping[str, Any], extra: Sequence[tuple[str, str]] = ()) -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        value = metrics[key]
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    for key, value in extra:
        table.add_row(f"[dim]{key}[/dim]", f"[dim]{value}[/dim]")
    console.print(table)


def user_error(message: str, title: str = "error") -> None:
    """The one-paragraph message for bad input, on stderr."""
    err_console.print(Panel(Text(message), title=title, border_style="red", expand=False))


def is_terminal() -> bool:
    return sys.stdout.isatty()
