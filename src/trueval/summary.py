"""``python -m trueval.summary <sweep_dir>``: rebuild the summary of any sweep, also a partial one."""

from __future__ import annotations

import argparse
import sys

from trueval.sweep.summary import MAXIMIZE, MINIMIZE, summarize_sweep
from trueval.core.errors import UserError


def main(argv: list[str] | None = None) -> int:
    """Write summary.csv/.md/.png into the sweep directory and print the leaderboard."""
    parser = argparse.ArgumentParser(prog="python -m trueval.summary", description=__doc__)
    parser.add_argument("sweep_dir", help="a multirun directory, e.g. logs/train/multiruns/<time>")
    parser.add_argument("--metric", help="metric to rank by (default: optimized_metric of the sweep)")
    parser.add_argument("--direction", choices=[MAXIMIZE, MINIMIZE], help="default: the sweep's, else inferred")
    parser.add_argument("--no-plot", action="store_true", help="skip summary.png")
    parser.add_argument("--quiet", action="store_true", help="do not print the leaderboard")
    args = parser.parse_args(argv)
    try:
        summary = summarize_sweep(
            args.sweep_dir, metric=args.metric, direction=args.direction,
            plot=not args.no_plot, print_table=not args.quiet,
        )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    if not args.quiet:
        print(f"wrote {summary.sweep_dir}/summary.csv, summary.md" + ("" if args.no_plot else ", summary.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
