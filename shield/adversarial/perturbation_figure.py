"""Before/after crop of the protection's perturbation: the previous RGB budget vs the perceptual one.

    OMP_NUM_THREADS=1 .venv/bin/python -m shield.adversarial.perturbation_figure \\
        ../shared/data/photos/liveportrait_s42.jpg --out docs/perturbation-crop.png \\
        --json bench/results/protection_budget_crop.json

Protects the photo's largest face twice with the same preset and seed -- without
perceptual shaping (the texture-scaled RGB budget) and with it -- and draws, for
each, a crop of the protected photo and of the difference amplified 8x around
mid-grey, beside the original crop. Writes the measured PSNR, SSIM, colour shift, grid
measures and self-check of both to ``--json`` (matplotlib: the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from shield.adversarial.face_views import largest_face, locate_faces
from shield.adversarial.harness import _fit, _visibility
from shield.adversarial.presets import get_preset
from shield.adversarial.protect import protect_pixels
from shield.adversarial.threats import load_ensemble

#: Amplification of the difference in the figure.
GAIN = 8


def _crop(rgb: np.ndarray, box: tuple[float, float, float, float], side: int) -> np.ndarray:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    h, w = rgb.shape[:2]
    x0 = int(min(max(0, cx - side / 2), max(0, w - side)))
    y0 = int(min(max(0, cy - side / 2), max(0, h - side)))
    return rgb[y0 : y0 + side, x0 : x0 + side]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--strength", choices=("fast", "balanced", "max"), default="balanced")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", type=int, default=200, help="crop side in pixels (around the face centre)")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rgb = _fit(np.array(Image.open(args.photo).convert("RGB")))
    face = largest_face(locate_faces(rgb))
    shaped = get_preset(args.strength)
    variants = {"previous budget (RGB, texture-scaled)": replace(shaped, shaping=None), "perceptual budget": shaped}
    models = load_ensemble(dict(shaped.weights), "cpu")
    record: dict[str, Any] = {"photo": args.photo.name, "size": [rgb.shape[1], rgb.shape[0]], "seed": args.seed, "variants": {}}
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.3))
    original = _crop(rgb, face.box, args.side)
    for row, (label, preset) in enumerate(variants.items()):
        result = protect_pixels(rgb, strength=preset, seed=args.seed, models=models, faces=[face])
        region = result.faces[0].region
        record["variants"][label] = {
            "psnr": round(result.psnr, 3), "ssim": round(result.ssim, 5), "face_psnr": round(result.faces[0].psnr, 3),
            "visibility": _visibility(rgb, result.rgb, region),
            "broken": {k: f"{v.broken}/{v.tested}" for k, v in result.self_check.items()},
        }  # fmt: skip
        diff = result.rgb.astype(np.int16) - rgb.astype(np.int16)
        amplified = np.clip(128 + GAIN * diff, 0, 255).astype(np.uint8)
        panels = [original, _crop(result.rgb, face.box, args.side), _crop(amplified, face.box, args.side)]
        titles = ["original", f"{label}\nPSNR {result.psnr:.1f} dB", f"difference x{GAIN}"]
        for ax, img, title in zip(axes[row], panels, titles):
            ax.imshow(img, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
