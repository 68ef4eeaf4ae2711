"""Linear baselines (scikit-learn) on pixels or a checkpoint's features: `python baseline.py [ckpt_path=...]`."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # works from a checkout even before `pip install -e .`

from trueval.cli import main  # noqa: E402

if __name__ == "__main__":
    main("baseline", ROOT)
