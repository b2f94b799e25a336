"""Equivalence and CPU cost of the torch port of dlib's mmod CNN face detector.

Every shared photo (and every image of the shared no-face set, recorded apart), its longer side brought to ``--max-side`` (PIL bilinear; dlib's CPU
detector takes seconds per megapixel), goes as the same uint8 array to dlib's
``cnn_face_detection_model_v1(path)(img, 0)`` and to
``shield.adversarial.models.dlib_mmod.DlibMmodDetector.detect``. Recorded per photo and
in total: the detections of both (dlib's inclusive rectangles as left, top, right + 1,
bottom + 1), the share of dlib boxes matched by a port box with IoU >= 0.5 and the
reverse, the share reproduced to the pixel, the max abs difference of the confidences
(dlib's raw mmod scores, the only raw output its API exposes) over matched pairs, and CPU
time per call (``time.process_time``, one thread, median) of dlib, of the port's
``detect`` and of the port's differentiable ``candidates`` with a backward pass.

    .venv/bin/python bench/ports/dlib_mmod.py --json bench/results/ports/dlib_mmod.json
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

from shield.adversarial.models.detections import box_iou
from shield.adversarial.models.dlib_mmod import SHA256, SOURCE, load_dlib_mmod
from shield.faces.dlib_models import MMOD_DETECTOR, dlib_model_path
from shield.tensors import to_tensor

log = logging.getLogger("bench.ports.dlib_mmod")

REPO = Path(__file__).resolve().parents[2]
IOU_MATCH = 0.5

Box = tuple[float, float, float, float]


def _load(path: Path, max_side: int) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _matched(a: list[Box], b: list[Box]) -> int:
    """How many boxes of ``a`` have a box in ``b`` with IoU >= 0.5."""
    return sum(any(box_iou(x, y) >= IOU_MATCH for y in b) for x in a)


def _compare(ref: list[tuple[Box, float]], ours: list[tuple[Box, float]]) -> dict[str, Any]:
    score_diffs = []
    for box, score in ref:
        best = max(ours, key=lambda o: box_iou(box, o[0]), default=None)
        if best is not None and box_iou(box, best[0]) >= IOU_MATCH:
            score_diffs.append(abs(score - best[1]))
    return {
        "dlib": [{"box": b, "confidence": s} for b, s in ref],
        "port": [{"box": b, "confidence": s} for b, s in ours],
        "dlib_matched": _matched([b for b, _ in ref], [b for b, _ in ours]),
        "port_matched": _matched([b for b, _ in ours], [b for b, _ in ref]),
        "identical_boxes": [b for b, _ in ref] == [b for b, _ in ours],
        "max_abs_confidence_diff": max(score_diffs, default=0.0),
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n_ref = sum(len(r["dlib"]) for r in rows)
    n_port = sum(len(r["port"]) for r in rows)
    return {
        "images": len(rows),
        "dlib_detections": n_ref,
        "port_detections": n_port,
        "dlib_boxes_matched_by_port": sum(r["dlib_matched"] for r in rows) / n_ref if n_ref else None,
        "port_boxes_matched_by_dlib": sum(r["port_matched"] for r in rows) / n_port if n_port else None,
        "images_with_identical_boxes": sum(r["identical_boxes"] for r in rows) / len(rows) if rows else None,
        "max_abs_confidence_diff": max((r["max_abs_confidence_diff"] for r in rows), default=0.0),
    }


def run(photos: Path, nonfaces: Path | None, max_side: int) -> dict[str, Any]:
    import dlib

    torch.set_num_threads(1)
    port = load_dlib_mmod()
    ref_net = dlib.cnn_face_detection_model_v1(str(dlib_model_path(MMOD_DETECTOR)))
    rows: list[dict[str, Any]] = []
    t_dlib: list[float] = []
    t_port: list[float] = []
    t_grad: list[float] = []
    sets = [("photos", p) for p in sorted(photos.glob("*.jpg"))]
    if nonfaces is not None:
        sets += [("nonfaces", p) for p in sorted(nonfaces.glob("*.jpg"))]
    for kind, path in sets:
        rgb = _load(path, max_side)
        t = time.process_time()
        dets = ref_net(rgb, 0)
        t_dlib.append(time.process_time() - t)
        ref = [((d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1), d.confidence) for d in dets]
        image = to_tensor(rgb)
        t = time.process_time()
        ours = [(d.box, d.score) for d in port.detect(image)]
        t_port.append(time.process_time() - t)
        x = image.clone().requires_grad_(True)
        t = time.process_time()
        port.candidates(x).scores.max().backward()
        t_grad.append(time.process_time() - t)
        row = {"set": kind, "image": path.name, "size": [rgb.shape[1], rgb.shape[0]], **_compare(ref, ours)}
        rows.append(row)
        log.info("%s %s dlib %d port %d identical %s", path.name, row["size"], len(ref), len(ours), row["identical_boxes"])
    return {
        "command": "bench/ports/dlib_mmod.py " + " ".join(sys.argv[1:]),
        "source": SOURCE,
        "sha256": SHA256,
        "reference": f"dlib {dlib.__version__} cnn_face_detection_model_v1(path)(img, 0)",
        "max_side": max_side,
        "photos": _summary([r for r in rows if r["set"] == "photos"]),
        "nonfaces": _summary([r for r in rows if r["set"] == "nonfaces"]),
        "cpu_ms_per_call_dlib": 1000 * statistics.median(t_dlib),
        "cpu_ms_per_call_port_detect": 1000 * statistics.median(t_port),
        "cpu_ms_per_call_port_candidates_backward": 1000 * statistics.median(t_grad),
        "torch": torch.__version__,
        "threads": 1,
        "rows": rows,
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "photos")
    ap.add_argument("--nonfaces", type=Path, default=REPO.parent / "shared" / "data" / "nonfaces")
    ap.add_argument("--max-side", type=int, default=800, help="longer side of the compared images, px")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    if not args.photos.is_dir():
        ap.error(f"no photo folder {args.photos}: pass --photos")
    result = run(args.photos, args.nonfaces if args.nonfaces.is_dir() else None, args.max_side)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    log.info("%s", json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
