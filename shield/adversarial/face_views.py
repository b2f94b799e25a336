"""Differentiable aligned views of a photo: what each model sees of a face.

A *view* is a 2x3 affine matrix (OpenCV convention: it maps a source pixel centre
(u, v) to the crop pixel centre (X, Y)) plus the crop side in pixels. The attack
perturbs the photo itself and reaches every model through its view, so one
perturbation serves models with different alignments and resolutions
(FOMM square crop, dlib 150 chip, ArcFace 224 template). Faces and the alignment
matrices come from ``shield.faces``; this module adds the framings the attack's
surrogates were trained on and the differentiable crop.

Downscaling views are anti-aliased (bilinear with an area-proportional kernel,
``antialias=True``) before the affine resampling: a deepfake tool that resizes
with area or Lanczos filtering averages each crop pixel over a block of photo
pixels, and the attack has to see that same average, not a sparse subsample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shield.errors import NoFaceError
from shield.faces import AlignTarget, Face, crop_matrix, detect_faces
from shield.faces.align import ARCFACE_TEMPLATE_112, DLIB_PADDING, similarity_fit, square_matrix
from shield.faces.detect import detection_scale

__all__ = [
    "View", "FaceGeometry", "affine_crop", "view_bbox", "locate_faces", "largest_face", "whole_frame_view", "five_point_view",
    "FOMM_CROP_ENLARGE", "CHIP_PADDING",
]  # fmt: skip

#: Downscaling views first resize the photo to this many times the crop scale, then
#: resample bilinearly (closest to Lanczos/box resizing among the factors tried).
_PRE_SCALE = 2.0


@dataclass(frozen=True)
class View:
    """An aligned crop: ``matrix`` (2,3) maps photo pixels to crop pixels; ``size`` is the crop side."""

    matrix: np.ndarray
    size: int

    def shifted(self, dx: float, dy: float) -> View:
        """The same view for an image whose origin is at photo pixel (dx, dy)."""
        m = np.asarray(self.matrix, dtype=np.float64).copy()
        m[:, 2] += m[:, :2] @ np.array([dx, dy])
        return View(m, self.size)

    def scale(self) -> float:
        """Crop pixels per photo pixel (square root of the linear part's determinant)."""
        return float(np.sqrt(abs(np.linalg.det(np.asarray(self.matrix, dtype=np.float64)[:, :2]))))

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        return affine_crop(x, self)


def view_bbox(view: View) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) in photo pixels of the region a view reads."""
    m = np.vstack([np.asarray(view.matrix, dtype=np.float64), [0, 0, 1]])
    inv = np.linalg.inv(m)
    s = view.size - 1
    corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], dtype=np.float64).T
    pts = (inv @ corners)[:2]
    return float(pts[0].min()), float(pts[1].min()), float(pts[0].max()), float(pts[1].max())


def affine_crop(x: torch.Tensor, view: View) -> torch.Tensor:
    """Differentiable crop of ``x`` (N,3,H,W) in [0,1] through ``view`` -> (N,3,S,S).

    Pixels outside ``x`` read as zero (as ``dlib.get_face_chip`` and
    ``cv2.warpAffine`` with a constant border do).
    """
    h, w = x.shape[-2:]
    m = np.vstack([np.asarray(view.matrix, dtype=np.float64), [0, 0, 1]])
    inv = np.linalg.inv(m)[:2]
    src = x
    fx = fy = 1.0
    s = view.scale()
    if s < 0.5 * _PRE_SCALE:
        nh, nw = max(2, round(h * s * _PRE_SCALE)), max(2, round(w * s * _PRE_SCALE))
        src = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        fy, fx = nh / h, nw / w
    sh, sw = src.shape[-2:]
    size = view.size
    coords = torch.arange(size, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    ones = torch.ones_like(xx)
    dst = torch.stack([xx, yy, ones], 0).reshape(3, -1)
    uv = torch.from_numpy(inv) @ dst
    u = (uv[0] + 0.5) * fx - 0.5
    v = (uv[1] + 0.5) * fy - 0.5
    gx = 2 * u / (sw - 1) - 1
    gy = 2 * v / (sh - 1) - 1
    grid = torch.stack([gx, gy], -1).view(1, size, size, 2).to(dtype=x.dtype, device=x.device)
    return F.grid_sample(src, grid.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=True)


#: FOMM square crop side relative to the detected face box (as the clips the
#: surrogates were trained on, ``shield.adversarial.clips.CROP_ENLARGE``).
FOMM_CROP_ENLARGE = 1.7
#: dlib chip padding (the descriptor's and the face-swap surrogate's framing).
CHIP_PADDING = DLIB_PADDING
#: Longest side handed to the HOG detector; larger photos are searched downscaled.
_DETECT_MAX_SIDE = 640
#: Side of dlib's chip, which the smaller face-swap chips are resized from.
_CHIP_SIDE = 150


@dataclass(frozen=True)
class FaceGeometry:
    """One detected face in its photo, and the views of it each model sees.

    Attributes:
        face: detection box and 5-point landmarks (:func:`shield.faces.detect_faces`).
        image_size: (width, height) of the photo.
        detector_pixel: photo pixels per pixel of the image the detector searched
            (> 1 when the photo was searched downscaled).
    """

    face: Face
    image_size: tuple[int, int]
    detector_pixel: float = 1.0

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) in photo pixels: the detector's corner pixels.

        dlib's inclusive rectangle, whose right/bottom is one detector pixel inside
        ``face.box``'s exclusive edge; the FOMM framing (like the training clips,
        ``shield.adversarial.clips``) is centred on it.
        """
        b = self.face.box
        return (b.left, b.top, b.right - self.detector_pixel, b.bottom - self.detector_pixel)

    def fomm_view(self, size: int) -> View:
        """Square crop ``FOMM_CROP_ENLARGE`` x the face box, kept inside the photo, resized to ``size``.

        The square's corner is snapped to whole pixels and its side capped by the photo,
        as ``shield.adversarial.clips.crop_boxes`` cut the training clips.
        """
        left, top, right, bottom = self.box
        w, h = self.image_size
        side = min(FOMM_CROP_ENLARGE * max(right - left, bottom - top), w, h)
        x0 = min(max(round((left + right) / 2 - side / 2), 0), w - side)
        y0 = min(max(round((top + bottom) / 2 - side / 2), 0), h - side)
        return View(square_matrix(x0, y0, side, size), size)

    def chip_view(self, size: int) -> View:
        """dlib's ``get_face_chip(150, padding=CHIP_PADDING)`` resized to ``size`` (area convention).

        At 150 it is dlib's own chip matrix (``shield.faces.crop_matrix``, ``DLIB_150``);
        smaller sides are that chip resized, as the face-swap surrogate's training chips
        are (``lab.surrogates.train.faceswap``), not dlib chips extracted at ``size``.
        """
        chip = crop_matrix(self.face, AlignTarget.DLIB_150, size=_CHIP_SIDE)
        k = size / _CHIP_SIDE
        resize = np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5], [0.0, 0.0, 1.0]])
        return View((resize @ np.vstack([chip, [0.0, 0.0, 1.0]]))[:2], size)

    def arcface_view(self, size: int = 224) -> View:
        """SimSwap's crop: insightface's 5-point ArcFace template scaled to ``size``.

        The five ArcFace points come from the 5-point landmarks through dlib's mean face
        (:func:`shield.faces.align.arcface_points`), fitted to the template by a
        least-squares similarity (``shield.faces.crop_matrix``, ``ARCFACE_224``).
        """
        return View(crop_matrix(self.face, AlignTarget.ARCFACE_224, size=size), size)


def five_point_view(points: np.ndarray, size: int) -> View:
    """insightface's ``norm_crop``: the ArcFace 112 template scaled to ``size``, fitted to ``points``.

    ``points`` (5, 2) are a detector's own five landmarks in photo pixels (eye centres,
    nose tip, mouth corners, as MTCNN and RetinaFace give them), so the view is the crop
    a tool built on that detector reads, not one derived from dlib's landmarks
    (:meth:`FaceGeometry.arcface_view`).

    Raises:
        ValueError: ``points`` is not (5, 2) finite, or ``size`` < 16.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise ValueError(f"points: expected (5, 2) finite pixel coordinates, got shape {pts.shape}")
    if size < 16:
        raise ValueError(f"size: expected >= 16 pixels, got {size}")
    return View(similarity_fit(pts, ARCFACE_TEMPLATE_112 * (size / 112.0)), int(size))


def whole_frame_view(width: int, height: int, size: int) -> View:
    """The whole photo squeezed into a ``size`` square (for ``whole_frame`` protection)."""
    kx, ky = size / width, size / height
    return View(np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5]]), size)


def largest_face(faces: Sequence[FaceGeometry]) -> FaceGeometry:
    """The face with the largest box (the one a benchmark or a figure evaluates).

    Raises:
        ValueError: ``faces`` is empty.
    """
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def locate_faces(rgb: np.ndarray, *, upsample: int = 1) -> list[FaceGeometry]:
    """Every face dlib's HOG detector finds (:func:`shield.faces.detect_faces`), left to right.

    The photo is searched with its longer side at most 640 pixels; landmarks are fitted
    at full resolution.

    Args:
        rgb: HxWx3 uint8 photo.
        upsample: HOG pyramid upsampling (1 finds faces down to about 40 px).

    Returns:
        Faces sorted left to right; empty when there is none.

    Raises:
        TypeError / ValueError: invalid arguments (see ``detect_faces``).
    """
    try:
        faces = detect_faces(rgb, upsample=upsample, max_side=_DETECT_MAX_SIDE)
    except NoFaceError:
        return []
    h, w = rgb.shape[:2]
    pixel = 1.0 / detection_scale(w, h, _DETECT_MAX_SIDE)
    return sorted((FaceGeometry(f, (w, h), pixel) for f in faces), key=lambda g: g.face.box.left)
