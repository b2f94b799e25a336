"""Benchmark: false faces and missed faces of the detector `shield protect` uses.

Usage (from the repository root):

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_false_positives.py \\
        --json bench/results/face_false_positives.json

Runs the protect detector (dlib HOG, ``shield.adversarial.face_views.locate_faces``)
on every image of ``$SHIELD_DATA_DIR/nonfaces`` (12 animal and cartoon images: any
face there is false) and ``$SHIELD_DATA_DIR/photos`` (85 photos of people: each has
at least one face), plus scikit-image's astronaut (one face), then the mmod CNN
confirmation (``shield.faces.confirm_faces``) on each HOG face. Reports, before and
after the confirmation: non-face images with a face (false-positive rate), face
photos with at least one face (recall), faces per image, and the seconds the
confirmation adds. Images are decoded with Pillow (EXIF orientation applied), since
some shared files carry a name that does not match their content.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from shield.adversarial.face_views import locate_faces
from shield.faces import confirm_faces
from shield.faces.confirm import MIN_CONFIRM_CONFIDENCE


@dataclass(frozen=True)
class ImageRow:
    set: str
    name: str
    width: int
    height: int
    hog_faces: int
    confirmed_faces: int
    hog_scores: list[float]
    cnn_confidences: list[float]
    hog_seconds: float
    confirm_seconds: float


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def _row(kind: str, name: str, rgb: np.ndarray) -> ImageRow:
    t0 = time.perf_counter()
    found = locate_faces(rgb)
    t1 = time.perf_counter()
    checks = confirm_faces(rgb, [g.face for g in found])
    t2 = time.perf_counter()
    return ImageRow(
        kind, name, rgb.shape[1], rgb.shape[0], len(found), sum(c.confirmed for c in checks),
        [round(g.face.score, 3) for g in found], [round(c.confidence, 3) for c in checks], round(t1 - t0, 3), round(t2 - t1, 3),
    )  # fmt: skip


def _summary(rows: list[ImageRow], kind: str) -> dict[str, object]:
    sel = [r for r in rows if r.set == kind]
    n = len(sel)
    hog = sum(1 for r in sel if r.hog_faces)
    conf = sum(1 for r in sel if r.confirmed_faces)
    faces = sum(r.hog_faces for r in sel)
    return {
        "images": n,
        "images_with_face_hog": hog,
        "images_with_face_confirmed": conf,
        "rate_hog": round(hog / n, 4) if n else None,
        "rate_confirmed": round(conf / n, 4) if n else None,
        "faces_hog": faces,
        "faces_confirmed": sum(r.confirmed_faces for r in sel),
        "confirm_seconds_per_face": round(sum(r.confirm_seconds for r in sel) / faces, 3) if faces else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_data = Path(os.environ.get("SHIELD_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (args.data / "nonfaces").is_dir() or not (args.data / "photos").is_dir():
        print(f"no shared data at {args.data} (set SHIELD_DATA_DIR)", file=sys.stderr)
        return 2
    import skimage.data

    rows = [_row("astronaut", "skimage.data.astronaut", skimage.data.astronaut())]  # also loads both models
    for kind in ("nonfaces", "photos"):
        for path in sorted((args.data / kind).iterdir()):
            if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}:
                rows.append(_row(kind, path.name, _rgb(path)))
                print(f"{kind}/{path.name}: HOG {rows[-1].hog_faces}, confirmed {rows[-1].confirmed_faces}", file=sys.stderr)
    doc = {
        "benchmark": "face_false_positives",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "threads": os.environ.get("OMP_NUM_THREADS")},
        "detector": "dlib HOG (locate_faces, longer side <= 640, upsample 1)",
        "confirmation": f"dlib mmod CNN on a crop around each HOG face, confidence >= {MIN_CONFIRM_CONFIDENCE}",
        "false_positives_nonfaces": _summary(rows, "nonfaces"),
        "recall_photos": _summary(rows, "photos"),
        "astronaut": asdict(rows[0]),
        "rejected": [asdict(r) for r in rows if r.confirmed_faces < r.hog_faces],
        "images": [asdict(r) for r in rows],
    }
    text = json.dumps(doc, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(json.dumps({k: doc[k] for k in ("false_positives_nonfaces", "recall_photos")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
