#!/usr/bin/env python
"""Contact sheets of a random sample of the pairs in a leak report, for labelling them by eye.

    python benchmarks/pair_sheets.py <run dir>/leak_report.json --n 100 --seed 2026 --out sheets/

Writes ``sheet<k>.png`` (25 pairs each: the split named first on the left, upscaled 3x) and
``sample.json`` (the sampled pairs in sheet order, with an empty ``label`` to fill in).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

PER_SHEET, COLUMNS, SIDE = 25, 5, 96


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", type=Path, default=Path("pair_sheets"))
    args = p.parse_args()
    pairs = [q for q in json.loads(args.report.read_text())["pairs"] if q["a"].get("path") and q["b"].get("path")]
    sample = random.Random(args.seed).sample(range(len(pairs)), min(args.n, len(pairs)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sample.json").write_text(json.dumps(
        [{"n": i, "label": "", **pairs[k]} for i, k in enumerate(sample)], indent=1))
    for sheet in range(0, len(sample), PER_SHEET):
        rows = -(-min(PER_SHEET, len(sample) - sheet) // COLUMNS)
        canvas = Image.new("RGB", (COLUMNS * (2 * SIDE + 30), rows * (SIDE + 22)), "white")
        draw = ImageDraw.Draw(canvas)
        for j, k in enumerate(sample[sheet:sheet + PER_SHEET]):
            pair = pairs[k]
            x, y = (j % COLUMNS) * (2 * SIDE + 30), (j // COLUMNS) * (SIDE + 22)
            for side, ref in enumerate((pair["a"], pair["b"])):
                image = Image.open(ref["path"]).convert("RGB").resize((SIDE, SIDE), Image.NEAREST)
                canvas.paste(image, (x + side * (SIDE + 4), y + 18))
            draw.text((x, y + 2), f"#{sheet + j} d={pair['distance']:.3f}", fill="black")
        canvas.save(args.out / f"sheet{sheet // PER_SHEET}.png")
    print(f"{len(sample)} of {len(pairs)} pairs -> {args.out}")


if __name__ == "__main__":
    main()
