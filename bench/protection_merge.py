"""Merge the parts of a `shield bench protection` run (``--skip``/``--limit``) into one report and plot.

    .venv/bin/python bench/protection_merge.py bench/results/protection_real_part*.json \\
        --json bench/results/protection_real.json --plot bench/results/protection_real.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shield.adversarial.harness import merge_reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)
    report = merge_reports([json.loads(p.read_text()) for p in args.parts])
    args.json.write_text(json.dumps(report, indent=1))
    if args.plot is not None:
        from shield.adversarial.harness_plots import plot_report

        plot_report(report, args.plot)
    print(json.dumps({k: v for k, v in report["summary"].items() if not isinstance(v, dict) or "pipeline" == k}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
