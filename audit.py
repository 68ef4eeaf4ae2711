"""Audit a dataset's splits for leaks without training: `python audit.py data=<option>` (exit 0 clean, 1 leak, 2 error)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # works from a checkout even before `pip install -e .`

from trueval.cli import main  # noqa: E402

if __name__ == "__main__":
    main("audit", ROOT)
