"""Equivalence and CPU cost of the torch port of facenet-pytorch 2.6.0's MTCNN.

Every shared photo (optionally with its longer side brought to ``--max-side``, PIL
bilinear) goes as the same uint8 array to facenet-pytorch's own
``MTCNN().detect(img, landmarks=True)`` and, as ``shield.tensors.to_tensor`` of it, to
``shield.adversarial.models.mtcnn.MTCNN.detect``. Recorded per photo and in total: both
detections (box, probability, five landmarks), the share of reference boxes matched by a
port box with IoU >= 0.5 and the reverse, the max abs difference of the raw outputs over
matched pairs (box corners in pixels, probabilities, landmarks in pixels), the share of
matched faces whose landmarks agree to NME < 0.02 (mean point error over the reference
inter-ocular distance), the max abs difference of the three networks' raw outputs on the
same inputs (P-Net on the first pyramid level, R-Net and O-Net on the crops of the
final boxes), and CPU time per call (``time.process_time``, one thread, median) of both
``detect`` calls and of the port's differentiable ``candidates`` with a backward pass
(on the first ``--backward-photos`` photos of at most 1 MP).

The reference needs ``torchvision.ops.boxes.batched_nms``, and torchvision does not import
beside this torch: :func:`facenet_reference` puts a small pure-torch ``batched_nms`` (the
same greedy IoU NMS as torchvision's CPU kernel, coordinate-offset trick included) into
``sys.modules`` while facenet-pytorch is imported. The reference's time therefore includes
this Python NMS, slower than torchvision's C++ one.

    .venv/bin/python bench/ports/mtcnn.py --json bench/results/ports/mtcnn.json
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from shield.adversarial.models.detections import Detection, box_iou
from shield.adversarial.models.mtcnn import EYE_INDICES, MTCNN, SHA256, SOURCE, load_mtcnn, pyramid_scales
from shield.tensors import to_tensor

log = logging.getLogger("bench.ports.mtcnn")

REPO = Path(__file__).resolve().parents[2]
IOU_MATCH = 0.5
NME_AGREE = 0.02
#: The backward pass keeps the graph of the whole pyramid: time it on photos up to 1 MP.
BACKWARD_MAX_PIXELS = 1_000_000

Box = tuple[float, float, float, float]


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Stand-in for ``torchvision.ops.boxes.batched_nms`` (coordinate trick + CPU ``nms``)."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    x0, y0, x1, y1 = (boxes + offsets[:, None]).unbind(1)
    area = (x1 - x0) * (y1 - y0)
    order = torch.sort(scores, descending=True, stable=True)[1]
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep: list[int] = []
    for n in range(len(order)):
        i = order[n]
        if suppressed[i]:
            continue
        keep.append(int(i))
        j = order[n + 1 :]
        w = torch.clamp(torch.minimum(x1[i], x1[j]) - torch.maximum(x0[i], x0[j]), min=0)
        h = torch.clamp(torch.minimum(y1[i], y1[j]) - torch.maximum(y0[i], y0[j]), min=0)
        inter = w * h
        suppressed[j] |= inter / (area[i] + area[j] - inter) > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def facenet_reference() -> Any:
    """facenet-pytorch's own ``MTCNN()`` (its default settings), importable without torchvision.

    When torchvision does not import, stub ``torchvision``, ``torchvision.ops.boxes`` (with
    :func:`_batched_nms`) and ``torchvision.transforms.functional`` modules are put into
    ``sys.modules`` for the import of facenet-pytorch only, then taken out again (facenet
    keeps its reference to the stand-in; later ``import torchvision`` still fails as before).

    Raises:
        ImportError: facenet-pytorch is not installed.
    """
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or present but built for another torch
        names = ["torchvision", "torchvision.ops", "torchvision.ops.boxes"]
        names += ["torchvision.transforms", "torchvision.transforms.functional"]
        stubs = {name: types.ModuleType(name) for name in names}
        stubs["torchvision.ops.boxes"].batched_nms = _batched_nms  # type: ignore[attr-defined]
        for name in names[1:]:
            parent, child = name.rsplit(".", 1)
            setattr(stubs[parent], child, stubs[name])
        saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
        sys.modules.update(stubs)
        try:
            from facenet_pytorch.models.mtcnn import MTCNN as FacenetMTCNN
        finally:
            for name in names:
                sys.modules.pop(name, None)
            sys.modules.update(saved)
    else:
        from facenet_pytorch.models.mtcnn import MTCNN as FacenetMTCNN
    return FacenetMTCNN()


def reference_detections(ref: Any, rgb: np.ndarray) -> list[Detection]:
    """facenet's ``detect(rgb, landmarks=True)`` as :class:`Detection` objects, in its order."""
    boxes, probs, points = ref.detect(rgb, landmarks=True)
    if boxes is None:
        return []
    return [
        Detection((float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(p), np.asarray(q, dtype=np.float32))
        for b, p, q in zip(boxes, probs, points)
    ]


def nme(ours: np.ndarray, ref: np.ndarray) -> float:
    """Mean point distance over the reference inter-ocular distance."""
    iod = float(np.linalg.norm(ref[EYE_INDICES[0]] - ref[EYE_INDICES[1]]))
    return float(np.linalg.norm(ours - ref, axis=1).mean()) / max(iod, 1e-6)


def _matched(a: list[Detection], b: list[Detection]) -> int:
    return sum(any(box_iou(x.box, y.box) >= IOU_MATCH for y in b) for x in a)


def compare(ref: list[Detection], ours: list[Detection]) -> dict[str, Any]:
    """Match rates both ways and the raw-output differences over matched pairs."""
    box_d, score_d, lm_d, nmes = [], [], [], []
    for r in ref:
        best = max(ours, key=lambda o: box_iou(r.box, o.box), default=None)
        if best is None or box_iou(r.box, best.box) < IOU_MATCH:
            continue
        assert r.landmarks is not None and best.landmarks is not None
        box_d.append(float(np.abs(np.subtract(r.box, best.box)).max()))
        score_d.append(abs(r.score - best.score))
        lm_d.append(float(np.abs(r.landmarks - best.landmarks).max()))
        nmes.append(nme(best.landmarks, r.landmarks))
    return {
        "reference_faces": len(ref),
        "port_faces": len(ours),
        "reference_matched": _matched(ref, ours),
        "port_matched": _matched(ours, ref),
        "max_abs_box_diff_px": max(box_d, default=0.0),
        "max_abs_score_diff": max(score_d, default=0.0),
        "max_abs_landmark_diff_px": max(lm_d, default=0.0),
        "landmark_nme": nmes,
        "reference": [{"box": d.box, "score": d.score, "landmarks": np.asarray(d.landmarks).tolist()} for d in ref],
        "port": [{"box": d.box, "score": d.score, "landmarks": np.asarray(d.landmarks).tolist()} for d in ours],
    }


@torch.no_grad()
def raw_network_diffs(port: MTCNN, ref: Any, rgb: np.ndarray, faces: list[Detection]) -> dict[str, float]:
    """Max abs difference of each network's raw outputs, port vs facenet, on the same input."""
    from shield.adversarial.models.mtcnn import _crops, _square, _windows

    pixels = (to_tensor(rgb) * 255.0).contiguous(memory_format=torch.channels_last)
    h, w = rgb.shape[:2]
    out = {"pnet": 0.0, "rnet": 0.0, "onet": 0.0}
    scales = pyramid_scales(h, w)
    if scales:
        side = (int(h * scales[0] + 1), int(w * scales[0] + 1))
        level = torch.nn.functional.interpolate(pixels, size=side, mode="area")
        level = (level - 127.5) * 0.0078125
        out["pnet"] = max(float((a - b).abs().max()) for a, b in zip(port.pnet(level), ref.pnet(level)))
    if faces:
        windows, _ = _windows(_square(torch.tensor([f.box for f in faces])), w, h)
        for name, size in (("rnet", 24), ("onet", 48)):
            if windows:
                crops = _crops(pixels, windows, size)
                pairs = zip(getattr(port, name)(crops), getattr(ref, name)(crops))
                out[name] = max(float((a - b).abs().max()) for a, b in pairs)
    return out


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t = time.process_time()
    result = fn(*args)
    return result, time.process_time() - t


def _candidates_backward(port: MTCNN, x: torch.Tensor) -> None:
    x = x.clone().requires_grad_(True)
    c = port.candidates(x)
    c.scores.sum().backward()


def _load(path: Path, max_side: int) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    scale = max_side / max(img.size) if max_side else 1.0
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    return np.asarray(img)


def run(photos: Path, max_side: int, backward_photos: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    port, ref = load_mtcnn(), facenet_reference()
    rows: list[dict[str, Any]] = []
    t_ref: list[float] = []
    t_port: list[float] = []
    t_back: list[float] = []
    for path in sorted(photos.glob("*.jpg")):
        rgb = _load(path, max_side)
        faces_ref, dt_ref = _timed(reference_detections, ref, rgb)
        x = to_tensor(rgb)
        faces_port, dt_port = _timed(port.detect, x)
        row = {"photo": path.name, "size": list(rgb.shape[:2]), **compare(faces_ref, faces_port)}
        row["raw_max_abs_diff"] = raw_network_diffs(port, ref, rgb, faces_ref)
        row["cpu_ms_reference"], row["cpu_ms_port"] = 1000 * dt_ref, 1000 * dt_port
        if len(t_back) < backward_photos and rgb.shape[0] * rgb.shape[1] <= BACKWARD_MAX_PIXELS:
            _, dt = _timed(_candidates_backward, port, x)
            row["cpu_ms_candidates_backward"] = 1000 * dt
            t_back.append(dt)
        t_ref.append(dt_ref)
        t_port.append(dt_port)
        rows.append(row)
        log.info(
            "%s: reference %d, port %d faces, box diff %.3g",
            path.name, row["reference_faces"], row["port_faces"], row["max_abs_box_diff_px"],
        )
    return summarise(rows, t_ref, t_port, t_back, max_side)


def summarise(
    rows: list[dict[str, Any]], t_ref: list[float], t_port: list[float], t_back: list[float], max_side: int
) -> dict[str, Any]:
    n_ref = sum(r["reference_faces"] for r in rows)
    n_port = sum(r["port_faces"] for r in rows)
    nmes = [v for r in rows for v in r["landmark_nme"]]
    return {
        "command": "bench/ports/mtcnn.py " + " ".join(sys.argv[1:]),
        "source": SOURCE,
        "sha256": SHA256,
        "photos": len(rows),
        "max_side": max_side or None,
        "reference_faces": n_ref,
        "port_faces": n_port,
        "reference_matched_rate": sum(r["reference_matched"] for r in rows) / max(n_ref, 1),
        "port_matched_rate": sum(r["port_matched"] for r in rows) / max(n_port, 1),
        "photos_identical_face_count": sum(r["reference_faces"] == r["port_faces"] for r in rows),
        "max_abs_box_diff_px": max(r["max_abs_box_diff_px"] for r in rows),
        "max_abs_score_diff": max(r["max_abs_score_diff"] for r in rows),
        "max_abs_landmark_diff_px": max(r["max_abs_landmark_diff_px"] for r in rows),
        "landmark_agreement_rate_nme_0.02": sum(v < NME_AGREE for v in nmes) / max(len(nmes), 1),
        "max_landmark_nme": max(nmes, default=0.0),
        "raw_max_abs_diff": {k: max(r["raw_max_abs_diff"][k] for r in rows) for k in ("pnet", "rnet", "onet")},
        "cpu_ms_per_call_reference_median": 1000 * statistics.median(t_ref),
        "cpu_ms_per_call_port_median": 1000 * statistics.median(t_port),
        "cpu_ms_candidates_backward_median": 1000 * statistics.median(t_back) if t_back else None,
        "torch": torch.__version__,
        "threads": 1,
        "rows": rows,
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "photos")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--max-side", type=int, default=0, help="downscale longer sides above this (0: full size)")
    ap.add_argument(
        "--backward-photos", type=int, default=10, help="time candidates+backward on the first N photos of at most 1 MP"
    )
    args = ap.parse_args()
    result = run(args.photos, args.max_side, args.backward_photos)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    log.info("%s", json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
