"""Equivalence of the face-api.js ports with face-api.js itself, on every shared photo.

The reference is ``bench/ports/faceapi_reference.js``: @vladmandic/face-api 1.7.15 on
@tensorflow/tfjs 4.22 with its CPU backend, in node. Each comparison isolates one network
by giving the port and the reference the same input:

- landmarks (``FaceApiLandmarks68``), every photo, every port detection box: max abs
  difference in image pixels, share of faces with NME < 0.02 (mean point error over the
  distance of the reference eye centres, points 36-41 and 42-47);
- recognition (``FaceApiRecognitionNet``) on the box face-api's ``withFaceDescriptors``
  describes (``alignDlib`` of the port's landmarks): max abs difference, share with
  cosine > 0.999, max Euclidean distance;
- SSD (``FaceApiSsd``) against ``locateFaces``: max abs difference of the 5118 raw boxes
  and scores, share of reference detections matched by a port detection with
  IoU >= 0.5, and the reverse. The tfjs CPU backend needs tens of seconds of CPU per SSD
  pass, so this stage runs last, one photo at a time, on the first ``--ssd-photos``.

Plus CPU ms per call of each port (one thread, median) and the reference's wall ms. The
JSON is rewritten after every step (``"complete": false`` until the end).

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
from shield.adversarial.models.faceapi_weights import clip_box

log = logging.getLogger("bench.ports.faceapi")
REFERENCE = Path(__file__).with_name("faceapi_reference.js")
CHUNK = 8


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


def _faces(name: str, rgb: np.ndarray, nets: tuple[Any, Any, Any], tmp: Path, times: dict[str, list[float]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Port detections, landmarks and descriptors of one photo, and the reference jobs for them."""
    ssd, marks, rec = nets
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    (_, _), ms = _cpu_ms(lambda t: ssd(ssd.preprocess(t)), x)
    times["ssd"].append(ms)
    npy = tmp / f"{Path(name).stem}.npy"
    np.save(npy, rgb)
    faces, jobs = [], []
    for det in ssd.detect(x):
        pts, ms = _cpu_ms(marks.landmarks, x, det.box)
        times["landmarks"].append(ms)
        x0, y0, x1, y1 = det.box
        _, _, cw, ch = clip_box((x0, y0, x1 - x0, y1 - y0), rgb.shape[1], rgb.shape[0])
        aligned = dlib_aligned_box(pts, (cw, ch))
        (desc,), ms = _cpu_ms(lambda t, b: rec(rec.chip(t, b)).numpy(), x, aligned)
        times["recognition"].append(ms)
        faces.append({"box": det.box, "landmarks": pts, "aligned": aligned, "descriptor": desc})
        jobs.append({"image": str(npy), "op": "landmarks", "box": [x0, y0, x1 - x0, y1 - y0]})
        a = aligned
        jobs.append({"image": str(npy), "op": "descriptor", "box": [a[0], a[1], a[2] - a[0], a[3] - a[1]]})
    return faces, jobs


def compare_faces(faces: list[dict[str, Any]], refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Landmarks on the same detection box, descriptors of the same aligned box."""
    rows = []
    for face, ref_marks, ref_desc in zip(faces, refs[0::2], refs[1::2]):
        ref_pts = np.asarray(ref_marks["positions"])
        left, right = eye_centres(ref_pts)
        desc, ref = face["descriptor"], np.asarray(ref_desc["descriptor"])
        rows.append(
            {
                "box": list(face["box"]),
                "landmarks_max_abs_px": float(np.abs(face["landmarks"] - ref_pts).max()),
                "nme": float(np.linalg.norm(face["landmarks"] - ref_pts, axis=1).mean() / np.linalg.norm(left - right)),
                "descriptor_max_abs": float(np.abs(desc - ref).max()),
                "descriptor_cosine": float(desc @ ref / np.linalg.norm(desc) / np.linalg.norm(ref)),
                "descriptor_distance": float(np.linalg.norm(desc - ref)),
                "reference_ms": ref_marks["ms"] + ref_desc["ms"],
            }
        )
    return rows


def compare_ssd(name: str, rgb: np.ndarray, ssd: Any, ref: dict[str, Any]) -> dict[str, Any]:
    """Raw outputs and final detections of the port against face-api's locateFaces."""
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        boxes, scores = ssd(ssd.preprocess(x))
    dets = ssd.detect(x)
    ref_boxes = [tuple(d["box"]) for d in ref["detections"]]
    return {
        "photo": name,
        "max_abs_boxes": float(np.abs(boxes[0].numpy() - np.asarray(ref["boxes"])).max()),
        "max_abs_scores": float(np.abs(scores[0].numpy() - np.asarray(ref["scores"])).max()),
        "ref_faces": len(ref_boxes),
        "port_faces": len(dets),
        "ref_matched": sum(any(box_iou(r, d.box) >= 0.5 for d in dets) for r in ref_boxes),
        "port_matched": sum(any(box_iou(d.box, r) >= 0.5 for r in ref_boxes) for d in dets),
        "reference_ms": ref["ms"],
    }


def summarise(photo_rows: list[dict[str, Any]], ssd_rows: list[dict[str, Any]], times: dict[str, list[float]]) -> dict[str, Any]:
    faces = [f for r in photo_rows for f in r["faces"]]
    ref_total = sum(r["ref_faces"] for r in ssd_rows)
    port_total = sum(r["port_faces"] for r in ssd_rows)

    def share(values: list[bool]) -> float | None:
        return sum(values) / len(values) if values else None

    def worst(key: str) -> float | None:
        return max((f[key] for f in faces), default=None)

    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    return {
        "photos": len(photo_rows),
        "photos_with_port_face": sum(bool(r["faces"]) for r in photo_rows),
        "faces": len(faces),
        "ssd": {
            "photos_compared": len(ssd_rows),
            "max_abs_raw_boxes": max((r["max_abs_boxes"] for r in ssd_rows), default=None),
            "max_abs_raw_scores": max((r["max_abs_scores"] for r in ssd_rows), default=None),
            "reference_detections": ref_total,
            "port_detections": port_total,
            "ref_matched_rate": sum(r["ref_matched"] for r in ssd_rows) / ref_total if ref_total else None,
            "port_matched_rate": sum(r["port_matched"] for r in ssd_rows) / port_total if port_total else None,
            "cpu_ms_port": median(times["ssd"]),
            "ms_reference": median([r["reference_ms"] for r in ssd_rows]),
        },
        "landmarks68": {
            "max_abs_px": worst("landmarks_max_abs_px"),
            "max_nme": worst("nme"),
            "nme_below_0.02_rate": share([f["nme"] < 0.02 for f in faces]),
            "cpu_ms_port": median(times["landmarks"]),
        },
        "recognition": {
            "max_abs": worst("descriptor_max_abs"),
            "max_distance": worst("descriptor_distance"),
            "min_cosine": min((f["descriptor_cosine"] for f in faces), default=None),
            "cosine_above_0.999_rate": share([f["descriptor_cosine"] > 0.999 for f in faces]),
            "cpu_ms_port": median(times["recognition"]),
        },
        "ms_reference_landmarks_plus_descriptor_per_face": median([f["reference_ms"] for f in faces]),
    }


def run(photos: Path, out: Path, ssd_photos: int | None) -> dict[str, Any]:
    torch.set_num_threads(1)
    nets = (load_faceapi_ssd(), load_faceapi_landmarks68(), load_faceapi_recognition())
    paths = sorted(photos.glob("*.jpg"))
    ssd_paths = paths[:ssd_photos]
    photo_rows: list[dict[str, Any]] = []
    ssd_rows: list[dict[str, Any]] = []
    times: dict[str, list[float]] = {"ssd": [], "landmarks": [], "recognition": []}
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()

    def write() -> dict[str, Any]:
        result = {
            "command": "bench/ports/faceapi.py " + " ".join(sys.argv[1:]),
            "complete": len(photo_rows) == len(paths) and len(ssd_rows) == len(ssd_paths),
            "reference": f"@vladmandic/face-api 1.7.15 on @tensorflow/tfjs 4.22.0, cpu backend, node {node}",
            "torch": torch.__version__,
            "threads": 1,
            **summarise(photo_rows, ssd_rows, times),
            "rows": photo_rows,
            "ssd_rows": ssd_rows,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        return result

    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(paths), CHUNK):  # landmarks and recognition, every photo
            chunk = paths[start : start + CHUNK]
            pending, jobs = [], []
            for p in chunk:
                faces, face_jobs = _faces(p.name, np.array(Image.open(p).convert("RGB")), nets, Path(tmp), times)
                pending.append((p, faces, len(face_jobs)))
                jobs += face_jobs
            refs = reference(jobs) if jobs else []
            for p, faces, n in pending:
                photo_rows.append({"photo": p.name, "faces": compare_faces(faces, refs[:n])})
                refs = refs[n:]
            for f in Path(tmp).glob("*.npy"):
                f.unlink()
            write()
            log.info("landmarks and recognition: %d/%d photos", len(photo_rows), len(paths))
        for p in ssd_paths:  # the SSD, one photo per reference call (about a minute each)
            rgb = np.array(Image.open(p).convert("RGB"))
            npy = Path(tmp) / "ssd.npy"
            np.save(npy, rgb)
            (ref,) = reference([{"image": str(npy), "op": "detect"}])
            ssd_rows.append(compare_ssd(p.name, rgb, nets[0], ref))
            write()
            log.info("ssd: %d/%d photos", len(ssd_rows), len(ssd_paths))
    return write()


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/photos"))
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--ssd-photos", type=int, default=None, help="compare the SSD on the first N photos only (default all)")
    args = ap.parse_args()
    result = run(args.photos, args.json, args.ssd_photos)
    log.info("%s", json.dumps({k: v for k, v in result.items() if not k.endswith("rows")}, indent=1))


if __name__ == "__main__":
    main()
