"""Equivalence of the face-api.js ports with face-api.js itself, on every shared photo.

For each photo the reference (``bench/ports/faceapi_reference.js``: @vladmandic/face-api
1.7.15 on @tensorflow/tfjs 4.22 CPU, in node) runs face-api's full pipeline
``detectAllFaces(SsdMobilenetv1Options()).withFaceLandmarks().withFaceDescriptors()`` and
returns the SSD's raw outputs too. The ports then run network by network on the same
inputs, so each comparison isolates one network:

- SSD (``FaceApiSsd``): max abs difference of the 5118 raw boxes and scores; share of
  reference detections matched by a port detection with IoU >= 0.5, and the reverse;
- landmarks (``FaceApiLandmarks68``) on each reference detection box: max abs difference
  in pixels, share of faces with NME < 0.02 (mean point error over the distance of the
  reference eye centres, points 36-41 and 42-47);
- recognition (``FaceApiRecognitionNet``) on the box face-api described (its
  ``alignDlib`` box, also recomputed by ``dlib_aligned_box`` and compared): max abs
  difference, share with cosine > 0.999, max Euclidean distance.

Plus CPU ms per call of each port (one thread, median) and of the reference pipeline.
The JSON is rewritten after every chunk of photos (``"complete": false`` until the end):
the reference SSD takes about a minute per photo on the tfjs CPU backend.

    .venv/bin/python bench/ports/faceapi.py --json bench/results/ports/faceapi.json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from shield.adversarial.models.detections import box_iou
from shield.adversarial.models.faceapi_landmarks68 import eye_centres, load_faceapi_landmarks68
from shield.adversarial.models.faceapi_recognition import dlib_aligned_box, load_faceapi_recognition
from shield.adversarial.models.faceapi_ssd import load_faceapi_ssd

log = logging.getLogger("bench.ports.faceapi")
REFERENCE = Path(__file__).with_name("faceapi_reference.js")
CHUNK = 4


def reference(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the node reference on ``jobs`` (see faceapi_reference.js) and return its results."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH: the reference runtime needs it")
    done = subprocess.run([node, str(REFERENCE)], input=json.dumps(jobs), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"reference failed: {done.stderr[-2000:]}")
    out: list[dict[str, Any]] = json.loads(done.stdout)["results"]
    return out


def _cpu_ms(fn: Any, *args: Any) -> tuple[Any, float]:
    t = time.process_time()
    with torch.no_grad():
        out = fn(*args)
    return out, 1000 * (time.process_time() - t)


def compare_photo(name: str, rgb: np.ndarray, ref: dict[str, Any], nets: tuple[Any, Any, Any], times: dict[str, list[float]]) -> dict[str, Any]:
    ssd, marks, rec = nets
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    (boxes, scores), ms = _cpu_ms(lambda t: ssd(ssd.preprocess(t)), x)
    times["ssd"].append(ms)
    dets = ssd.detect(x)
    ref_boxes = [tuple(f["box"]) for f in ref["faces"]]
    row: dict[str, Any] = {
        "photo": name,
        "size": [rgb.shape[1], rgb.shape[0]],
        "ssd_max_abs_boxes": float(np.abs(boxes[0].numpy() - np.asarray(ref["boxes"])).max()),
        "ssd_max_abs_scores": float(np.abs(scores[0].numpy() - np.asarray(ref["scores"])).max()),
        "ref_faces": len(ref_boxes),
        "port_faces": len(dets),
        "ref_matched": sum(any(box_iou(r, d.box) >= 0.5 for d in dets) for r in ref_boxes),
        "port_matched": sum(any(box_iou(d.box, r) >= 0.5 for r in ref_boxes) for d in dets),
        "faces": [],
    }
    for face in ref["faces"]:
        ref_pts = np.asarray(face["landmarks"])
        pts, ms = _cpu_ms(marks.landmarks, x, face["box"])
        times["landmarks"].append(ms)
        left, right = eye_centres(ref_pts)
        aligned = dlib_aligned_box(ref_pts, tuple(face["crop"]))
        (desc,), ms = _cpu_ms(lambda t, b: rec(rec.chip(t, b)).numpy(), x, face["aligned"])
        times["recognition"].append(ms)
        ref_desc = np.asarray(face["descriptor"])
        row["faces"].append(
            {
                "landmarks_max_abs_px": float(np.abs(pts - ref_pts).max()),
                "nme": float(np.linalg.norm(pts - ref_pts, axis=1).mean() / np.linalg.norm(left - right)),
                "aligned_box_max_abs_px": float(np.abs(np.asarray(aligned) - np.asarray(face["aligned"])).max()),
                "descriptor_max_abs": float(np.abs(desc - ref_desc).max()),
                "descriptor_cosine": float(desc @ ref_desc / np.linalg.norm(desc) / np.linalg.norm(ref_desc)),
                "descriptor_distance": float(np.linalg.norm(desc - ref_desc)),
            }
        )
    return row


def summarise(rows: list[dict[str, Any]], times: dict[str, list[float]], ref_ms: list[float]) -> dict[str, Any]:
    faces = [f for r in rows for f in r["faces"]]
    ref_total = sum(r["ref_faces"] for r in rows)
    port_total = sum(r["port_faces"] for r in rows)

    def share(values: list[bool]) -> float | None:
        return sum(values) / len(values) if values else None

    def worst(key: str) -> float | None:
        return max((f[key] for f in faces), default=None)

    return {
        "photos": len(rows),
        "faces": len(faces),
        "ssd": {
            "max_abs_raw_boxes": max(r["ssd_max_abs_boxes"] for r in rows),
            "max_abs_raw_scores": max(r["ssd_max_abs_scores"] for r in rows),
            "reference_detections": ref_total,
            "port_detections": port_total,
            "ref_matched_rate": sum(r["ref_matched"] for r in rows) / ref_total if ref_total else None,
            "port_matched_rate": sum(r["port_matched"] for r in rows) / port_total if port_total else None,
            "cpu_ms_port": statistics.median(times["ssd"]),
        },
        "landmarks68": {
            "max_abs_px": worst("landmarks_max_abs_px"),
            "max_nme": worst("nme"),
            "nme_below_0.02_rate": share([f["nme"] < 0.02 for f in faces]),
            "cpu_ms_port": statistics.median(times["landmarks"]) if times["landmarks"] else None,
        },
        "recognition": {
            "max_abs": worst("descriptor_max_abs"),
            "max_distance": worst("descriptor_distance"),
            "min_cosine": min((f["descriptor_cosine"] for f in faces), default=None),
            "cosine_above_0.999_rate": share([f["descriptor_cosine"] > 0.999 for f in faces]),
            "aligned_box_max_abs_px": worst("aligned_box_max_abs_px"),
            "cpu_ms_port": statistics.median(times["recognition"]) if times["recognition"] else None,
        },
        "reference_ms_per_photo_pipeline": statistics.median(ref_ms) if ref_ms else None,
    }


def run(photos: Path, out: Path, limit: int | None) -> dict[str, Any]:
    torch.set_num_threads(1)
    nets = (load_faceapi_ssd(), load_faceapi_landmarks68(), load_faceapi_recognition())
    paths = sorted(photos.glob("*.jpg"))[:limit]
    rows: list[dict[str, Any]] = []
    times: dict[str, list[float]] = {"ssd": [], "landmarks": [], "recognition": []}
    ref_ms: list[float] = []
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(paths), CHUNK):
            chunk = paths[start : start + CHUNK]
            images = [np.array(Image.open(p).convert("RGB")) for p in chunk]
            jobs = []
            for p, rgb in zip(chunk, images):
                np.save(Path(tmp) / f"{p.stem}.npy", rgb)
                jobs.append({"image": str(Path(tmp) / f"{p.stem}.npy"), "op": "pipeline"})
            for p, rgb, ref in zip(chunk, images, reference(jobs)):
                ref_ms.append(ref["ms"])
                rows.append(compare_photo(p.name, rgb, ref, nets, times))
            result = {
                "command": "bench/ports/faceapi.py " + " ".join(sys.argv[1:]),
                "complete": len(rows) == len(paths),
                "reference": "@vladmandic/face-api 1.7.15 on @tensorflow/tfjs 4.22.0, cpu backend, node "
                + subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
                "torch": torch.__version__,
                "threads": 1,
                **summarise(rows, times, ref_ms),
                "rows": rows,
            }
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=1))
            log.info("%d/%d photos", len(rows), len(paths))
    return result


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/photos"))
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos (sorted by name)")
    args = ap.parse_args()
    result = run(args.photos, args.json, args.limit)
    log.info("%s", json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
