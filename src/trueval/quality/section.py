"""One section of the quality report: its verdict, its JSON, its Markdown, its figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Section:
    key: str
    title: str
    flagged: bool
    data: dict[str, Any]
    lines: list[str]
    figures: dict[str, Any] = field(default_factory=dict)  # file stem -> matplotlib Figure
    scalars: dict[str, float] = field(default_factory=dict)  # quality/<key>/... -> value


def display_path(ss: Any, index: int, split: str, root: str | None) -> str:
    """A sample as label_issues.csv names it: relative to the data root (``train/<class>/<file>``),
    or ``<split>/<index>`` for arrays without files."""
    import os

    path = ss.path(index) if hasattr(ss, "path") else None
    if path is None:
        return f"{split}/{index}"
    if root:
        rel = os.path.relpath(path, os.path.realpath(root))
        if not rel.startswith(".."):
            return rel.replace(os.sep, "/")
    return path


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "-" if not np.isfinite(v) else f"{v:.3g}"
        return str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out
