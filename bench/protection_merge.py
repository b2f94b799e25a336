"""Merge the parts of a `shield bench protection` run (``--skip``/``--limit``) into one report and plot.

    .venv/bin/python bench/protection_merge.py bench/results/protection_real_part*.json \\
        --json bench/results/protection_real.json --plot bench/results/protection_real.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

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
    print(markdown(report))
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def markdown(report: dict[str, Any]) -> str:
    """The summary as the markdown tables of bench/README.md (a run without the baseline: :func:`budget_markdown`)."""
    if "baseline_summary" not in report:
        return budget_markdown(report)
    s, b = report["summary"], report["baseline_summary"]
    keys = ("disruption", "disruption_jpeg90", "disruption_jpeg75", "disruption_jpeg50", "disruption_resize50")
    lines = [
        f"{s['photos']} photos; ours: PSNR {s['psnr']:.1f} dB (min {s['psnr_min']:.1f}), SSIM {s['ssim']:.3f}, "
        f"{s['seconds_per_face']:.0f} s per face; baseline: PSNR {b['psnr']:.1f} dB, SSIM {b['ssim']:.3f}",
        "",
        "| network | role | | none | JPEG 90 | JPEG 75 | JPEG 50 | 0.5x | Ruiz: none | Ruiz: JPEG 75 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in s.items():
        if not isinstance(v, dict) or "role" not in v:
            continue
        kind = "attacked" if v["attacked"] else "held out" if v.get("held_out") else "not attacked"
        cells = " | ".join(_pct(v[k]) for k in keys)
        lines.append(f"| {name} | {v['role']} | {kind} | {cells} | {_pct(b[name]['disruption'])} | {_pct(b[name]['disruption_jpeg75'])} |")
    for name, v in s["pipeline"].items():
        cells = " | ".join(_pct(v[k]) for k in keys)
        base = b["pipeline"][name]
        lines.append(f"| **pipeline {name}** | all stages | | {cells} | {_pct(base['disruption'])} | {_pct(base['disruption_jpeg75'])} |")
    return "\n".join(lines)


_KEYS = ("disruption", "disruption_jpeg90", "disruption_jpeg75", "disruption_jpeg50", "disruption_resize50")


def _rows(block: dict[str, Any], label: str) -> list[str]:
    lines = []
    for name, v in block.items():
        if isinstance(v, dict) and "role" in v:
            kind = "attacked" if v["attacked"] else "held out" if v.get("held_out") else "not attacked"
            lines.append(f"| {label} | {name} | {kind} | " + " | ".join(_pct(v[k]) for k in _KEYS) + " |")
    for name, v in block["pipeline"].items():
        lines.append(f"| {label} | **pipeline {name}** | all stages | " + " | ".join(_pct(v[k]) for k in _KEYS) + " |")
    return lines


def budget_markdown(report: dict[str, Any]) -> str:
    """Quality, visibility and break rates of a run without the baseline, and after the marks when measured."""
    blocks = {"protected": report["summary"]}
    if "marked_summary" in report:
        blocks["+ marks"] = report["marked_summary"]
    lines = ["| | PSNR dB (min) | SSIM | mean abs Cb, Cr | local luma, chroma | grid 8 px | grid modulation |", "|---|---|---|---|---|---|---|"]
    for label, s in blocks.items():
        v = s.get("visibility", {})
        lines.append(
            f"| {label} | {s['psnr']:.1f} ({s['psnr_min']:.1f}) | {s['ssim']:.3f} | {v.get('cb', 0):.2f}, {v.get('cr', 0):.2f} | "
            f"{v.get('local_luma', 0):.2f}, {v.get('local_chroma', 0):.2f} | {v.get('grid8', 0):.2f} | {100 * v.get('grid_modulation', 0):.0f}% |"
        )
    lines += ["", "| | network | | none | JPEG 90 | JPEG 75 | JPEG 50 | 0.5x |", "|---|---|---|---|---|---|---|---|"]
    for label, s in blocks.items():
        lines += _rows(s, label)
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
