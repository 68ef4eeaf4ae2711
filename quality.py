"""Check a dataset before tuning: `python quality.py data=<option>` (exit 0 nothing flagged, 1 flagged, 2 error)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # works from a checkout even before `pip install -e .`

from trueval.cli import main  # noqa: E402

if __name__ == "__main__":
    main("quality", ROOT)
