"""Differentiable aligned views of a photo: what each model sees of a face.

A *view* is a 2x3 affine matrix (OpenCV convention: it maps a source pixel centre
(u, v) to the crop pixel centre (X, Y)) plus the crop side in pixels. The attack
perturbs the photo itself and reaches every model through its view, so one
perturbation serves models with different alignments and resolutions
(FOMM square crop, dlib 150 chip, ArcFace 224 template).

Downscaling views are anti-aliased (bilinear with an area-proportional kernel,
``antialias=True``) before the affine resampling: a deepfake tool that resizes
with area or Lanczos filtering averages each crop pixel over a block of photo
pixels, and the attack has to see that same average, not a sparse subsample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["View", "FaceGeometry", "affine_crop", "view_bbox", "locate_faces", "whole_frame_view", "FOMM_CROP_ENLARGE", "CHIP_PADDING"]

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
#: surrogates were trained on, ``shield.adversarial.data.CROP_ENLARGE``).
FOMM_CROP_ENLARGE = 1.7
#: dlib chip padding (the descriptor's and the face-swap surrogate's framing).
CHIP_PADDING = 0.25
#: Longest side handed to the HOG detector; larger photos are searched downscaled.
_DETECT_MAX_SIDE = 640


@dataclass(frozen=True)
class FaceGeometry:
    """One detected face: HOG box and 5-point landmarks, in photo pixels.

    Attributes:
        box: (left, top, right, bottom) of the detection.
        chip_rect: dlib chip rectangle (left, top, right, bottom) before rotation.
        chip_angle: chip rotation in radians (dlib ``chip_details.angle``).
        image_size: (width, height) of the photo.
    """

    box: tuple[float, float, float, float]
    chip_rect: tuple[float, float, float, float]
    chip_angle: float
    image_size: tuple[int, int]

    def fomm_view(self, size: int) -> View:
        """Square crop ``FOMM_CROP_ENLARGE`` x the face box, kept inside the photo, resized to ``size``."""
        left, top, right, bottom = self.box
        w, h = self.image_size
        side = min(FOMM_CROP_ENLARGE * max(right - left, bottom - top), w, h)
        x0 = min(max(round((left + right) / 2 - side / 2), 0), w - side)
        y0 = min(max(round((top + bottom) / 2 - side / 2), 0), h - side)
        k = size / side
        m = np.array([[k, 0.0, -x0 * k + 0.5 * k - 0.5], [0.0, k, -y0 * k + 0.5 * k - 0.5]])
        return View(m, size)

    def chip_view(self, size: int) -> View:
        """dlib ``get_face_chip(size, padding=CHIP_PADDING)`` as a view (same matrix as dlib's)."""
        left, top, right, bottom = self.chip_rect
        k = size / 150.0
        cx, cy = (left + right) / 2, (top + bottom) / 2
        a = self.chip_angle

        def rot(x: float, y: float) -> tuple[float, float]:
            dx, dy = x - cx, y - cy
            return cx + math.cos(a) * dx - math.sin(a) * dy, cy + math.sin(a) * dx + math.cos(a) * dy

        src = np.array([rot(left, top), rot(right, top), rot(right, bottom)])
        dst = np.array([[0, 0], [149, 0], [149, 149]], dtype=np.float64)
        m150 = np.linalg.solve(np.hstack([src, np.ones((3, 1))]), dst).T
        scale = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]])
        return View((scale @ np.vstack([m150, [0, 0, 1]]))[:2], size)


def whole_frame_view(width: int, height: int, size: int) -> View:
    """The whole photo squeezed into a ``size`` square (for ``whole_frame`` protection)."""
    kx, ky = size / width, size / height
    return View(np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5]]), size)


def locate_faces(rgb: np.ndarray, *, upsample: int = 1) -> list[FaceGeometry]:
    """Every face dlib's HOG detector finds, with its 5-point chip alignment.

    Args:
        rgb: HxWx3 uint8 photo.
        upsample: HOG pyramid upsampling (1 finds faces down to about 40 px).

    Returns:
        Faces sorted left to right; empty when there is none.
    """
    import dlib

    from shield.faces.dlib_models import SHAPE_PREDICTOR_5, dlib_model_path

    h, w = rgb.shape[:2]
    s = min(1.0, _DETECT_MAX_SIDE / max(h, w))
    small = rgb
    if s < 1.0:
        from PIL import Image

        small = np.asarray(Image.fromarray(rgb).resize((round(w * s), round(h * s)), Image.Resampling.BILINEAR))
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR_5)))
    faces: list[FaceGeometry] = []
    for r in detector(small, upsample):
        box = (r.left() / s, r.top() / s, r.right() / s, r.bottom() / s)
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = predictor(np.ascontiguousarray(rgb), rect)
        d = dlib.get_face_chip_details(shape, 150, CHIP_PADDING)
        cr = d.rect
        faces.append(FaceGeometry(box, (cr.left(), cr.top(), cr.right(), cr.bottom()), float(d.angle), (w, h)))
    return sorted(faces, key=lambda f: f.box[0])
