"""Wall time of `protect_pixels` per face for each strength preset.

Runs each preset's ensemble (``load_ensemble`` of its weights: the installed networks
it weighs, official checkpoints only when imported) on CPU with one torch thread (the
reference machine is a shared 2-core VM) over the first N photos, detection and
self-check included, and writes ``bench/results/protection_timing.json``. The exact command is in
bench/README.md ("Adversarial protection").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from shield.adversarial.presets import get_preset
from shield.adversarial.protect import SelfCheck, protect_pixels
from shield.adversarial.threats import load_ensemble
from shield.config import load_settings


def _check_doc(check: SelfCheck) -> dict[str, object]:
    """One network's self-check as JSON: its fields and its disruption (share of tested faces broken)."""
    return {**dataclasses.asdict(check), "disruption": check.disruption}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, default=None, help="photo folder (default: <data_dir>/photos)")
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--presets", default="fast,balanced")
    parser.add_argument("--json", type=Path, default=Path("bench/results/protection_timing.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data_dir = load_settings().data_dir
    if args.photos is None and data_dir is None:
        parser.error("no --photos and no shared data folder (SHIELD_DATA_DIR)")
    folder = args.photos or data_dir / "photos"  # type: ignore[operator]
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[args.skip : args.skip + args.limit]
    rows = []
    for preset in args.presets.split(","):
        models = load_ensemble(dict(get_preset(preset).weights), "cpu")
        for path in photos:
            rgb = np.array(Image.open(path).convert("RGB"))
            started = time.perf_counter()
            result = protect_pixels(rgb, strength=preset, seed=0, models=models)
            total = time.perf_counter() - started
            rows.append({
                "preset": preset, "photo": path.name, "size": [rgb.shape[1], rgb.shape[0]], "faces": len(result.faces),
                "seconds_total": total, "seconds_per_face": total / max(1, len(result.faces)),
                "attack_seconds": [f.seconds for f in result.faces], "psnr": result.psnr, "ssim": result.ssim,
                "models": [t.name for t in models], "self_check": {k: _check_doc(v) for k, v in result.self_check.items()},
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    summary = {
        p: {"mean_seconds_per_face": float(np.mean([r["seconds_per_face"] for r in rows if r["preset"] == p]))}
        for p in args.presets.split(",")
    }
    doc = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "threads": 1, "rows": rows, "summary": summary}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
