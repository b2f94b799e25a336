"""Accuracy and CPU cost of the PyTorch port of dlib's face descriptor (issue 5 part 1).

For every shared photo where dlib's HOG detector finds a face, every face is aligned with
dlib (5-point predictor, ``get_face_chip(size=150, padding=0.25)``) and described twice on
that same chip: by dlib (``face_recognition_model_v1.compute_face_descriptor``) and by
``shield.adversarial.models.DlibFaceDescriptor``. Recorded: max absolute difference per
component, the descriptor distance between the two, CPU time per face (one thread, batch
of one, median), the detector scores, and the gap between the differentiable
``shield.faces.crop_tensor`` chip and dlib's chip (pixels and descriptor distance).

    .venv/bin/python bench/dlib_port.py --json bench/results/dlib_port.json \\
        --plot bench/results/dlib_port.png
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
from PIL import Image

from shield.adversarial.models import load_dlib_descriptor
from shield.config import load_settings
from shield.errors import NoFaceError
from shield.faces import AlignTarget, align, crop_tensor, detect_faces
from shield.faces.dlib_models import RESNET_DESCRIPTOR, dlib_model_path
from shield.tensors import to_tensor

log = logging.getLogger("bench.dlib_port")


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t = time.process_time()
    out = fn(*args)
    return out, time.process_time() - t


def run(photos: Path) -> dict[str, Any]:
    import dlib

    torch.set_num_threads(1)
    port = load_dlib_descriptor()
    ref = dlib.face_recognition_model_v1(str(dlib_model_path(RESNET_DESCRIPTOR)))
    rows: list[dict[str, Any]] = []
    t_port: list[float] = []
    t_dlib: list[float] = []
    for path in sorted(photos.glob("*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        try:
            faces = detect_faces(rgb, upsample=1)
        except NoFaceError:
            rows.append({"photo": path.name, "faces": 0})
            continue
        full = to_tensor(rgb)
        for i, face in enumerate(faces):
            crop = align(rgb, face, AlignTarget.DLIB_150)
            d_ref, dt_ref = _timed(lambda c: np.asarray(ref.compute_face_descriptor(c)), crop.image)
            with torch.no_grad():
                d_port, dt_port = _timed(lambda c: port(to_tensor(c))[0].double().numpy(), crop.image)
                diff_chip = crop_tensor(full, crop)
                d_diff = port(diff_chip)[0].double().numpy()
            t_ref_chip = to_tensor(crop.image)
            rows.append(
                {
                    "photo": path.name,
                    "faces": len(faces),
                    "face": i,
                    "score": face.score,
                    "scale": crop.scale(),
                    "max_abs_diff": float(np.abs(d_ref - d_port).max()),
                    "distance_port_vs_dlib": float(np.linalg.norm(d_ref - d_port)),
                    "crop_tensor_mean_abs_px": float((diff_chip - t_ref_chip).abs().mean() * 255),
                    "crop_tensor_descriptor_distance": float(np.linalg.norm(d_ref - d_diff)),
                }
            )
            t_port.append(dt_port)
            t_dlib.append(dt_ref)
    faces_rows = [r for r in rows if r["faces"]]
    return {
        "command": "bench/dlib_port.py " + " ".join(sys.argv[1:]),
        "photos": len({r["photo"] for r in rows}),
        "photos_with_face": len({r["photo"] for r in faces_rows}),
        "faces": len(faces_rows),
        "max_abs_diff": max(r["max_abs_diff"] for r in faces_rows),
        "max_distance_port_vs_dlib": max(r["distance_port_vs_dlib"] for r in faces_rows),
        "cpu_ms_per_face_port": 1000 * statistics.median(t_port),
        "cpu_ms_per_face_dlib": 1000 * statistics.median(t_dlib),
        "crop_tensor_descriptor_distance_median": statistics.median(
            r["crop_tensor_descriptor_distance"] for r in faces_rows
        ),
        "crop_tensor_descriptor_distance_max": max(r["crop_tensor_descriptor_distance"] for r in faces_rows),
        "min_detection_score": min(r["score"] for r in faces_rows),
        "torch": torch.__version__,
        "threads": 1,
        "rows": rows,
    }


def plot(result: dict[str, Any], out: Path) -> None:
    """Per-face port error (log scale) and the crop_tensor descriptor gap versus face scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r["faces"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.hist([r["max_abs_diff"] for r in rows], bins=np.logspace(-8, -2, 25))
    a.axvline(1e-3, color="red", linestyle="--", label="issue 5 bound 1e-3")
    a.set_xscale("log")
    a.set(xlabel="max |port - dlib| over 128 components", ylabel="faces", title="port vs dlib, same chip")
    a.legend()
    b.scatter([r["scale"] for r in rows], [r["crop_tensor_descriptor_distance"] for r in rows], s=10)
    b.axhline(0.6, color="red", linestyle="--", label="same-person threshold 0.6")
    b.set_xscale("log")
    b.set(xlabel="photo pixels per chip pixel", ylabel="descriptor distance", title="crop_tensor chip vs dlib chip")
    b.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=None, help="default: <data_dir>/photos")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--plot", type=Path, default=None, help="PNG of the per-face results")
    args = ap.parse_args()
    data_dir = load_settings().data_dir
    if args.photos is None and data_dir is None:
        ap.error("no shared data directory: pass --photos or set SHIELD_DATA_DIR")
    photos = args.photos or data_dir / "photos"  # type: ignore[operator]
    result = run(photos)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    if args.plot is not None:
        plot(result, args.plot)
    summary = {k: v for k, v in result.items() if k != "rows"}
    log.info("%s", json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
