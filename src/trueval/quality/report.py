"""The run directory of quality.py: quality_report.md, quality_report.json, figures/, tensorboard/, CSVs."""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from trueval.utils.run_record import write_json_atomic
from trueval.quality.figures import save_png
from trueval.quality.section import Section

log = logging.getLogger("trueval")


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """A CSV with exactly ``columns``, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for everyone who reads the run
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_report(run_dir: Path, dataset: str, sections: Sequence[Section], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Markdown and JSON twin, one PNG per figure, and the same in a TensorBoard run; returns the JSON."""
    figures_dir = run_dir / "figures"
    files: dict[str, list[str]] = {}
    for section in sections:
        files[section.key] = [str(save_png(fig, figures_dir / f"{stem}.png").relative_to(run_dir))
                              for stem, fig in section.figures.items()]
    flagged = [s.key for s in sections if s.flagged]
    doc = {"dataset": dataset, "flagged": flagged, **extra,
           "sections": {s.key: {"flagged": s.flagged, **s.data, "figures": files[s.key]} for s in sections}}
    write_json_atomic(run_dir / "quality_report.json", doc)
    md = [f"# Data quality: {dataset}", "",
          "Flagged: " + (", ".join(f"**{k}**" for k in flagged) if flagged else "nothing") + "."]
    for section in sections:
        md += ["", f"## {section.title}" + (" (flagged)" if section.flagged else ""), ""] + section.lines
        md += [f"\n![{Path(f).stem}]({f})" for f in files[section.key]]
    text = "\n".join(md) + "\n"
    tmp = run_dir / "quality_report.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, run_dir / "quality_report.md")
    _tensorboard(run_dir / "tensorboard", sections, text, run_dir, files)
    return doc


def _tensorboard(folder: Path, sections: Sequence[Section], text: str, run_dir: Path,
                 files: Mapping[str, list[str]]) -> None:
    """The report's text, scalars and figures (read back from their PNGs: drawn once)."""
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    try:
        writer.add_text("quality/report", text, 0)
        for section in sections:
            for key, value in section.scalars.items():
                writer.add_scalar(key, float(value), 0)
            writer.add_scalar(f"quality/{section.key}/flagged", float(section.flagged), 0)
            for file in files[section.key]:
                with Image.open(run_dir / file) as im:
                    pixels = np.asarray(im.convert("RGB"))
                writer.add_image(f"quality/{Path(file).stem}", pixels, 0, dataformats="HWC")
    finally:
        writer.close()
