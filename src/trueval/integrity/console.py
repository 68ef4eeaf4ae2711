"""The gate in the terminal: progress while it works, then a rich table of leaking split pairs,
which checks ran (and why any was skipped) and a verdict.

Progress goes to stderr: a rich bar on a terminal, one log line per stage otherwise (a log file
gets when each stage started and how long it took, not a thousand redraws).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import defaultdict
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from trueval.integrity.report import KIND_OF, KIND_ORDER, LeakReport

log = logging.getLogger("trueval")
_active: list[tuple[Progress, int]] = []


@contextlib.contextmanager
def stage(description: str, total: int | None) -> Iterator[None]:
    """One stage of the gate (decoding a split, the near-duplicate search...), shown while it runs.

    Work inside it calls ``advance(n)`` as it goes; a stage without a total shows a spinner and the
    elapsed time, so a long step is never silent."""
    start = time.perf_counter()
    if _active or not sys.stderr.isatty():
        log.info("integrity gate: %s%s", description, f" ({total})" if total else "")
        yield
        log.debug("integrity gate: %s took %.1f s", description, time.perf_counter() - start)
        return
    columns = [SpinnerColumn(), TextColumn("[bold]integrity gate[/bold]: {task.description}")]
    if total:
        columns += [BarColumn(), MofNCompleteColumn()]
    progress = Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    with progress:
        task = progress.add_task(description, total=total)
        _active.append((progress, task))
        try:
            yield
        finally:
            _active.pop()
    log.info("integrity gate: %s: %.1f s", description, time.perf_counter() - start)


def advance(n: int) -> None:
    """Advance the innermost running stage by ``n`` items (no-op outside a stage)."""
    if _active:
        progress, task = _active[-1]
        progress.advance(task, n)


def print_report(report: LeakReport, console: Console | None = None) -> None:
    """Print the report: one row per (split, other split, kind) with counts and an example pair."""
    console = console or Console()
    sizes = ", ".join(f"{k} {v}" for k, v in report.splits.items())
    title = f"integrity gate: {report.dataset or 'dataset'} ({sizes})"
    table = Table(title=title, title_justify="left", show_lines=False)
    for col, justify in (("split", "left"), ("also in", "left"), ("kind", "left"), ("images", "right"),
                         ("example", "left")):
        table.add_column(col, justify=justify)
    counts = report.counts()
    example: dict[tuple[str, str, str], str] = {}
    closest: dict[tuple[str, str, str], float] = defaultdict(lambda: 2.0)
    for p in report.pairs:
        key = (p.b.split, p.a.split, p.kind)
        if p.distance < closest[key]:
            closest[key] = p.distance
            example[key] = f"{_name(p.b)} ~ {_name(p.a)}"
    order = {s: i for i, s in enumerate(report.splits)}
    for key in sorted(counts, key=lambda k: (order.get(k[0], 99), order.get(k[1], 99), KIND_ORDER[k[2]])):
        b, a, kind = key
        table.add_row(b, a, KIND_OF[kind].label, f"{counts[key]} of {report.splits.get(b, '?')}", example.get(key, ""))
    for split, n in report.within_by_split.items():
        if n:
            table.add_row(split, split, "[dim]within split[/dim]", f"{n} of {report.splits.get(split, '?')}",
                          "[dim]reported, not refused[/dim]")
    if table.row_count:
        console.print(table)
    for kind, said in report.checks.items():
        label = KIND_OF[kind].label if kind in KIND_OF else kind
        colour = "yellow" if said.startswith("skipped") else "dim"
        console.print(f"[{colour}]check {label}: {said}[/{colour}]")
    for note in report.notes():
        console.print(f"[yellow]note[/yellow]: {note}")
    timing = f"{report.seconds:.1f} s" + (", cached" if report.cached else "")
    if report.has_leak:
        console.print(f"[bold red]LEAK[/bold red]: {len(report.pairs)} cross-split pairs "
                      f"(policy {report.policy}; {timing})")
    else:
        console.print(f"[bold green]clean[/bold green]: no sample is shared between splits ({timing})")


def _name(ref) -> str:
    if ref.path:
        return ref.path.rsplit("/", 1)[-1]
    return f"{ref.split}[{ref.index}]"
