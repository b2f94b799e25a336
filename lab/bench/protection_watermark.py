"""Does the fragile watermark weaken the adversarial perturbation? Measured, not simulated.

`shield protect` adds the perturbation first and the watermark second (+-1 level per
value at most). For each photo this benchmark protects the largest face with the given
preset on the shipped surrogate plug-ins (``fomm-mini-a``, ``faceswap-ae``,
``dlib-resnet``; the preset's weights restricted to them), then watermarks the
protected image with and without the perturbation ``hint`` (the watermark takes the
perturbation's sign where it must change a value), and compares the deepfakes made
from the protected image and from the watermarked one against the deepfakes of the
clean photo: mean MSE on [-1,1] per model (the surrogate harness's measure,
validation driving clips) and the ratio watermarked / protected.
A ratio of 1.0 means the watermark leaves the protection's effect unchanged.

    .venv/bin/python -m lab.bench.protection_watermark --photos ../shared/data/photos --limit 4 \
        --json bench/results/protection_watermark.json
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from lab.bench.surrogate_harness import Surrogates, _deepfakes, _pair_mse, load_driving, on_surrogates
from shield import watermark
from shield.adversarial.face_views import largest_face, locate_faces
from shield.adversarial.protect import protect_pixels
from shield.config import load_settings

log = logging.getLogger("lab.bench.protection_watermark")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, required=True)
    p.add_argument("--driving", type=Path, default=None, help="driving clips (default: <data>/videos)")
    p.add_argument("--limit", type=int, default=4)
    p.add_argument("--strength", default="balanced")
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = load_settings()
    driving = args.driving or (settings.data_dir / "videos" if settings.data_dir else None)
    if driving is None or not driving.is_dir() or not args.photos.is_dir():
        print("need --photos and driving clips (../shared/data)", file=sys.stderr)
        return 2

    torch.set_num_threads(1)
    models = Surrogates.load("cpu")
    preset = on_surrogates(args.strength, models.targets)
    fomms = {models.fomm_name: models.fomm}
    _, frames = load_driving(driving, settings.home, models.fomm.resolution, args.frames)
    with torch.no_grad():
        clip_kp = {models.fomm_name: [models.fomm.keypoints(f) for f in frames]}
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    payload = watermark.Payload(version=1, asset_id=bytes(16), chain_id=31337, registry=bytes(20))

    rows: list[dict[str, Any]] = []
    for i, path in enumerate(sorted(args.photos.glob("*.jpg"))):
        if len(rows) >= args.limit:
            break
        rgb = np.array(Image.open(path).convert("RGB"))
        faces = locate_faces(rgb)
        if not faces:
            continue
        face = largest_face(faces)
        t0 = time.perf_counter()
        result = protect_pixels(rgb, strength=preset, seed=args.seed + i, models=models.targets, faces=[face])
        images = {
            "protected": result.rgb,
            "watermarked_hint": watermark.embed(result.rgb, payload, key, hint=result.delta),
            "watermarked_plain": watermark.embed(result.rgb, payload, key),
        }
        clean = _deepfakes(rgb, face, fomms, clip_kp, models.faceswap)
        row: dict[str, Any] = {"photo": path.name, "psnr_protected": _psnr(rgb, result.rgb)}
        for name, img in images.items():
            fakes = _deepfakes(img, face, fomms, clip_kp, models.faceswap)
            row[name] = {m: float(np.mean(_pair_mse(fakes[m], clean[m]))) for m in fakes}
        row["psnr_watermarked_hint"] = _psnr(rgb, images["watermarked_hint"])
        rows.append(row)
        log.info("%s: %s (%.0f s)", path.name, {k: row[k] for k in images}, time.perf_counter() - t0)

    model_names = list(rows[0]["protected"]) if rows else []
    summary = {
        m: {
            "mean_mse_protected": statistics.fmean(r["protected"][m] for r in rows),
            "mean_mse_watermarked_hint": statistics.fmean(r["watermarked_hint"][m] for r in rows),
            "mean_mse_watermarked_plain": statistics.fmean(r["watermarked_plain"][m] for r in rows),
            "ratio_hint": statistics.fmean(r["watermarked_hint"][m] / r["protected"][m] for r in rows),
            "ratio_plain": statistics.fmean(r["watermarked_plain"][m] / r["protected"][m] for r in rows),
        }
        for m in model_names
    }
    report = {
        "command": " ".join(["python -m lab.bench.protection_watermark", *(argv if argv is not None else sys.argv[1:])]),
        "strength": args.strength,
        "weights": dict(preset.weights),
        "photos": rows,
        "summary": summary,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(args.json)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
