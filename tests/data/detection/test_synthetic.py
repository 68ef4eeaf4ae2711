"""The generated test dataset: its label rows are the exact boxes of the shapes drawn."""

import numpy as np

from trueval.data.detection.synthetic import COLOURS, draw_sample


def test_rows_bound_the_drawn_shapes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        image, rows = draw_sample(rng, 64)
        pixels = np.asarray(image)
        assert 1 <= len(rows) <= 3
        for cls, cx, cy, w, h in rows:
            mask = (pixels == COLOURS[cls]).all(axis=2)
            x0, x1 = round((cx - w / 2) * 64), round((cx + w / 2) * 64)
            y0, y1 = round((cy - h / 2) * 64), round((cy + h / 2) * 64)
            inside = mask[y0:y1, x0:x1]
            assert inside.any()
            # the shape touches its box on the top or bottom and on the left or right (tight box)
            assert (inside[0].any() or inside[-1].any()) and (inside[:, 0].any() or inside[:, -1].any())
