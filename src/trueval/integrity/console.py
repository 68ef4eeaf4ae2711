"""The gate's report in the terminal: a rich table of leaking split pairs and a verdict."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table

from trueval.integrity.report import KINDS, LeakReport

_LABEL = {"source": "same file", "exact": "identical pixels", "near": "near-duplicate"}


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
    for key in sorted(counts, key=lambda k: (order.get(k[0], 99), order.get(k[1], 99), KINDS.index(k[2]))):
        b, a, kind = key
        table.add_row(b, a, _LABEL[kind], f"{counts[key]} of {report.splits.get(b, '?')}", example.get(key, ""))
    for split, n in report.within_by_split.items():
        if n:
            table.add_row(split, split, "[dim]within split[/dim]", f"{n} of {report.splits.get(split, '?')}",
                          "[dim]reported, not refused[/dim]")
    if table.row_count:
        console.print(table)
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
