"""A 100% crop of a protected full-resolution photo: original | protected | difference x8
(the crop and gain of ``shield.adversarial.perturbation_figure``).

The figure of bench/README.md "Full-resolution photos" (``docs/perturbation-fullres-crop.png``):
one row per protection version, stacked. Each row protects the photo with the code on the
import path (run it once in a checkout of the earlier version with ``PYTHONPATH``), crops
``--side`` px around the largest face's centre at full resolution, and writes the row and
its numbers::

    git worktree add /tmp/before 6f2c8b8      # the version before the face-scale change
    PYTHONPATH=/tmp/before .venv/bin/python bench/fullres_crop.py ../shared/data/photos/deepface_img49.jpg --out /tmp/before.png
    .venv/bin/python bench/fullres_crop.py ../shared/data/photos/deepface_img49.jpg --out /tmp/now.png
    .venv/bin/python bench/fullres_crop.py --stack /tmp/before.png /tmp/now.png --out docs/perturbation-fullres-crop.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image


def crop_row(photo: Path, strength: str, seed: int, side: int) -> tuple[np.ndarray, dict[str, float]]:
    from shield.adversarial.face_views import locate_faces
    from shield.adversarial.perturbation_figure import GAIN, _crop
    from shield.adversarial.protect import protect_pixels

    rgb = np.asarray(Image.open(photo).convert("RGB"))
    # written out rather than face_views.largest_face: the script also runs against a
    # checkout from before that helper (the "before" row)
    face = max(locate_faces(rgb), key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    result = protect_pixels(rgb, strength=strength, seed=seed, faces=[face])
    amplified = np.clip(128 + GAIN * result.delta, 0, 255).astype(np.uint8)
    x0, y0, x1, y1 = face.box
    numbers = {"psnr": round(result.psnr, 2), "face_psnr": round(result.faces[0].psnr, 2), "face_side": round(max(x1 - x0, y1 - y0))}
    return np.concatenate([_crop(img, face.box, side) for img in (rgb, result.rgb, amplified)], axis=1), numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("photo", type=Path, nargs="?")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--strength", default="balanced")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", type=int, default=400, help="crop side in photo pixels (shown at 100%%)")
    parser.add_argument("--stack", type=Path, nargs="+", help="instead: stack these rows top to bottom into --out")
    args = parser.parse_args(argv)
    if args.stack:
        rows = [np.asarray(Image.open(p).convert("RGB")) for p in args.stack]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
        return 0
    if args.photo is None:
        parser.error("a photo is needed unless --stack is given")
    row, numbers = crop_row(args.photo, args.strength, args.seed, args.side)
    Image.fromarray(row).save(args.out)
    print(json.dumps(numbers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
