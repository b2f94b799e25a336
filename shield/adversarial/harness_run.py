"""Run the real-network harness on a slice of photos, one budget variant, optionally with the marks.

The visibility benchmark of the perceptual budget and the check that the marks added
after the attack do not weaken it (bench/README.md, "Invisible perturbation")::

    for skip in $(seq 5 14); do
      OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m shield.adversarial.harness_run \\
          --photos ../shared/data/photos --skip $skip --limit 1 --budget shaped --with-marks \\
          --json bench/results/protection_budget_shaped_part$skip.json
    done

``--max-side 0`` evaluates the photos at their own size instead of 640 px (a user's
full-resolution photo). ``--budget previous`` runs the same preset without perceptual shaping (the texture-
scaled RGB budget it had before); ``--rms`` changes its RMS budget (in 1/255 units).
Parts are merged with bench/protection_merge.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from shield.adversarial.harness import MAX_SIDE, HarnessConfig, run_harness
from shield.adversarial.pipeline_check import FaceApi, FrontEnd, MtcnnDlib
from shield.adversarial.presets import HELD_OUT, get_preset
from shield.adversarial.threats import load_ensemble, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--strength", choices=("fast", "balanced", "max"), default="balanced")
    parser.add_argument("--budget", choices=("shaped", "previous"), default="shaped")
    parser.add_argument("--with-marks", action="store_true")
    parser.add_argument("--with-baseline", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rms", type=float, default=None, help="RMS budget in 1/255 units instead of the preset's")
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, help=f"scale photos down to this longer side first (default {MAX_SIDE}); 0: their own size")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[args.skip :]
    photos = photos if args.limit is None else photos[: args.limit]
    preset = get_preset(args.strength)
    if args.budget == "previous":
        preset = replace(preset, shaping=None)
    if args.rms is not None:
        preset = replace(preset, name=f"{preset.name}-rms{args.rms:g}", rms=args.rms / 255)
    attacked = load_ensemble(dict(preset.weights), "cpu")
    measured = load_ensemble({n: 1.0 for n in names() if n in HELD_OUT and n not in {t.name for t in attacked}}, "cpu")
    front_ends: dict[str, FrontEnd] = {"mtcnn+dlib": MtcnnDlib("cpu"), "face-api.js": FaceApi("cpu")}
    config = HarnessConfig(
        strength=preset, seed=args.seed, with_baseline=args.with_baseline, with_marks=args.with_marks, max_side=args.max_side or None
    )
    report = run_harness(photos, attacked=attacked, measured=measured, front_ends=front_ends, config=config)
    report = {"command": " ".join(shlex.quote(a) for a in ["python -m shield.adversarial.harness_run", *sys.argv[1:]]), **report}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
