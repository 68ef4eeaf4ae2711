"""``python -m trueval.compare <run_a> <run_b>``: is run A's test accuracy really different from run B's?

Both runs must have been tested on the same samples (their ``test_predictions.npz`` name the same
images by content hash); the comparison is then paired: McNemar's exact test on the samples where
exactly one of the two is right, and a bootstrap interval of the accuracy difference. Exit codes:
0 compared (whatever the verdict), 2 a user error (missing predictions, different test samples).
"""

from __future__ import annotations

import argparse
import json
import sys

from trueval.core.errors import UserError
from trueval.stats.paired import compare_predictions
from trueval.stats.predictions import load_predictions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trueval.compare", description=__doc__.splitlines()[0])
    parser.add_argument("run_a", help="a run directory (with test_predictions.npz) or the .npz file")
    parser.add_argument("run_b", help="the other run")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = compare_predictions(load_predictions(args.run_a), load_predictions(args.run_b), "A", "B")
    except UserError as error:
        print(f"error: {error}\n  A: {args.run_a}\n  B: {args.run_b}", file=sys.stderr)
        return error.exit_code
    if args.json:
        print(json.dumps({"run_a": args.run_a, "run_b": args.run_b, **result.to_dict()}, indent=2))
    else:
        print(f"A: {args.run_a}\nB: {args.run_b}\n{result.sentence('A', 'B')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
