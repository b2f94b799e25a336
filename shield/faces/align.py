"""Aligned face crops as each model expects them, each a similarity transform of the photo.

Every crop keeps its 2x3 matrix ``crop <- image`` (pixel centres at integer coordinates)
so a change made in crop space can be warped back (:func:`shield.faces.warp.paste_back`).

Targets:
- ``DLIB_150``: dlib's ``get_face_chip(img, shape5, size=150, padding=0.25)``, the input of
  the dlib descriptor. The matrix reproduces dlib's ``get_face_chip_details`` and
  ``extract_image_chips`` geometry; the pixels come from dlib itself, so they are exact
  (dlib low-passes large faces through an image pyramid first).
- ``ARCFACE_224``: insightface's 5-point ArcFace template (112 px) scaled to 224, as used by
  SimSwap 224 (eye centres, nose tip, mouth corners; least-squares similarity).
- ``FOMM_SQUARE``: an axis-aligned square around the face box, enlarged to include the
  head like the VoxCeleb crops FOMM vox-256 was trained on.
Spec: issue 5 part 3; ../shared/specs/deepfake-models.md sections 1, 3 and 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from shield.faces.detect import Face

__all__ = [
    "AlignTarget",
    "AlignedCrop",
    "align",
    "crop_matrix",
    "similarity_fit",
    "square_matrix",
    "arcface_points",
    "ARCFACE_TEMPLATE_112",
    "DLIB_PADDING",
    "FOMM_ENLARGE",
]

#: dlib's ``compute_face_descriptor`` default chip padding.
DLIB_PADDING = 0.25
#: FOMM crop side / dlib box side. dlib's box spans eyebrows to chin; VoxCeleb crops
#: show the whole head with some neck, about twice that.
FOMM_ENLARGE = 2.0
#: FOMM crop centre shift upwards, as a fraction of the box height (forehead and hair).
FOMM_SHIFT_UP = 0.15

#: insightface ``arcface_dst`` for 112x112: image-left eye, image-right eye, nose tip,
#: image-left and image-right mouth corner.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)

# dlib's 5-point chip template (dlib/image_transforms/interpolation.h, padding 0).
_DLIB5_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
# The same frame's mean positions (from dlib's 68-point mean face) of the ArcFace points:
# centre of iBUG points 36-41 and 42-47, nose tip 30, mouth corners 48 and 54.
_ARCFACE_IN_DLIB_FRAME = np.array(
    [
        [np.mean([0.121737, 0.187122, 0.265825, 0.334606, 0.260918, 0.182743]),
         np.mean([0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077])],
        [np.mean([0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335]),
         np.mean([0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099])],
        [0.490127, 0.515625],
        [0.254149, 0.780233],
        [0.726104, 0.780233],
    ]
)  # fmt: skip


class AlignTarget(str, Enum):
    """Which model's crop convention to follow."""

    FOMM_SQUARE = "fomm_square"
    ARCFACE_224 = "arcface_224"
    DLIB_150 = "dlib_150"


_DEFAULT_SIZE = {AlignTarget.FOMM_SQUARE: 256, AlignTarget.ARCFACE_224: 224, AlignTarget.DLIB_150: 150}


@dataclass(frozen=True, eq=False)
class AlignedCrop:
    """An aligned face crop and where it came from.

    Attributes:
        image: (size, size, 3) uint8 RGB crop.
        matrix: (2, 3) float64 affine map from image pixels to crop pixels (a similarity).
        size: crop side in pixels.
        target: the convention it follows.
    """

    image: np.ndarray
    matrix: np.ndarray
    size: int
    target: AlignTarget

    def inverse(self) -> np.ndarray:
        """(2, 3) map from crop pixels to image pixels."""
        return _invert(self.matrix)

    def scale(self) -> float:
        """Image pixels per crop pixel."""
        return 1.0 / math.hypot(self.matrix[0, 0], self.matrix[1, 0])


def _invert(m: np.ndarray) -> np.ndarray:
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src -> dst.

    Umeyama (1991), as dlib's ``find_similarity_transform`` and skimage's
    ``SimilarityTransform.estimate``. src, dst: (N, 2), N >= 2. Returns (2, 3).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(sig) @ sign) / var_s)
    a = scale * rot
    return np.hstack([a, (mu_d - a @ mu_s)[:, None]])


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _dlib_chip_matrix(lm5: np.ndarray, size: int, padding: float) -> np.ndarray:
    """crop <- image for dlib.get_face_chip(size, padding), following dlib's own steps."""
    chip_pts = (padding + _DLIB5_TEMPLATE) / (2 * padding + 1) * size
    tform = similarity_fit(chip_pts, lm5)  # chip -> image, fitted in image space as dlib
    p = tform[:, :2] @ np.array([1.0, 0.0])
    angle, scale = math.atan2(p[1], p[0]), math.hypot(p[0], p[1])
    centre = _apply(tform, np.array([[size / 2.0, size / 2.0]]))[0]
    # centered_drect(centre, w, h) spans [c - (w-1)/2, c + (w-1)/2] (dlib's w-1 convention)
    half = (size * scale - 1.0) / 2.0
    tl, tr, bl = centre + [-half, -half], centre + [half, -half], centre + [-half, half]
    cos, sin = math.cos(angle), math.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    to = np.stack([rot @ (q - centre) + centre for q in (tl, tr, bl)])
    frm = np.array([[0.0, 0.0], [size - 1.0, 0.0], [0.0, size - 1.0]])
    # exact affine through three point pairs: chip -> image
    a = np.linalg.solve(np.hstack([frm, np.ones((3, 1))]), to).T
    return _invert(a)


def arcface_points(face: Face) -> np.ndarray:
    """The five ArcFace landmarks (5, 2) in image pixels.

    From the 68-point landmarks when present; otherwise mapped from the 5-point
    landmarks through dlib's mean face (exact for a neutral face, approximate otherwise).
    """
    if face.landmarks68 is not None:
        lm = face.landmarks68
        return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])
    frame = similarity_fit(_DLIB5_TEMPLATE, face.landmarks5)
    return _apply(frame, _ARCFACE_IN_DLIB_FRAME)


def square_matrix(x0: float, y0: float, side: float, size: int) -> np.ndarray:
    """``crop <- image`` (2, 3) for the axis-aligned square of ``side`` image pixels at (x0, y0), resized to ``size``.

    Pixel-area convention, as a resize of the cut-out square (PIL, ``cv2.INTER_AREA``):
    the square's pixels ``x0 .. x0 + side - 1`` cover the crop's ``0 .. size - 1``
    exactly, i.e. image edge ``x0 - 0.5`` maps to crop edge ``-0.5``.

    Args:
        x0, y0: top-left pixel of the square in image pixels (need not be integers).
        side: square side in image pixels, > 0.
        size: crop side in pixels.
    """
    if side <= 0:
        raise ValueError(f"side: expected > 0, got {side}")
    k = size / side
    return np.array([[k, 0.0, -x0 * k + 0.5 * k - 0.5], [0.0, k, -y0 * k + 0.5 * k - 0.5]])


def _fomm_matrix(face: Face, size: int, enlarge: float) -> np.ndarray:
    b = face.box
    side = enlarge * max(b.width, b.height)
    cx = (b.left + b.right) / 2.0
    cy = (b.top + b.bottom) / 2.0 - FOMM_SHIFT_UP * b.height
    return square_matrix(cx - side / 2.0, cy - side / 2.0, side, size)


def crop_matrix(face: Face, target: AlignTarget | str, *, size: int | None = None, enlarge: float = FOMM_ENLARGE) -> np.ndarray:
    """The (2, 3) ``crop <- image`` matrix of ``face`` for ``target`` (no pixels touched)."""
    target = AlignTarget(target)
    size = _DEFAULT_SIZE[target] if size is None else int(size)
    if size < 16:
        raise ValueError(f"size: expected >= 16 pixels, got {size}")
    if target is AlignTarget.DLIB_150:
        return _dlib_chip_matrix(face.landmarks5, size, DLIB_PADDING)
    if target is AlignTarget.ARCFACE_224:
        return similarity_fit(arcface_points(face), ARCFACE_TEMPLATE_112 * (size / 112.0))
    if enlarge <= 0:
        raise ValueError(f"enlarge: expected > 0, got {enlarge}")
    return _fomm_matrix(face, size, enlarge)


def _dlib_chip(rgb: np.ndarray, face: Face, size: int) -> np.ndarray:
    import dlib

    b = face.box
    rect = dlib.rectangle(round(b.left), round(b.top), round(b.right) - 1, round(b.bottom) - 1)
    parts = dlib.points([dlib.point(round(x), round(y)) for x, y in face.landmarks5])
    shape = dlib.full_object_detection(rect, parts)
    return np.asarray(dlib.get_face_chip(rgb, shape, size=size, padding=DLIB_PADDING))


def align(
    rgb: np.ndarray,
    face: Face,
    target: AlignTarget | str,
    *,
    size: int | None = None,
    enlarge: float = FOMM_ENLARGE,
) -> AlignedCrop:
    """Crop ``face`` out of ``rgb`` as ``target`` expects.

    Args:
        rgb: HxWx3 uint8 RGB photo the face was detected in.
        face: from :func:`shield.faces.detect_faces`.
        target: crop convention.
        size: crop side in pixels (default 256 FOMM, 224 ArcFace, 150 dlib).
        enlarge: FOMM crop side relative to the face box.

    Returns:
        AlignedCrop with the uint8 crop (outside the photo: black) and its matrix.
    """
    from shield.faces.warp import warp_uint8

    target = AlignTarget(target)
    size = _DEFAULT_SIZE[target] if size is None else int(size)
    matrix = crop_matrix(face, target, size=size, enlarge=enlarge)
    if target is AlignTarget.DLIB_150:
        image = _dlib_chip(rgb, face, size)
    else:
        image = warp_uint8(rgb, matrix, size)
    return AlignedCrop(image, matrix, size, target)
