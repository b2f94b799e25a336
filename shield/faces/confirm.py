"""A second opinion on each HOG face: dlib's mmod CNN detector on a crop around it.

The HOG detector that ``shield protect`` uses is fast but takes some non-human faces
and textures for faces: on the shared data it finds a face on a capuchin monkey
(``nonfaces/liveportrait_s22.jpg``, HOG score 0.35) and a second, small one on the
astronaut's suit (score 0.12), while a real painted face scores as low as 0.17, so no
HOG score threshold separates them. The mmod CNN (a different model, trained on other
data) is run on a square crop around each HOG box, resized so the face spans about
90 px, and the face is kept when the CNN finds a face there with enough confidence.
On the 85 shared photos all 88 HOG faces are confirmed at 1.02 or more; the monkey scores
0.55 and the astronaut's suit finds nothing (``bench/face_false_positives.py``).

Only the small crop goes through the CNN (about 0.5 s per face on one CPU thread), so
a 12 MP photo costs no more than a thumbnail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shield.faces.detect import Box, Face, _check_rgb, _cnn

__all__ = ["Confirmation", "confirm_face", "confirm_faces", "MIN_CONFIRM_CONFIDENCE", "CONFIRM_CROP_SIDE"]

log = logging.getLogger(__name__)

#: mmod confidence a face needs on its crop. Human faces of the shared photos score
#: 1.02-1.10 (88 of 88), the monkey 0.55: the threshold sits between, nearer the monkey
#: so that a blurred or partly hidden human face is not lost.
MIN_CONFIRM_CONFIDENCE = 0.8
#: Side in pixels of the crop handed to the CNN; the crop spans ``_CROP_SPAN`` x the face
#: box, so the face is about 90 px, inside mmod's range without upsampling.
CONFIRM_CROP_SIDE = 200
_CROP_SPAN = 2.2
#: Share of the CNN box that must overlap the HOG box (intersection over the smaller box).
_MIN_OVERLAP = 0.5


@dataclass(frozen=True)
class Confirmation:
    """The CNN's opinion of one HOG face.

    Attributes:
        face: the HOG face.
        confirmed: the CNN found a face over it with at least ``MIN_CONFIRM_CONFIDENCE``.
        confidence: the CNN's best confidence over the face box (0 when it found none).
    """

    face: Face
    confirmed: bool
    confidence: float


def _crop(rgb: np.ndarray, box: Box) -> tuple[np.ndarray, float, float, float]:
    """The square crop around ``box`` (zero-padded at the photo's edges), resized; and its origin and scale."""
    from PIL import Image

    side = _CROP_SPAN * max(box.width, box.height, 1.0)
    x0 = (box.left + box.right) / 2 - side / 2
    y0 = (box.top + box.bottom) / 2 - side / 2
    crop = Image.fromarray(rgb).crop((round(x0), round(y0), round(x0 + side), round(y0 + side)))
    scale = CONFIRM_CROP_SIDE / max(crop.width, 1)
    resized = crop.resize((CONFIRM_CROP_SIDE, CONFIRM_CROP_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(resized), round(x0), round(y0), scale


def _overlap(a: Box, b: Box) -> float:
    w = min(a.right, b.right) - max(a.left, b.left)
    h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(min(a.area, b.area), 1e-9)


def confirm_face(rgb: np.ndarray, face: Face, *, min_confidence: float = MIN_CONFIRM_CONFIDENCE) -> Confirmation:
    """Ask the mmod CNN whether ``face`` (a HOG detection in ``rgb``) is a human face.

    Raises:
        TypeError: ``rgb`` is not HxWx3 uint8. ModelError: the mmod model is not installed.
    """
    rgb = _check_rgb(rgb)
    crop, x0, y0, scale = _crop(rgb, face.box)
    best = 0.0
    for det in _cnn()(crop, 0):
        r = det.rect
        found = Box(x0 + r.left() / scale, y0 + r.top() / scale, x0 + (r.right() + 1) / scale, y0 + (r.bottom() + 1) / scale)
        if _overlap(found, face.box) >= _MIN_OVERLAP:
            best = max(best, float(det.confidence))
    return Confirmation(face, best >= min_confidence, best)


def confirm_faces(
    rgb: np.ndarray, faces: Sequence[Face], *, min_confidence: float = MIN_CONFIRM_CONFIDENCE
) -> list[Confirmation]:
    """:func:`confirm_face` for each face, in order.

    Raises:
        TypeError: ``rgb`` is not HxWx3 uint8. ModelError: the mmod model is not installed.
    """
    rgb = _check_rgb(rgb)
    out = [confirm_face(rgb, f, min_confidence=min_confidence) for f in faces]
    for c in out:
        if not c.confirmed:
            log.info("face at %s rejected: mmod confidence %.2f < %.2f", tuple(round(v) for v in c.face.box), c.confidence, min_confidence)
    return out
